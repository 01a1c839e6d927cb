"""SigOpt-style Python values <-> optserve.v1 protobuf messages.

Every ``*_to_proto`` accepts either a mapping with SigOpt's keys (the dicts of
SigOpt's documents: ``dict(name="x", type="double", bounds=dict(min=0, max=1))``)
or the matching object of :mod:`optserve_client.objects`; every
``*_from_proto`` returns such an object. Unknown keys and unknown enum strings
raise ``ValueError`` naming the field, so that typos fail before any call;
everything else (bounds order, constraint feasibility, ...) is validated by
the server, which answers with field violations.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from optserve_client._proto.optserve.v1 import experiment_pb2 as exp_pb
from optserve_client._proto.optserve.v1 import observation_pb2 as obs_pb
from optserve_client._proto.optserve.v1 import project_pb2 as prj_pb
from optserve_client._proto.optserve.v1 import run_pb2 as run_pb
from optserve_client._proto.optserve.v1 import suggestion_pb2 as sug_pb
from optserve_client.objects import (
    Assignments,
    Bounds,
    Checkpoint,
    Conditional,
    ConstraintTerm,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    Progress,
    Project,
    QueuedSuggestion,
    RunValue,
    Suggestion,
    TrainingRun,
)

# Enum strings <-> proto values. Unset (0) reads back as the documented default.
PARAMETER_TYPES = {
    "double": exp_pb.PARAMETER_TYPE_DOUBLE,
    "int": exp_pb.PARAMETER_TYPE_INT,
    "categorical": exp_pb.PARAMETER_TYPE_CATEGORICAL,
}
EXPERIMENT_TYPES = {
    "offline": exp_pb.EXPERIMENT_TYPE_OFFLINE,
    "random": exp_pb.EXPERIMENT_TYPE_RANDOM,
    "grid": exp_pb.EXPERIMENT_TYPE_GRID,
}
EXPERIMENT_STATES = {
    "active": exp_pb.EXPERIMENT_STATE_ACTIVE,
    "archived": exp_pb.EXPERIMENT_STATE_ARCHIVED,
    "deleted": exp_pb.EXPERIMENT_STATE_DELETED,
}
TRANSFORMATIONS = {"none": exp_pb.TRANSFORMATION_NONE, "log": exp_pb.TRANSFORMATION_LOG}
CONSTRAINT_TYPES = {
    "less_than": exp_pb.LINEAR_CONSTRAINT_TYPE_LESS_THAN,
    "greater_than": exp_pb.LINEAR_CONSTRAINT_TYPE_GREATER_THAN,
}
OBJECTIVES = {
    "maximize": exp_pb.METRIC_OBJECTIVE_MAXIMIZE,
    "minimize": exp_pb.METRIC_OBJECTIVE_MINIMIZE,
}
STRATEGIES = {
    "optimize": exp_pb.METRIC_STRATEGY_OPTIMIZE,
    "store": exp_pb.METRIC_STRATEGY_STORE,
    "constraint": exp_pb.METRIC_STRATEGY_CONSTRAINT,
}
RUN_STATES = {
    "active": run_pb.RUN_STATE_ACTIVE,
    "completed": run_pb.RUN_STATE_COMPLETED,
    "failed": run_pb.RUN_STATE_FAILED,
}
SUGGESTION_STATES = {
    "open": sug_pb.SUGGESTION_STATE_OPEN,
    "closed": sug_pb.SUGGESTION_STATE_CLOSED,
    "expired": sug_pb.SUGGESTION_STATE_EXPIRED,
}


def _enum_to_proto(value: str | None, table: Mapping[str, Any], where: str) -> Any:
    if value is None:
        return 0
    key = str(value).lower()
    if key not in table:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(repr, table))}")
    return table[key]


def _enum_from_proto(value: int, table: Mapping[str, Any], default: str | None) -> str | None:
    for key, number in table.items():
        if number == value:
            return key
    return default


def _fields(obj: Any, allowed: Iterable[str], where: str) -> dict[str, Any]:
    """The fields of a mapping or dataclass instance, rejecting unknown keys."""
    if isinstance(obj, Mapping):
        data = dict(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        data = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        raise TypeError(f"{where}: expected a dict, got {type(obj).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    return data


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if data.get(key) is None:
        raise ValueError(f"{where}.{key} is required")
    return data[key]


# --- metadata and timestamps -------------------------------------------------


def metadata_to_proto(metadata: Mapping[str, Any] | None) -> struct_pb2.Struct | None:
    """A metadata dict as a google.protobuf.Struct (None stays None)."""
    if metadata is None:
        return None
    struct = struct_pb2.Struct()
    struct.update({str(k): v for k, v in metadata.items()})
    return struct


def metadata_from_proto(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A google.protobuf.Struct as a dict (numbers are floats)."""
    return json_format.MessageToDict(struct)


