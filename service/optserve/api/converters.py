"""proto <-> domain conversions, as ``*_to_proto`` / ``*_from_proto`` pairs.

``*_from_proto`` read requests strictly: an unknown enum value, an unset oneof
or metadata breaking its rules is an InvalidArgument naming the field, never a
silent default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.json_format import MessageToDict

from ..domain import ids, limits
from ..domain import model as m
from ..domain import runs as rn
from ..domain import tenancy as tn
from ..domain.errors import FieldViolation, InvalidArgument
from ..domain.validation import MAX_REPORTED_VIOLATIONS, map_key, metadata_violations
from ..v1 import experiment_pb2 as ex_pb
from ..v1 import observation_pb2 as ob_pb
from ..v1 import project_pb2 as pj_pb
from ..v1 import run_pb2 as rn_pb
from ..v1 import suggestion_pb2 as su_pb
from ..v1 import token_pb2 as tk_pb

_EXPERIMENT_TYPES: dict[int, m.ExperimentType] = {
    ex_pb.EXPERIMENT_TYPE_UNSPECIFIED: m.ExperimentType.OFFLINE,
    ex_pb.EXPERIMENT_TYPE_OFFLINE: m.ExperimentType.OFFLINE,
    ex_pb.EXPERIMENT_TYPE_RANDOM: m.ExperimentType.RANDOM,
    ex_pb.EXPERIMENT_TYPE_GRID: m.ExperimentType.GRID,
}
_EXPERIMENT_STATES: dict[int, m.ExperimentState] = {
    ex_pb.EXPERIMENT_STATE_ACTIVE: m.ExperimentState.ACTIVE,
    ex_pb.EXPERIMENT_STATE_ARCHIVED: m.ExperimentState.ARCHIVED,
    ex_pb.EXPERIMENT_STATE_DELETED: m.ExperimentState.DELETED,
}
_PARAMETER_TYPES: dict[int, m.ParameterType] = {
    ex_pb.PARAMETER_TYPE_DOUBLE: m.ParameterType.DOUBLE,
    ex_pb.PARAMETER_TYPE_INT: m.ParameterType.INT,
    ex_pb.PARAMETER_TYPE_CATEGORICAL: m.ParameterType.CATEGORICAL,
}
_TRANSFORMATIONS: dict[int, m.Transformation] = {
    ex_pb.TRANSFORMATION_UNSPECIFIED: m.Transformation.NONE,
    ex_pb.TRANSFORMATION_NONE: m.Transformation.NONE,
    ex_pb.TRANSFORMATION_LOG: m.Transformation.LOG,
}
_CONSTRAINT_TYPES: dict[int, m.ConstraintType] = {
    ex_pb.LINEAR_CONSTRAINT_TYPE_LESS_THAN: m.ConstraintType.LESS_THAN,
    ex_pb.LINEAR_CONSTRAINT_TYPE_GREATER_THAN: m.ConstraintType.GREATER_THAN,
}
_OBJECTIVES: dict[int, m.Objective] = {
    ex_pb.METRIC_OBJECTIVE_UNSPECIFIED: m.Objective.MAXIMIZE,
    ex_pb.METRIC_OBJECTIVE_MAXIMIZE: m.Objective.MAXIMIZE,
    ex_pb.METRIC_OBJECTIVE_MINIMIZE: m.Objective.MINIMIZE,
}
_STRATEGIES: dict[int, m.Strategy] = {
    ex_pb.METRIC_STRATEGY_UNSPECIFIED: m.Strategy.OPTIMIZE,
    ex_pb.METRIC_STRATEGY_OPTIMIZE: m.Strategy.OPTIMIZE,
    ex_pb.METRIC_STRATEGY_STORE: m.Strategy.STORE,
    ex_pb.METRIC_STRATEGY_CONSTRAINT: m.Strategy.CONSTRAINT,
}
_SUGGESTION_STATES: dict[int, m.SuggestionState] = {
    su_pb.SUGGESTION_STATE_OPEN: m.SuggestionState.OPEN,
    su_pb.SUGGESTION_STATE_CLOSED: m.SuggestionState.CLOSED,
    su_pb.SUGGESTION_STATE_EXPIRED: m.SuggestionState.EXPIRED,
}
_TOKEN_ROLES: dict[int, tn.Role] = {
    tk_pb.TOKEN_ROLE_READ: tn.Role.READ,
    tk_pb.TOKEN_ROLE_WRITE: tn.Role.WRITE,
    tk_pb.TOKEN_ROLE_ADMIN: tn.Role.ADMIN,
}


# (id of a mapping, domain value) -> proto value: mappings are module constants
_REVERSED: dict[tuple[int, Any], Any] = {}


def _enum_to_proto(mapping: dict, value: Any) -> Any:
    key = (id(mapping), value)
    found = _REVERSED.get(key)
    if found is None:
        # prefer the explicit (non-UNSPECIFIED) proto value when several map to one domain value
        found = _REVERSED[key] = max(k for k, v in mapping.items() if v is value)
    return found


class _Violations:
    """Violations found while reading one request."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        if len(self.items) < MAX_REPORTED_VIOLATIONS:
            self.items.append(FieldViolation(field, description))

    def extend(self, violations: list[FieldViolation]) -> None:
        for v in violations:
            self.add(v.field, v.description)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def _enum(value: int, mapping: dict, enum_type: Any, field: str, out: _Violations) -> Any:
    """The domain value of a proto enum value; None when unspecified without a default."""
    if value in mapping:
        return mapping[value]
    if value != 0:
        names = ", ".join(enum_type.Name(k) for k in sorted(mapping) if k)
        out.add(field, f"unknown value {value}: one of {names}")
    return None


