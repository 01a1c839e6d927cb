"""proto <-> domain conversions, as ``*_to_proto`` / ``*_from_proto`` pairs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from ..domain import model as m
from ..domain import tenancy as tn
from ..domain.errors import InvalidArgument
from ..v1 import experiment_pb2 as ex_pb
from ..v1 import observation_pb2 as ob_pb
from ..v1 import suggestion_pb2 as su_pb
from ..v1 import token_pb2 as tk_pb

_EXPERIMENT_TYPES: dict[int, m.ExperimentType] = {
    ex_pb.EXPERIMENT_TYPE_OFFLINE: m.ExperimentType.OFFLINE,
    ex_pb.EXPERIMENT_TYPE_RANDOM: m.ExperimentType.RANDOM,
    ex_pb.EXPERIMENT_TYPE_GRID: m.ExperimentType.GRID,
}
_EXPERIMENT_STATES: dict[int, m.ExperimentState] = {
    ex_pb.EXPERIMENT_STATE_ACTIVE: m.ExperimentState.ACTIVE,
    ex_pb.EXPERIMENT_STATE_ARCHIVED: m.ExperimentState.ARCHIVED,
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


def _inverse(mapping: dict) -> dict:
    out: dict = {}
    for k, v in mapping.items():
        out.setdefault(v, k)
    return out


def _enum_to_proto(mapping: dict, value: Any) -> Any:
    # prefer the explicit (non-UNSPECIFIED) proto value when several map to one domain value
    return max(k for k, v in mapping.items() if v is value)


# ------------------------------------------------------------------ small pieces


def struct_from_proto(s: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(s)


def struct_to_proto(d: dict[str, Any], out: struct_pb2.Struct) -> None:
    out.Clear()
    if d:
        out.update(d)


def time_to_proto(t: datetime | None, out: timestamp_pb2.Timestamp) -> None:
    if t is not None:
        out.FromDatetime(t)


def value_from_proto(v: su_pb.AssignmentValue) -> m.Value | None:
    kind = v.WhichOneof("kind")
    if kind == "double_value":
        return v.double_value
    if kind == "int_value":
        return v.int_value
    if kind == "string_value":
        return v.string_value
    return None


def value_to_proto(value: m.Value, out: su_pb.AssignmentValue) -> None:
    if isinstance(value, str):
        out.string_value = value
    elif isinstance(value, int) and not isinstance(value, bool):
        out.int_value = value
    else:
        out.double_value = float(value)


def assignments_from_proto(a: Any) -> dict[str, Any]:
    return {k: value_from_proto(v) for k, v in a.items()}


def assignments_to_proto(a: m.Assignments, out: Any) -> None:
    for k, v in a.items():
        value_to_proto(v, out[k])


# ------------------------------------------------------------------ experiments


def experiment_type_from_proto(v: int) -> m.ExperimentType:
    return _EXPERIMENT_TYPES.get(v, m.ExperimentType.OFFLINE)


def experiment_state_from_proto(v: int) -> m.ExperimentState | None:
    return _EXPERIMENT_STATES.get(v)


def experiment_from_proto(p: ex_pb.Experiment) -> m.Experiment:
    return m.Experiment(
        id=p.id,
        name=p.name,
        project=p.project,
        type=experiment_type_from_proto(p.type),
        parameters=[
            m.Parameter(
                name=q.name,
                type=_PARAMETER_TYPES.get(q.type),
                bounds=m.Bounds(q.bounds.min, q.bounds.max) if q.HasField("bounds") else None,
                categorical_values=list(q.categorical_values),
                grid=list(q.grid),
                transformation=_TRANSFORMATIONS.get(q.transformation, m.Transformation.NONE),
                conditions={k: list(v.values) for k, v in q.conditions.items()},
            )
            for q in p.parameters
        ],
        conditionals=[m.Conditional(c.name, list(c.values)) for c in p.conditionals],
        linear_constraints=[
            m.LinearConstraint(
                type=_CONSTRAINT_TYPES.get(c.type),
                threshold=c.threshold,
                terms=[m.ConstraintTerm(t.name, t.weight) for t in c.terms],
            )
            for c in p.linear_constraints
        ],
        metrics=[
            m.Metric(
                name=q.name,
                objective=_OBJECTIVES.get(q.objective, m.Objective.MAXIMIZE),
                strategy=_STRATEGIES.get(q.strategy, m.Strategy.OPTIMIZE),
                threshold=q.threshold if q.HasField("threshold") else None,
            )
            for q in p.metrics
        ],
        observation_budget=p.observation_budget if p.HasField("observation_budget") else None,
        parallel_bandwidth=p.parallel_bandwidth or 1,
        num_solutions=p.num_solutions or 1,
        metadata=struct_from_proto(p.metadata),
        state=experiment_state_from_proto(p.state) or m.ExperimentState.ACTIVE,
        suggestion_lease_seconds=(
            p.suggestion_lease_seconds if p.HasField("suggestion_lease_seconds") else None
        ),
    )


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
    if pr.best_observation is not None:
        p.progress.best_observation.CopyFrom(observation_to_proto(pr.best_observation))
    return p


# ------------------------------------------------------------------ suggestions


def suggestion_state_from_proto(v: int) -> m.SuggestionState | None:
    return _SUGGESTION_STATES.get(v)


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


def observation_from_proto(p: ob_pb.Observation, experiment_id: str) -> m.Observation:
    return m.Observation(
        id=p.id,
        experiment_id=experiment_id,
        suggestion_id=p.suggestion_id or None,
        assignments=assignments_from_proto(p.assignments),
        values=metric_values_from_proto(p.values),
        failed=p.failed,
        metadata=struct_from_proto(p.metadata),
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