def timestamp_to_proto(value: datetime) -> timestamp_pb2.Timestamp:
    """A datetime (naive means UTC) as a google.protobuf.Timestamp."""
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def timestamp_from_proto(ts: timestamp_pb2.Timestamp) -> datetime:
    """A google.protobuf.Timestamp as an aware UTC datetime."""
    return ts.ToDatetime(tzinfo=UTC)


# --- assignments -------------------------------------------------------------


def assignment_value_to_proto(value: Any, where: str = "assignment") -> sug_pb.AssignmentValue:
    """int -> int_value, float -> double_value, str -> string_value."""
    if isinstance(value, bool):
        raise TypeError(f"{where}: booleans are not parameter values (got {value!r})")
    if isinstance(value, numbers.Integral):
        return sug_pb.AssignmentValue(int_value=int(value))
    if isinstance(value, numbers.Real):
        return sug_pb.AssignmentValue(double_value=float(value))
    if isinstance(value, str):
        return sug_pb.AssignmentValue(string_value=value)
    raise TypeError(f"{where}: expected int, float or str, got {type(value).__name__}")


def assignment_value_from_proto(value: sug_pb.AssignmentValue) -> int | float | str | None:
    """The Python value of the set oneof member (None when unset)."""
    kind = value.WhichOneof("kind")
    return None if kind is None else getattr(value, kind)


def assignments_to_proto(assignments: Mapping[str, Any]) -> dict[str, sug_pb.AssignmentValue]:
    """Name -> value as name -> AssignmentValue."""
    return {
        str(k): assignment_value_to_proto(v, f"assignments[{k!r}]") for k, v in assignments.items()
    }


def assignments_from_proto(assignments: Mapping[str, sug_pb.AssignmentValue]) -> Assignments:
    """A proto assignments map as :class:`Assignments`, sorted by name (unset values skipped)."""
    result = Assignments()
    for name in sorted(assignments):
        value = assignment_value_from_proto(assignments[name])
        if value is not None:
            result[name] = value
    return result


# --- the search space --------------------------------------------------------


def bounds_to_proto(bounds: Any, where: str = "bounds") -> exp_pb.Bounds:
    data = _fields(bounds, ("min", "max"), where)
    return exp_pb.Bounds(
        min=float(_require(data, "min", where)), max=float(_require(data, "max", where))
    )


def bounds_from_proto(bounds: exp_pb.Bounds, integral: bool = False) -> Bounds:
    if integral and float(bounds.min).is_integer() and float(bounds.max).is_integer():
        return Bounds(min=int(bounds.min), max=int(bounds.max))
    return Bounds(min=bounds.min, max=bounds.max)


_PARAMETER_KEYS = (
    "name",
    "type",
    "bounds",
    "categorical_values",
    "grid",
    "transformation",
    "conditions",
    "prior",
    "default_value",
)


def prior_to_proto(prior: Any, where: str = "prior") -> exp_pb.Prior:
    """SigOpt's prior dict: ``dict(name="normal", mean, scale)`` or
    ``dict(name="beta", shape_a, shape_b)``."""
    data = _fields(prior, ("name", "mean", "scale", "shape_a", "shape_b"), where)
    kind = str(_require(data, "name", where)).lower()
    if kind == "normal":
        _fields(data, ("name", "mean", "scale"), where)
        return exp_pb.Prior(
            normal=exp_pb.NormalPrior(
                mean=float(_require(data, "mean", where)),
                scale=float(_require(data, "scale", where)),
            )
        )
    if kind == "beta":
        _fields(data, ("name", "shape_a", "shape_b"), where)
        return exp_pb.Prior(
            beta=exp_pb.BetaPrior(
                shape_a=float(_require(data, "shape_a", where)),
                shape_b=float(_require(data, "shape_b", where)),
            )
        )
    raise ValueError(f"{where}.name: {data['name']!r} is not one of 'normal', 'beta'")