# ------------------------------------------------------------------ small pieces


def _struct(s: struct_pb2.Struct, path: str, out: _Violations) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in s.fields.items():
        kind = value.WhichOneof("kind")
        if kind is None:
            out.add(f"{path}{map_key(key)}", "required: a value (null_value for none)")
        elif kind == "null_value":
            data[key] = None
        elif kind == "struct_value":
            data[key] = {}  # refused by the metadata rules, without reading it
        elif kind == "list_value":
            data[key] = []
        else:
            data[key] = getattr(value, kind)
    out.extend(metadata_violations(data, path))
    return data


def struct_from_proto(s: struct_pb2.Struct, path: str) -> dict[str, Any]:
    """Metadata as a dict of strings, floats and None.

    Raises:
        InvalidArgument: naming ``path`` and the key when a rule is broken.
    """
    out = _Violations()
    data = _struct(s, path, out)
    out.raise_if_any()
    return data


def struct_to_proto(d: dict[str, Any], out: struct_pb2.Struct) -> None:
    out.Clear()
    if d:
        out.update(d)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_to_proto(t: datetime | None, out: timestamp_pb2.Timestamp) -> None:
    """What ``Timestamp.FromDatetime`` stores, in integer arithmetic (without its
    time tuples: this runs several times per reply)."""
    if t is not None:
        if t.tzinfo is None:
            out.FromDatetime(t)
            return
        delta = t - _EPOCH
        out.seconds = delta.days * 86400 + delta.seconds
        out.nanos = delta.microseconds * 1000


def _assignments(a: Any, path: str, out: _Violations) -> m.Assignments:
    data: m.Assignments = {}
    for key, value in a.items():
        kind = value.WhichOneof("kind")
        if kind is None:
            out.add(
                f"{path}{map_key(key)}", "required: one of double_value, int_value, string_value"
            )
        else:
            data[key] = getattr(value, kind)
    return data


def value_to_proto(value: m.Value, out: su_pb.AssignmentValue) -> None:
    if isinstance(value, str):
        out.string_value = value
    elif isinstance(value, int) and not isinstance(value, bool):
        out.int_value = value
    else:
        out.double_value = float(value)


def assignments_to_proto(a: m.Assignments, out: Any) -> None:
    for k, v in a.items():
        value_to_proto(v, out[k])


# ------------------------------------------------------------------ experiments


def experiment_state_from_proto(v: int, field: str) -> m.ExperimentState | None:
    """None when unspecified.

    Raises:
        InvalidArgument: naming ``field`` for an unknown value.
    """
    out = _Violations()
    state = _enum(v, _EXPERIMENT_STATES, ex_pb.ExperimentState, field, out)
    out.raise_if_any()
    return state