def prior_from_proto(msg: exp_pb.Prior) -> dict[str, Any] | None:
    kind = msg.WhichOneof("kind")
    if kind == "normal":
        return dict(name="normal", mean=msg.normal.mean, scale=msg.normal.scale)
    if kind == "beta":
        return dict(name="beta", shape_a=msg.beta.shape_a, shape_b=msg.beta.shape_b)
    return None


def parameter_to_proto(parameter: Any, where: str = "parameter") -> exp_pb.Parameter:
    """A parameter dict: name, type, bounds, categorical_values (strings or
    dicts with a name), grid, transformation, conditions (name -> a string or a
    list of strings)."""
    data = _fields(parameter, _PARAMETER_KEYS, where)
    msg = exp_pb.Parameter(
        name=str(_require(data, "name", where)),
        type=_enum_to_proto(_require(data, "type", where), PARAMETER_TYPES, f"{where}.type"),
        transformation=_enum_to_proto(
            data.get("transformation"), TRANSFORMATIONS, f"{where}.transformation"
        ),
    )
    if data.get("bounds") is not None:
        msg.bounds.CopyFrom(bounds_to_proto(data["bounds"], f"{where}.bounds"))
    for i, value in enumerate(data.get("categorical_values") or ()):
        if isinstance(value, str):
            msg.categorical_values.append(value)
        else:
            cv = _fields(value, ("name", "enum_index"), f"{where}.categorical_values[{i}]")
            msg.categorical_values.append(str(_require(cv, "name", where)))
    msg.grid.extend(float(v) for v in data.get("grid") or ())
    for name, values in (data.get("conditions") or {}).items():
        values = [values] if isinstance(values, str) else list(values)
        msg.conditions[str(name)].values.extend(str(v) for v in values)
    if data.get("prior") is not None:
        msg.prior.CopyFrom(prior_to_proto(data["prior"], f"{where}.prior"))
    if data.get("default_value") is not None:
        msg.default_value.CopyFrom(
            assignment_value_to_proto(data["default_value"], f"{where}.default_value")
        )
    return msg


def parameter_from_proto(msg: exp_pb.Parameter) -> Parameter:
    integral = msg.type == exp_pb.PARAMETER_TYPE_INT
    grid: list[Any] = list(msg.grid)
    if integral and all(float(g).is_integer() for g in grid):
        grid = [int(g) for g in grid]
    return Parameter(
        name=msg.name,
        type=_enum_from_proto(msg.type, PARAMETER_TYPES, "unspecified") or "unspecified",
        bounds=bounds_from_proto(msg.bounds, integral) if msg.HasField("bounds") else None,
        categorical_values=list(msg.categorical_values),
        grid=grid,
        transformation=_enum_from_proto(msg.transformation, TRANSFORMATIONS, None),
        conditions={k: list(msg.conditions[k].values) for k in sorted(msg.conditions)},
        prior=prior_from_proto(msg.prior) if msg.HasField("prior") else None,
        default_value=(
            assignment_value_from_proto(msg.default_value)
            if msg.HasField("default_value")
            else None
        ),
    )


def conditional_to_proto(conditional: Any, where: str = "conditional") -> exp_pb.Conditional:
    """A conditional dict: name, values (strings)."""
    data = _fields(conditional, ("name", "values"), where)
    return exp_pb.Conditional(
        name=str(_require(data, "name", where)),
        values=[str(v) for v in data.get("values") or ()],
    )


def conditional_from_proto(msg: exp_pb.Conditional) -> Conditional:
    return Conditional(name=msg.name, values=list(msg.values))


def linear_constraint_to_proto(
    constraint: Any, where: str = "linear_constraint"
) -> exp_pb.LinearConstraint:
    """A constraint dict: type ("less_than"/"greater_than"), threshold,
    terms=[dict(name, weight)]."""
    data = _fields(constraint, ("type", "threshold", "terms"), where)
    msg = exp_pb.LinearConstraint(
        type=_enum_to_proto(_require(data, "type", where), CONSTRAINT_TYPES, f"{where}.type"),
        threshold=float(data.get("threshold") or 0.0),
    )
    for i, term in enumerate(data.get("terms") or ()):
        t = _fields(term, ("name", "weight"), f"{where}.terms[{i}]")
        msg.terms.add(
            name=str(_require(t, "name", f"{where}.terms[{i}]")),
            weight=float(_require(t, "weight", f"{where}.terms[{i}]")),
        )
    return msg


def linear_constraint_from_proto(msg: exp_pb.LinearConstraint) -> LinearConstraint:
    return LinearConstraint(
        type=_enum_from_proto(msg.type, CONSTRAINT_TYPES, "unspecified") or "unspecified",
        threshold=msg.threshold,
        terms=[ConstraintTerm(name=t.name, weight=t.weight) for t in msg.terms],
    )


def metric_to_proto(metric: Any, where: str = "metric") -> exp_pb.Metric:
    """A metric dict: name, objective, strategy, threshold."""
    data = _fields(metric, ("name", "objective", "strategy", "threshold"), where)
    msg = exp_pb.Metric(
        name=str(_require(data, "name", where)),
        objective=_enum_to_proto(data.get("objective"), OBJECTIVES, f"{where}.objective"),
        strategy=_enum_to_proto(data.get("strategy"), STRATEGIES, f"{where}.strategy"),
    )
    if data.get("threshold") is not None:
        msg.threshold = float(data["threshold"])
    return msg


def metric_from_proto(msg: exp_pb.Metric) -> Metric:
    return Metric(
        name=msg.name,
        objective=_enum_from_proto(msg.objective, OBJECTIVES, "maximize") or "maximize",
        strategy=_enum_from_proto(msg.strategy, STRATEGIES, "optimize") or "optimize",
        threshold=msg.threshold if msg.HasField("threshold") else None,
    )


# --- observations and suggestions --------------------------------------------


def metric_value_to_proto(value: Any, where: str = "value") -> obs_pb.MetricValue:
    """A dict(name, value, value_stddev) as a MetricValue."""
    data = _fields(value, ("name", "value", "value_stddev"), where)
    msg = obs_pb.MetricValue(
        name=str(_require(data, "name", where)), value=float(_require(data, "value", where))
    )
    if data.get("value_stddev") is not None:
        msg.value_stddev = float(data["value_stddev"])
    return msg


def metric_value_from_proto(msg: obs_pb.MetricValue) -> MetricValue:
    return MetricValue(
        name=msg.name,
        value=msg.value,
        value_stddev=msg.value_stddev if msg.HasField("value_stddev") else None,
    )


def metric_values_to_proto(values: Any) -> list[obs_pb.MetricValue]:
    """A list of dict(name, value, value_stddev), or a mapping name -> value."""
    if isinstance(values, Mapping):
        values = [dict(name=k, value=v) for k, v in values.items()]
    return [metric_value_to_proto(v, f"values[{i}]") for i, v in enumerate(values)]


_OBSERVATION_KEYS = (
    "id",
    "experiment_id",
    "suggestion_id",
    "suggestion",
    "assignments",
    "values",
    "failed",
    "metadata",
    "create_time",
)


def observation_to_proto(observation: Any, where: str = "observation") -> obs_pb.Observation:
    """An observation dict: suggestion (or suggestion_id) or assignments,
    values or failed, metadata."""
    data = _fields(observation, _OBSERVATION_KEYS, where)
    suggestion = data.get("suggestion_id") or data.get("suggestion")
    if isinstance(suggestion, Suggestion):
        suggestion = suggestion.id
    msg = obs_pb.Observation(
        id=data.get("id") or "",
        experiment_id=data.get("experiment_id") or "",
        suggestion_id=suggestion or "",
        failed=bool(data.get("failed")),
    )
    for k, v in assignments_to_proto(data.get("assignments") or {}).items():
        msg.assignments[k].CopyFrom(v)
    msg.values.extend(metric_values_to_proto(data.get("values") or []))
    metadata = metadata_to_proto(data.get("metadata"))
    if metadata is not None:
        msg.metadata.CopyFrom(metadata)
    if data.get("create_time") is not None:
        msg.create_time.CopyFrom(timestamp_to_proto(data["create_time"]))
    return msg