def _search_space_size(p: ex_pb.Experiment) -> tuple[int, str, int]:
    """Bytes of the search space as protobuf, and the path and size of its largest element."""
    total, largest, largest_size = 0, "", -1
    for name in ("parameters", "conditionals", "linear_constraints", "metrics"):
        for i, part in enumerate(getattr(p, name)):
            size = part.ByteSize()
            total += size
            if size > largest_size:
                largest, largest_size = f"{name}[{i}]", size
    return total, largest, largest_size


def _check_search_space(p: ex_pb.Experiment, prefix: str) -> None:
    size, largest, largest_size = _search_space_size(p)
    if size > limits.MAX_SEARCH_SPACE_BYTES:
        raise InvalidArgument.single(
            f"{prefix}.{largest}" if prefix else largest,
            f"the search space (parameters, conditionals, linear_constraints, metrics) takes at "
            f"most {limits.MAX_SEARCH_SPACE_BYTES} bytes as protobuf (got {size}, this element "
            f"{largest_size})",
        )


def check_search_space(e: m.Experiment, prefix: str = "") -> None:
    """The search-space size limit on a domain experiment (as another transport gave it)."""
    _check_search_space(experiment_to_proto(e), prefix)


def experiment_from_proto(p: ex_pb.Experiment, prefix: str = "experiment") -> m.Experiment:
    """Raises:
    InvalidArgument: for unknown enum values, bad metadata or an oversized search space."""
    out = _Violations()
    _check_search_space(p, prefix)
    parameters = []
    for i, q in enumerate(p.parameters):
        path = f"{prefix}.parameters[{i}]"
        parameters.append(
            m.Parameter(
                name=q.name,
                type=_enum(q.type, _PARAMETER_TYPES, ex_pb.ParameterType, f"{path}.type", out),
                bounds=m.Bounds(q.bounds.min, q.bounds.max) if q.HasField("bounds") else None,
                categorical_values=list(q.categorical_values),
                grid=list(q.grid),
                transformation=_enum(
                    q.transformation,
                    _TRANSFORMATIONS,
                    ex_pb.Transformation,
                    f"{path}.transformation",
                    out,
                ),
                conditions={k: list(v.values) for k, v in q.conditions.items()},
                prior=_prior_from_proto(q, f"{path}.prior", out),
                default_value=_default_from_proto(q, f"{path}.default_value", out),
            )
        )
    constraints = []
    for i, c in enumerate(p.linear_constraints):
        path = f"{prefix}.linear_constraints[{i}].type"
        constraints.append(
            m.LinearConstraint(
                type=_enum(c.type, _CONSTRAINT_TYPES, ex_pb.LinearConstraintType, path, out),
                threshold=c.threshold,
                terms=[m.ConstraintTerm(t.name, t.weight) for t in c.terms],
            )
        )
    metrics = []
    for i, q in enumerate(p.metrics):
        path = f"{prefix}.metrics[{i}]"
        metrics.append(
            m.Metric(
                name=q.name,
                objective=_enum(
                    q.objective, _OBJECTIVES, ex_pb.MetricObjective, f"{path}.objective", out
                ),
                strategy=_enum(
                    q.strategy, _STRATEGIES, ex_pb.MetricStrategy, f"{path}.strategy", out
                ),
                threshold=q.threshold if q.HasField("threshold") else None,
            )
        )
    kind = _enum(p.type, _EXPERIMENT_TYPES, ex_pb.ExperimentType, f"{prefix}.type", out)
    state = _enum(p.state, _EXPERIMENT_STATES, ex_pb.ExperimentState, f"{prefix}.state", out)
    metadata = _struct(p.metadata, f"{prefix}.metadata", out)
    out.raise_if_any()
    return m.Experiment(
        id=p.id,
        name=p.name,
        project=p.project,
        type=kind,
        parameters=parameters,
        conditionals=[m.Conditional(c.name, list(c.values)) for c in p.conditionals],
        linear_constraints=constraints,
        metrics=metrics,
        observation_budget=p.observation_budget if p.HasField("observation_budget") else None,
        parallel_bandwidth=p.parallel_bandwidth or 1,
        num_solutions=p.num_solutions or 1,
        metadata=metadata,
        state=state or m.ExperimentState.ACTIVE,
        suggestion_lease_seconds=(
            p.suggestion_lease_seconds if p.HasField("suggestion_lease_seconds") else None
        ),
        runs_only=p.runs_only,
    )