def observation_from_proto(msg: obs_pb.Observation) -> Observation:
    return Observation(
        id=msg.id,
        experiment_id=msg.experiment_id,
        suggestion_id=msg.suggestion_id or None,
        assignments=assignments_from_proto(msg.assignments),
        values=[metric_value_from_proto(v) for v in msg.values],
        failed=msg.failed,
        metadata=metadata_from_proto(msg.metadata) if msg.HasField("metadata") else None,
        create_time=timestamp_from_proto(msg.create_time) if msg.HasField("create_time") else None,
    )


def suggestion_to_proto(suggestion: Any, where: str = "suggestion") -> sug_pb.Suggestion:
    data = _fields(
        suggestion,
        (
            "id",
            "experiment_id",
            "assignments",
            "state",
            "metadata",
            "create_time",
            "expire_time",
            "lease_seconds",
        ),
        where,
    )
    msg = sug_pb.Suggestion(
        id=data.get("id") or "",
        experiment_id=data.get("experiment_id") or "",
        state=_enum_to_proto(data.get("state"), SUGGESTION_STATES, f"{where}.state"),
    )
    for k, v in assignments_to_proto(data.get("assignments") or {}).items():
        msg.assignments[k].CopyFrom(v)
    metadata = metadata_to_proto(data.get("metadata"))
    if metadata is not None:
        msg.metadata.CopyFrom(metadata)
    for key in ("create_time", "expire_time"):
        if data.get(key) is not None:
            getattr(msg, key).CopyFrom(timestamp_to_proto(data[key]))
    if data.get("lease_seconds") is not None:
        msg.lease_seconds = int(data["lease_seconds"])
    return msg


def suggestion_from_proto(msg: sug_pb.Suggestion) -> Suggestion:
    return Suggestion(
        id=msg.id,
        experiment_id=msg.experiment_id,
        assignments=assignments_from_proto(msg.assignments),
        state=_enum_from_proto(msg.state, SUGGESTION_STATES, None),
        metadata=metadata_from_proto(msg.metadata) if msg.HasField("metadata") else None,
        create_time=timestamp_from_proto(msg.create_time) if msg.HasField("create_time") else None,
        expire_time=timestamp_from_proto(msg.expire_time) if msg.HasField("expire_time") else None,
        lease_seconds=msg.lease_seconds or None,
    )


# --- experiments -------------------------------------------------------------


def progress_to_proto(progress: Any, where: str = "progress") -> exp_pb.Progress:
    data = _fields(
        progress,
        (
            "observation_count",
            "failed_observation_count",
            "open_suggestion_count",
            "best_observation",
            "observation_budget_consumed",
            "first_observation",
            "last_observation",
            "total_run_count",
            "finished_run_count",
            "active_run_count",
        ),
        where,
    )
    msg = exp_pb.Progress(
        observation_count=int(data.get("observation_count") or 0),
        failed_observation_count=int(data.get("failed_observation_count") or 0),
        open_suggestion_count=int(data.get("open_suggestion_count") or 0),
    )
    for key in (
        "observation_budget_consumed",
        "total_run_count",
        "finished_run_count",
        "active_run_count",
    ):
        setattr(msg, key, int(data.get(key) or 0))
    for key in ("best_observation", "first_observation", "last_observation"):
        if data.get(key) is not None:
            getattr(msg, key).CopyFrom(observation_to_proto(data[key]))
    return msg


def progress_from_proto(msg: exp_pb.Progress) -> Progress:
    return Progress(
        observation_count=msg.observation_count,
        failed_observation_count=msg.failed_observation_count,
        open_suggestion_count=msg.open_suggestion_count,
        best_observation=(
            observation_from_proto(msg.best_observation)
            if msg.HasField("best_observation")
            else None
        ),
        observation_budget_consumed=msg.observation_budget_consumed,
        first_observation=(
            observation_from_proto(msg.first_observation)
            if msg.HasField("first_observation")
            else None
        ),
        last_observation=(
            observation_from_proto(msg.last_observation)
            if msg.HasField("last_observation")
            else None
        ),
        total_run_count=msg.total_run_count,
        finished_run_count=msg.finished_run_count,
        active_run_count=msg.active_run_count,
    )


EXPERIMENT_KEYS = (
    "id",
    "name",
    "project",
    "type",
    "parameters",
    "conditionals",
    "linear_constraints",
    "metrics",
    "observation_budget",
    "budget",
    "parallel_bandwidth",
    "num_solutions",
    "metadata",
    "state",
    "create_time",
    "update_time",
    "progress",
    "seed",
    "suggestion_lease_seconds",
    "runs_only",
)


def experiment_to_proto(experiment: Any, where: str = "experiment") -> exp_pb.Experiment:
    """An experiment dict with SigOpt's keys (``budget`` or ``observation_budget``)."""
    data = _fields(experiment, EXPERIMENT_KEYS, where)
    budget = data.get("observation_budget")
    if data.get("budget") is not None:
        if budget is not None and budget != data["budget"]:
            raise ValueError(f"{where}: budget and observation_budget differ")
        budget = data["budget"]
    msg = exp_pb.Experiment(
        id=data.get("id") or "",
        name=data.get("name") or "",
        project=data.get("project") or "",
        type=_enum_to_proto(data.get("type"), EXPERIMENT_TYPES, f"{where}.type"),
        parallel_bandwidth=int(data.get("parallel_bandwidth") or 0),
        num_solutions=int(data.get("num_solutions") or 0),
        state=_enum_to_proto(data.get("state"), EXPERIMENT_STATES, f"{where}.state"),
        runs_only=bool(data.get("runs_only")),
    )
    msg.parameters.extend(
        parameter_to_proto(p, f"{where}.parameters[{i}]")
        for i, p in enumerate(data.get("parameters") or ())
    )
    msg.conditionals.extend(
        conditional_to_proto(c, f"{where}.conditionals[{i}]")
        for i, c in enumerate(data.get("conditionals") or ())
    )
    msg.linear_constraints.extend(
        linear_constraint_to_proto(c, f"{where}.linear_constraints[{i}]")
        for i, c in enumerate(data.get("linear_constraints") or ())
    )
    msg.metrics.extend(
        metric_to_proto(m, f"{where}.metrics[{i}]") for i, m in enumerate(data.get("metrics") or ())
    )
    if budget is not None:
        msg.observation_budget = int(budget)
    metadata = metadata_to_proto(data.get("metadata"))
    if metadata is not None:
        msg.metadata.CopyFrom(metadata)
    if data.get("seed") is not None:
        msg.seed = int(data["seed"])
    if data.get("suggestion_lease_seconds") is not None:
        msg.suggestion_lease_seconds = int(data["suggestion_lease_seconds"])
    for key in ("create_time", "update_time"):
        if data.get(key) is not None:
            getattr(msg, key).CopyFrom(timestamp_to_proto(data[key]))
    if data.get("progress") is not None:
        msg.progress.CopyFrom(progress_to_proto(data["progress"], f"{where}.progress"))
    return msg


def experiment_from_proto(msg: exp_pb.Experiment) -> Experiment:
    return Experiment(
        id=msg.id,
        name=msg.name,
        project=msg.project,
        type=_enum_from_proto(msg.type, EXPERIMENT_TYPES, "offline") or "offline",
        parameters=[parameter_from_proto(p) for p in msg.parameters],
        conditionals=[conditional_from_proto(c) for c in msg.conditionals],
        linear_constraints=[linear_constraint_from_proto(c) for c in msg.linear_constraints],
        metrics=[metric_from_proto(m) for m in msg.metrics],
        observation_budget=msg.observation_budget if msg.HasField("observation_budget") else None,
        parallel_bandwidth=msg.parallel_bandwidth or 1,
        num_solutions=msg.num_solutions or 1,
        metadata=metadata_from_proto(msg.metadata) if msg.HasField("metadata") else None,
        state=_enum_from_proto(msg.state, EXPERIMENT_STATES, "active") or "active",
        create_time=timestamp_from_proto(msg.create_time) if msg.HasField("create_time") else None,
        update_time=timestamp_from_proto(msg.update_time) if msg.HasField("update_time") else None,
        progress=progress_from_proto(msg.progress),
        seed=msg.seed if msg.HasField("seed") else None,
        suggestion_lease_seconds=(
            msg.suggestion_lease_seconds if msg.HasField("suggestion_lease_seconds") else None
        ),
        runs_only=msg.runs_only,
    )


# --- queued suggestions, projects, training runs -----------------------------


def _time(msg: Any, key: str) -> datetime | None:
    return timestamp_from_proto(getattr(msg, key)) if msg.HasField(key) else None