def _prior_from_proto(q: ex_pb.Parameter, path: str, out: _Violations) -> m.Prior | None:
    if not q.HasField("prior"):
        return None
    kind = q.prior.WhichOneof("kind")
    if kind == "normal":
        return m.Prior(m.PriorType.NORMAL, mean=q.prior.normal.mean, scale=q.prior.normal.scale)
    if kind == "beta":
        return m.Prior(m.PriorType.BETA, shape_a=q.prior.beta.shape_a, shape_b=q.prior.beta.shape_b)
    out.add(path, "required: normal or beta")
    return None


def _default_from_proto(q: ex_pb.Parameter, path: str, out: _Violations) -> m.Value | None:
    if not q.HasField("default_value"):
        return None
    kind = q.default_value.WhichOneof("kind")
    if kind is None:
        out.add(path, "required: one of double_value, int_value, string_value")
        return None
    value: m.Value = getattr(q.default_value, kind)
    return value


def experiment_to_proto(e: m.Experiment) -> ex_pb.Experiment:
    p = ex_pb.Experiment(
        id=e.id,
        name=e.name,
        project=e.project,
        type=_enum_to_proto(_EXPERIMENT_TYPES, e.type),
        parallel_bandwidth=e.parallel_bandwidth,
        num_solutions=e.num_solutions,
        state=_enum_to_proto(_EXPERIMENT_STATES, e.state),
        seed=e.seed,
    )
    for q in e.parameters:
        pq = p.parameters.add(
            name=q.name,
            categorical_values=q.categorical_values,
            grid=q.grid,
            transformation=_enum_to_proto(_TRANSFORMATIONS, q.transformation),
        )
        if q.type is not None:
            pq.type = _enum_to_proto(_PARAMETER_TYPES, q.type)
        if q.bounds is not None:
            pq.bounds.min, pq.bounds.max = q.bounds.min, q.bounds.max
        for name, values in q.conditions.items():
            pq.conditions[name].values.extend(values)
        prior = q.prior
        if prior is not None and prior.type is m.PriorType.NORMAL:
            pq.prior.normal.mean, pq.prior.normal.scale = prior.mean or 0.0, prior.scale or 0.0
        elif prior is not None and prior.type is m.PriorType.BETA:
            pq.prior.beta.shape_a, pq.prior.beta.shape_b = prior.shape_a or 0, prior.shape_b or 0
        if q.default_value is not None:
            value_to_proto(q.default_value, pq.default_value)
    for c in e.conditionals:
        p.conditionals.add(name=c.name, values=c.values)
    for lc in e.linear_constraints:
        pc = p.linear_constraints.add(threshold=lc.threshold)
        if lc.type is not None:
            pc.type = _enum_to_proto(_CONSTRAINT_TYPES, lc.type)
        for t in lc.terms:
            pc.terms.add(name=t.name, weight=t.weight)
    for metric in e.metrics:
        pm = p.metrics.add(
            name=metric.name,
            objective=_enum_to_proto(_OBJECTIVES, metric.objective),
            strategy=_enum_to_proto(_STRATEGIES, metric.strategy),
        )
        if metric.threshold is not None:
            pm.threshold = metric.threshold
    if e.observation_budget is not None:
        p.observation_budget = e.observation_budget
    if e.suggestion_lease_seconds is not None:
        p.suggestion_lease_seconds = e.suggestion_lease_seconds
    struct_to_proto(e.metadata, p.metadata)
    time_to_proto(e.create_time, p.create_time)
    time_to_proto(e.update_time, p.update_time)
    pr = e.progress
    p.progress.observation_count = pr.observation_count
    p.progress.failed_observation_count = pr.failed_observation_count
    p.progress.open_suggestion_count = pr.open_suggestion_count
    converted: dict[str, ob_pb.Observation] = {}  # best, first and last are often one

    def observation(o: m.Observation) -> ob_pb.Observation:
        if o.id not in converted:
            converted[o.id] = observation_to_proto(o)
        return converted[o.id]

    if pr.best_observation is not None:
        p.progress.best_observation.CopyFrom(observation(pr.best_observation))
    p.progress.observation_budget_consumed = pr.observation_count
    if pr.first_observation is not None:
        p.progress.first_observation.CopyFrom(observation(pr.first_observation))
    if pr.last_observation is not None:
        p.progress.last_observation.CopyFrom(observation(pr.last_observation))
    p.progress.total_run_count = pr.total_run_count
    p.progress.finished_run_count = pr.finished_run_count
    p.progress.active_run_count = pr.active_run_count
    p.runs_only = e.runs_only
    return p