def queued_suggestion_from_proto(msg: sug_pb.QueuedSuggestion) -> QueuedSuggestion:
    return QueuedSuggestion(
        id=msg.id,
        experiment_id=msg.experiment_id,
        assignments=assignments_from_proto(msg.assignments),
        create_time=_time(msg, "create_time"),
    )


def project_to_proto(project: Any, where: str = "project") -> prj_pb.Project:
    """A project dict: id, name, metadata."""
    data = _fields(project, ("id", "name", "metadata", "create_time", "update_time"), where)
    msg = prj_pb.Project(id=str(data.get("id") or ""), name=str(data.get("name") or ""))
    metadata = metadata_to_proto(data.get("metadata"))
    if metadata is not None:
        msg.metadata.CopyFrom(metadata)
    return msg


def project_from_proto(msg: prj_pb.Project) -> Project:
    return Project(
        id=msg.id,
        name=msg.name,
        metadata=metadata_from_proto(msg.metadata) if msg.HasField("metadata") else None,
        create_time=_time(msg, "create_time"),
        update_time=_time(msg, "update_time"),
    )


def run_value_to_proto(value: Any, where: str = "value") -> run_pb.RunValue:
    """A number, a :class:`RunValue`, or a dict(value, value_stddev)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return run_pb.RunValue(value=float(value))
    data = _fields(value, ("value", "value_stddev"), where)
    msg = run_pb.RunValue(value=float(_require(data, "value", where)))
    if data.get("value_stddev") is not None:
        msg.value_stddev = float(data["value_stddev"])
    return msg


def run_value_from_proto(msg: run_pb.RunValue) -> RunValue:
    return RunValue(
        value=msg.value,
        value_stddev=msg.value_stddev if msg.HasField("value_stddev") else None,
    )


def checkpoint_from_proto(msg: run_pb.Checkpoint) -> Checkpoint:
    return Checkpoint(
        id=msg.id,
        values={k: run_value_from_proto(msg.values[k]) for k in sorted(msg.values)},
        metadata=metadata_from_proto(msg.metadata) if msg.HasField("metadata") else None,
        create_time=_time(msg, "create_time"),
    )


# TrainingRun fields UpdateTrainingRun may change.
RUN_UPDATABLE = ("name", "state", "deleted", "assignments", "values", "metadata", "extras")


def run_patch_to_proto(run_id: str, fields: Mapping[str, Any]) -> run_pb.TrainingRun:
    """The fields of an update (``RUN_UPDATABLE``) on a TrainingRun message."""
    msg = run_pb.TrainingRun(id=run_id)
    if "name" in fields:
        msg.name = str(fields["name"] or "")
    if "state" in fields:
        msg.state = _enum_to_proto(fields["state"], RUN_STATES, "state")
    if "deleted" in fields:
        msg.deleted = bool(fields["deleted"])
    for k, v in assignments_to_proto(fields.get("assignments") or {}).items():
        msg.assignments[k].CopyFrom(v)
    for name, value in (fields.get("values") or {}).items():
        msg.values[str(name)].CopyFrom(run_value_to_proto(value, f"values[{name!r}]"))
    for key in ("metadata", "extras"):
        struct = metadata_to_proto(fields.get(key))
        if struct is not None:
            getattr(msg, key).CopyFrom(struct)
    return msg


def run_from_proto(msg: run_pb.TrainingRun) -> TrainingRun:
    return TrainingRun(
        id=msg.id,
        project=msg.project,
        name=msg.name,
        experiment_id=msg.experiment_id or None,
        suggestion_id=msg.suggestion_id or None,
        observation_id=msg.observation_id or None,
        state=_enum_from_proto(msg.state, RUN_STATES, "active") or "active",
        assignments=assignments_from_proto(msg.assignments),
        values={k: run_value_from_proto(msg.values[k]) for k in sorted(msg.values)},
        metadata=metadata_from_proto(msg.metadata) if msg.HasField("metadata") else None,
        extras=metadata_from_proto(msg.extras) if msg.HasField("extras") else None,
        deleted=msg.deleted,
        checkpoints=[checkpoint_from_proto(c) for c in msg.checkpoints],
        create_time=_time(msg, "create_time"),
        update_time=_time(msg, "update_time"),
        complete_time=_time(msg, "complete_time"),
    )