# ------------------------------------------------------------------ suggestions


def suggestion_state_from_proto(v: int, field: str) -> m.SuggestionState | None:
    """None when unspecified.

    Raises:
        InvalidArgument: naming ``field`` for an unknown value.
    """
    out = _Violations()
    state = _enum(v, _SUGGESTION_STATES, su_pb.SuggestionState, field, out)
    out.raise_if_any()
    return state


def suggestion_to_proto(s: m.Suggestion) -> su_pb.Suggestion:
    p = su_pb.Suggestion(
        id=s.id,
        experiment_id=s.experiment_id,
        state=_enum_to_proto(_SUGGESTION_STATES, s.state),
        lease_seconds=s.lease_seconds,
    )
    assignments_to_proto(s.assignments, p.assignments)
    struct_to_proto(s.metadata, p.metadata)
    time_to_proto(s.create_time, p.create_time)
    time_to_proto(s.expire_time, p.expire_time)
    return p


# ------------------------------------------------------------------ observations


def metric_values_from_proto(values: Any) -> list[m.MetricValue]:
    return [
        m.MetricValue(v.name, v.value, v.value_stddev if v.HasField("value_stddev") else None)
        for v in values
    ]


def observation_from_proto(
    p: ob_pb.Observation, experiment_id: str, prefix: str = "observation"
) -> m.Observation:
    """Raises:
    InvalidArgument: for a malformed suggestion id, an unset assignment or bad metadata."""
    out = _Violations()
    if p.suggestion_id and ids.parse_id(p.suggestion_id) is None:
        out.add(f"{prefix}.suggestion_id", f"not an id: {ids.ID_RULE}")
    assignments = _assignments(p.assignments, f"{prefix}.assignments", out)
    metadata = _struct(p.metadata, f"{prefix}.metadata", out)
    out.raise_if_any()
    return m.Observation(
        id=p.id,
        experiment_id=experiment_id,
        suggestion_id=p.suggestion_id or None,
        assignments=assignments,
        values=metric_values_from_proto(p.values),
        failed=p.failed,
        metadata=metadata,
    )


def observation_to_proto(o: m.Observation) -> ob_pb.Observation:
    p = ob_pb.Observation(
        id=o.id,
        experiment_id=o.experiment_id,
        suggestion_id=o.suggestion_id or "",
        failed=o.failed,
    )
    assignments_to_proto(o.assignments, p.assignments)
    for v in o.values:
        pv = p.values.add(name=v.name, value=v.value)
        if v.stddev is not None:
            pv.value_stddev = v.stddev
    struct_to_proto(o.metadata, p.metadata)
    time_to_proto(o.create_time, p.create_time)
    return p


# ------------------------------------------------------------------ tokens


def token_role_from_proto(v: int) -> tn.Role | None:
    return _TOKEN_ROLES.get(v)


def token_from_proto(p: tk_pb.Token) -> tn.Token:
    role = token_role_from_proto(p.role)
    if role is None:
        raise InvalidArgument.single("token.role", "required: read, write or admin")
    return tn.Token(id="", name=p.name, role=role, projects=list(p.projects))


def token_to_proto(token: tn.Token) -> tk_pb.Token:
    p = tk_pb.Token(
        id=token.id,
        name=token.name,
        role=_enum_to_proto(_TOKEN_ROLES, token.role),
        projects=token.projects,
    )
    time_to_proto(token.create_time, p.create_time)
    time_to_proto(token.revoke_time, p.revoke_time)
    return p


# ------------------------------------------------------------------ queued suggestions


def assignments_from_proto(a: Any, path: str) -> m.Assignments:
    """Raises:
    InvalidArgument: for an assignment without a value."""
    out = _Violations()
    data = _assignments(a, path, out)
    out.raise_if_any()
    return data


def queued_suggestion_to_proto(q: m.QueuedSuggestion) -> su_pb.QueuedSuggestion:
    p = su_pb.QueuedSuggestion(id=q.id, experiment_id=q.experiment_id)
    assignments_to_proto(q.assignments, p.assignments)
    time_to_proto(q.create_time, p.create_time)
    return p


# ------------------------------------------------------------------ projects, runs

_RUN_STATES: dict[int, rn.RunState] = {
    rn_pb.RUN_STATE_ACTIVE: rn.RunState.ACTIVE,
    rn_pb.RUN_STATE_COMPLETED: rn.RunState.COMPLETED,
    rn_pb.RUN_STATE_FAILED: rn.RunState.FAILED,
}
RUN_MASK_FIELDS = {"name", "state", "deleted", "assignments", "values", "metadata", "extras"}


def project_from_proto(p: pj_pb.Project, prefix: str = "project") -> rn.Project:
    return rn.Project(
        id=p.id, name=p.name or p.id, metadata=struct_from_proto(p.metadata, f"{prefix}.metadata")
    )


def project_to_proto(project: rn.Project) -> pj_pb.Project:
    p = pj_pb.Project(id=project.id, name=project.name)
    struct_to_proto(project.metadata, p.metadata)
    time_to_proto(project.create_time, p.create_time)
    time_to_proto(project.update_time, p.update_time)
    return p


def _run_values_from_proto(values: Any) -> dict[str, rn.RunValue]:
    return {
        name: rn.RunValue(v.value, v.value_stddev if v.HasField("value_stddev") else None)
        for name, v in values.items()
    }


def _run_values_to_proto(values: dict[str, rn.RunValue], out: Any) -> None:
    for name, v in values.items():
        out[name].value = v.value
        if v.stddev is not None:
            out[name].value_stddev = v.stddev


def checkpoint_from_proto(p: rn_pb.Checkpoint) -> tuple[dict[str, rn.RunValue], dict[str, Any]]:
    return _run_values_from_proto(p.values), struct_from_proto(p.metadata, "checkpoint.metadata")


def checkpoint_to_proto(c: rn.Checkpoint) -> rn_pb.Checkpoint:
    p = rn_pb.Checkpoint(id=c.id)
    _run_values_to_proto(c.values, p.values)
    struct_to_proto(c.metadata, p.metadata)
    time_to_proto(c.create_time, p.create_time)
    return p


def run_patch_from_proto(p: rn_pb.TrainingRun, paths: list[str]) -> rn.RunPatch:
    """The fields named by ``paths`` (checked against RUN_MASK_FIELDS) as a patch."""
    out = _Violations()
    patch = rn.RunPatch()
    for i, path in enumerate(paths):
        if path not in RUN_MASK_FIELDS:
            out.add(f"update_mask.paths[{i}]", f"not updatable: one of {sorted(RUN_MASK_FIELDS)}")
        elif path == "name":
            patch.name = p.name
        elif path == "state":
            state = _enum(p.state, _RUN_STATES, rn_pb.RunState, "training_run.state", out)
            if state is None and p.state == 0:
                out.add("training_run.state", "required when named by the update mask")
            patch.state = state
        elif path == "deleted":
            patch.deleted = p.deleted
        elif path == "assignments":
            patch.assignments = _assignments(p.assignments, "training_run.assignments", out)
        elif path == "values":
            patch.values = _run_values_from_proto(p.values)
        elif path == "metadata":
            patch.metadata = _struct(p.metadata, "training_run.metadata", out)
        elif path == "extras":
            patch.extras = {k: v for k, v in MessageToDict(p.extras).items()}
    out.raise_if_any()
    return patch


def run_to_proto(run: rn.TrainingRun) -> rn_pb.TrainingRun:
    p = rn_pb.TrainingRun(
        id=run.id,
        project=run.project,
        name=run.name,
        experiment_id=run.experiment_id or "",
        suggestion_id=run.suggestion_id or "",
        observation_id=run.observation_id or "",
        state=_enum_to_proto(_RUN_STATES, run.state),
        deleted=run.deleted,
    )
    assignments_to_proto(run.assignments, p.assignments)
    _run_values_to_proto(run.values, p.values)
    struct_to_proto(run.metadata, p.metadata)
    struct_to_proto(run.extras, p.extras)
    p.checkpoints.extend(checkpoint_to_proto(c) for c in run.checkpoints)
    time_to_proto(run.create_time, p.create_time)
    time_to_proto(run.update_time, p.update_time)
    time_to_proto(run.complete_time, p.complete_time)
    return p
