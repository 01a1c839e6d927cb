"""JSON <-> domain, in SigOpt's shapes (``reference/sigopt_rest_api.md`` §2).

Readers are strict: an unknown key, a value of the wrong JSON type or an unknown
enum name is an InvalidArgument naming the field; the domain's validation then
checks the rules. Writers put ``"object"`` on every object, ids as strings and
times as integer epoch seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...domain import model as m
from ...domain import runs as rn
from ...domain.errors import FieldViolation, InvalidArgument
from ...domain.tenancy import Token
from ...domain.validation import MAX_REPORTED_VIOLATIONS, map_key

# The one client (team) every token belongs to: optserve scopes by project instead.
CLIENT_ID = "1"

EXPERIMENT_KEYS = {
    "name",
    "project",
    "type",
    "observation_budget",
    "budget",
    "metrics",
    "parameters",
    "conditionals",
    "linear_constraints",
    "tasks",
    "metadata",
    "num_solutions",
    "parallel_bandwidth",
    "runs_only",
}
PARAMETER_KEYS = {
    "name",
    "type",
    "bounds",
    "categorical_values",
    "grid",
    "transformation",
    "prior",
    "default_value",
    "conditions",
    "precision",
    "tunable",
}
OBSERVATION_KEYS = {
    "suggestion",
    "assignments",
    "values",
    "value",
    "value_stddev",
    "failed",
    "metadata",
    "task",
    "no_optimize",
}


class Reader:
    """Reads one JSON document, collecting violations under field paths."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        if len(self.violations) < MAX_REPORTED_VIOLATIONS:
            self.violations.append(FieldViolation(path, description))

    def done(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)

    def keys(self, doc: dict[str, Any], allowed: set[str], path: str) -> None:
        for key in doc:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                self.add(where, "unknown field")

    def obj(self, value: Any, path: str, required: bool = False) -> dict[str, Any] | None:
        if value is None:
            if required:
                self.add(path, "required: an object")
            return None
        if not isinstance(value, dict):
            self.add(path, "must be an object")
            return None
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, "must be an array")
            return []
        return value

    def string(self, value: Any, path: str, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.add(path, "required: a string")
            return None
        if not isinstance(value, str):
            self.add(path, "must be a string")
            return None
        return value

    def number(self, value: Any, path: str, required: bool = False) -> float | int | None:
        if value is None:
            if required:
                self.add(path, "required: a number")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, "must be a number")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, "must be a finite number")
            return None
        return value

    def integer(self, value: Any, path: str) -> int | None:
        number = self.number(value, path)
        if number is None:
            return None
        if number != int(number) or abs(number) > 2**31 - 1:
            self.add(path, "must be an integer (32-bit)")
            return None
        return int(number)

    def boolean(self, value: Any, path: str) -> bool | None:
        if value is None:
            return None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.add(path, "must be true or false")
            return None
        return value

    def enum(self, value: Any, kind: type, path: str) -> Any:
        text = self.string(value, path)
        if text is None:
            return None
        try:
            return kind(text)
        except ValueError:
            names = ", ".join(e.value for e in kind)  # type: ignore[attr-defined]
            self.add(path, f"unknown value {text[:40]!r}: one of {names}")
            return None

    def metadata(self, value: Any, path: str) -> dict[str, Any]:
        # the rules on keys and values are the domain's (validation.metadata_violations)
        return self.obj(value, path) or {}

    def assignments(self, value: Any, path: str) -> m.Assignments:
        doc = self.obj(value, path) or {}
        out: m.Assignments = {}
        for name, v in doc.items():
            if isinstance(v, bool) or not isinstance(v, int | float | str):
                self.add(f"{path}{map_key(name)}", "a number or a string")
            elif isinstance(v, float) and not math.isfinite(v):
                self.add(f"{path}{map_key(name)}", "must be a finite number")
            else:
                out[name] = v
        return out


def ts(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp())


def _num(x: float) -> float | int:
    """Integral doubles as JSON ints (SigOpt echoes bounds of int parameters so)."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


# ------------------------------------------------------------------ experiments


def _parameter(r: Reader, doc: dict[str, Any], path: str) -> m.Parameter:
    r.keys(doc, PARAMETER_KEYS, path)
    kind = r.enum(doc.get("type"), m.ParameterType, f"{path}.type")
    if doc.get("type") is None:
        r.add(f"{path}.type", "required: one of double, int, categorical")
    bounds = None
    b = r.obj(doc.get("bounds"), f"{path}.bounds")
    if b is not None:
        r.keys(b, {"min", "max", "object"}, f"{path}.bounds")
        lo = r.number(b.get("min"), f"{path}.bounds.min", required=True)
        hi = r.number(b.get("max"), f"{path}.bounds.max", required=True)
        if lo is not None and hi is not None:
            bounds = m.Bounds(lo, hi)
    values = []
    for i, v in enumerate(r.array(doc.get("categorical_values"), f"{path}.categorical_values")):
        vpath = f"{path}.categorical_values[{i}]"
        if isinstance(v, dict):
            name = r.string(v.get("name"), f"{vpath}.name", required=True)
        else:
            name = r.string(v, vpath, required=True)
        if name is not None:
            values.append(name)
    grid = []
    for i, v in enumerate(r.array(doc.get("grid"), f"{path}.grid")):
        number = r.number(v, f"{path}.grid[{i}]", required=True)
        if number is not None:
            grid.append(number)
    transformation = r.enum(doc.get("transformation"), m.Transformation, f"{path}.transformation")
    conditions: dict[str, list[str]] = {}
    for name, v in (r.obj(doc.get("conditions"), f"{path}.conditions") or {}).items():
        cpath = f"{path}.conditions{map_key(name)}"
        given = [v] if isinstance(v, str) else r.array(v, cpath)
        conditions[name] = [s for s in (r.string(x, cpath, True) for x in given) if s is not None]
    prior = None
    pd = r.obj(doc.get("prior"), f"{path}.prior")
    if pd is not None:
        r.keys(pd, {"name", "mean", "scale", "shape_a", "shape_b", "object"}, f"{path}.prior")
        prior = m.Prior(
            type=r.enum(pd.get("name"), m.PriorType, f"{path}.prior.name"),
            mean=r.number(pd.get("mean"), f"{path}.prior.mean"),
            scale=r.number(pd.get("scale"), f"{path}.prior.scale"),
            shape_a=r.number(pd.get("shape_a"), f"{path}.prior.shape_a"),
            shape_b=r.number(pd.get("shape_b"), f"{path}.prior.shape_b"),
        )
        if pd.get("name") is None:
            r.add(f"{path}.prior.name", "required: normal or beta")
    default = doc.get("default_value")
    if default is not None and (
        isinstance(default, bool) or not isinstance(default, int | float | str)
    ):
        r.add(f"{path}.default_value", "a number or a string")
        default = None
    return m.Parameter(
        name=r.string(doc.get("name"), f"{path}.name", required=True) or "",
        type=kind,
        bounds=bounds,
        categorical_values=values,
        grid=grid,
        transformation=transformation or m.Transformation.NONE,
        conditions=conditions,
        prior=prior,
        default_value=default,
    )


def _metric(r: Reader, doc: Any, path: str) -> m.Metric:
    if isinstance(doc, str):
        return m.Metric(doc)
    d = r.obj(doc, path, required=True) or {}
    r.keys(d, {"name", "objective", "strategy", "threshold", "object"}, path)
    return m.Metric(
        name=r.string(d.get("name"), f"{path}.name") or "",
        objective=r.enum(d.get("objective"), m.Objective, f"{path}.objective")
        or m.Objective.MAXIMIZE,
        strategy=r.enum(d.get("strategy"), m.Strategy, f"{path}.strategy") or m.Strategy.OPTIMIZE,
        threshold=r.number(d.get("threshold"), f"{path}.threshold"),
    )


def _constraint(r: Reader, doc: Any, path: str) -> m.LinearConstraint:
    d = r.obj(doc, path, required=True) or {}
    r.keys(d, {"type", "threshold", "terms", "object"}, path)
    terms = []
    for j, t in enumerate(r.array(d.get("terms"), f"{path}.terms")):
        tpath = f"{path}.terms[{j}]"
        td = r.obj(t, tpath, required=True) or {}
        r.keys(td, {"name", "weight", "object"}, tpath)
        weight = r.number(td.get("weight"), f"{tpath}.weight", required=True)
        # SigOpt drops terms of weight 0
        if weight != 0:
            terms.append(
                m.ConstraintTerm(r.string(td.get("name"), f"{tpath}.name", True) or "", weight or 0)
            )
    if d.get("type") is None:
        r.add(f"{path}.type", "required: less_than or greater_than")
    return m.LinearConstraint(
        type=r.enum(d.get("type"), m.ConstraintType, f"{path}.type"),
        threshold=r.number(d.get("threshold"), f"{path}.threshold", required=True) or 0.0,
        terms=terms,
    )


def experiment_from_json(doc: dict[str, Any], runs_only: bool = False) -> m.Experiment:
    """An experiment to create (``runs_only``: an AI experiment, whose budget is ``budget``).

    Raises:
        InvalidArgument: for unknown fields and values of the wrong type.
    """
    r = Reader()
    r.keys(doc, EXPERIMENT_KEYS, "")
    if doc.get("tasks") is not None:
        r.add("tasks", "multitask experiments are not supported")
    runs_only = runs_only or bool(r.boolean(doc.get("runs_only"), "runs_only"))
    budget_key, other = (
        ("budget", "observation_budget") if runs_only else ("observation_budget", "budget")
    )
    if doc.get(other) is not None:
        r.add(other, f"not for this kind of experiment: use {budget_key}")
    exp = _experiment_fields(r, doc, budget_key)
    exp.runs_only = runs_only
    r.done()
    return exp


def _experiment_fields(r: Reader, doc: dict[str, Any], budget_key: str) -> m.Experiment:
    parameters = [
        _parameter(r, r.obj(p, f"parameters[{i}]", True) or {}, f"parameters[{i}]")
        for i, p in enumerate(r.array(doc.get("parameters"), "parameters"))
    ]
    if "metrics" in doc:
        metrics = [
            _metric(r, x, f"metrics[{i}]") for i, x in enumerate(r.array(doc["metrics"], "metrics"))
        ]
    else:
        # SigOpt's legacy form: one unnamed optimized metric, observed as `value`
        metrics = [m.Metric("value")]
    conditionals = []
    for i, c in enumerate(r.array(doc.get("conditionals"), "conditionals")):
        path = f"conditionals[{i}]"
        cd = r.obj(c, path, True) or {}
        r.keys(cd, {"name", "values", "object"}, path)
        values = [
            r.string(v, f"{path}.values[{j}]", True)
            for j, v in enumerate(r.array(cd.get("values"), f"{path}.values"))
        ]
        conditionals.append(
            m.Conditional(
                r.string(cd.get("name"), f"{path}.name", True) or "",
                [v for v in values if v is not None],
            )
        )
    constraints = [
        _constraint(r, c, f"linear_constraints[{i}]")
        for i, c in enumerate(r.array(doc.get("linear_constraints"), "linear_constraints"))
    ]
    kind = r.enum(doc.get("type"), m.ExperimentType, "type") or m.ExperimentType.OFFLINE
    return m.Experiment(
        id="",
        name=r.string(doc.get("name"), "name") or "",
        project=r.string(doc.get("project"), "project") or "",
        type=kind,
        parameters=parameters,
        metrics=metrics,
        conditionals=conditionals,
        linear_constraints=constraints,
        observation_budget=r.integer(doc.get(budget_key), budget_key),
        parallel_bandwidth=_positive_or(r, doc, "parallel_bandwidth", 1),
        num_solutions=_positive_or(r, doc, "num_solutions", 1),
        metadata=r.metadata(doc.get("metadata"), "metadata"),
    )


def _positive_or(r: Reader, doc: dict[str, Any], key: str, default: int) -> int:
    value = r.integer(doc.get(key), key)
    if value is None:
        return default
    if value < 1:
        r.add(key, "must be a positive integer")
        return default
    return value


def _parameter_json(p: m.Parameter) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "parameter",
        "name": p.name,
        "type": p.type.value if p.type else None,
        "bounds": None,
        "categorical_values": None,
        "conditions": {k: list(v) for k, v in p.conditions.items()},
        "default_value": p.default_value,
        "prior": None,
        "transformation": "log" if p.is_log else None,
    }
    if p.bounds is not None:
        out["bounds"] = {"object": "bounds", "min": _num(p.bounds.min), "max": _num(p.bounds.max)}
    if p.type is m.ParameterType.CATEGORICAL:
        out["categorical_values"] = [
            {"object": "categorical_value", "name": v, "enum_index": i + 1}
            for i, v in enumerate(p.categorical_values)
        ]
    if p.grid:  # SigOpt shows the key only on grid parameters
        out["grid"] = [_num(v) if p.type is m.ParameterType.INT else v for v in p.grid]
    if p.prior is not None and p.prior.type is not None:
        pr = p.prior
        out["prior"] = (
            {"object": "normal_prior", "name": "normal", "mean": pr.mean, "scale": pr.scale}
            if pr.type is m.PriorType.NORMAL
            else {
                "object": "beta_prior",
                "name": "beta",
                "shape_a": pr.shape_a,
                "shape_b": pr.shape_b,
            }
        )
    return out


def metric_value_json(name: str, value: float, stddev: float | None) -> dict[str, Any]:
    return {"object": "metric_evaluation", "name": name, "value": value, "value_stddev": stddev}


def experiment_json(e: m.Experiment) -> dict[str, Any]:
    pr = e.progress
    out: dict[str, Any] = {
        "object": "aiexperiment" if e.runs_only else "experiment",
        "id": e.id,
        "name": e.name,
        "type": e.type.value,
        "state": e.state.value,
        "created": ts(e.create_time),
        "updated": ts(e.update_time),
        "client": CLIENT_ID,
        "user": None,
        "project": e.project or None,
        "development": False,
        "metadata": e.metadata or None,
        "parameters": [_parameter_json(p) for p in sorted(e.parameters, key=lambda p: p.name)],
        "metrics": [
            {
                "object": "metric",
                "name": x.name,
                "objective": x.objective.value,
                "strategy": x.strategy.value,
                "threshold": x.threshold,
            }
            for x in sorted(e.metrics, key=lambda x: x.name)
        ],
        "conditionals": [
            {"object": "conditional", "name": k.name, "values": list(k.values)}
            for k in e.conditionals
        ],
        "linear_constraints": [
            {
                "object": "linear_constraint",
                "type": lc.type.value if lc.type else None,
                "threshold": lc.threshold,
                "terms": [
                    {"object": "constraint_term", "name": t.name, "weight": t.weight}
                    for t in sorted(lc.terms, key=lambda t: t.name.lower())
                ],
            }
            for lc in e.linear_constraints
        ],
        "parallel_bandwidth": e.parallel_bandwidth,
        "num_solutions": e.num_solutions,
        "runs_only": e.runs_only,
    }
    # as SigOpt's: no tasks key without tasks (multitask is not supported), and an
    # aiexperiment has neither development nor observation_budget
    if e.runs_only:
        del out["development"]
        out["budget"] = e.observation_budget
        out["progress"] = {
            "object": "progress",
            "active_run_count": pr.active_run_count,
            "finished_run_count": pr.finished_run_count,
            "total_run_count": pr.total_run_count,
            "remaining_budget": (
                None if e.observation_budget is None else e.observation_budget - pr.total_run_count
            ),
        }
    else:
        out["observation_budget"] = e.observation_budget
        best = pr.best_observation if len(e.optimized_metrics) == 1 else None
        out["progress"] = {
            "object": "progress",
            "observation_count": pr.observation_count,
            "observation_budget_consumed": pr.observation_count,
            "first_observation": _maybe(observation_json, pr.first_observation),
            "last_observation": _maybe(observation_json, pr.last_observation),
            "best_observation": _maybe(observation_json, best),
        }
    return out


def _maybe(f: Callable[[Any], dict[str, Any]], x: Any) -> dict[str, Any] | None:
    return None if x is None else f(x)


def experiment_update_from_json(
    current: m.Experiment, doc: dict[str, Any]
) -> tuple[m.Experiment, list[str]]:
    """The patch and field names of an experiment update (PUT: named fields replaced)."""
    r = Reader()
    budget_key = "budget" if current.runs_only else "observation_budget"
    allowed = {"name", "project", "state", budget_key, "parallel_bandwidth", "metadata", "metrics"}
    fixed = {"parameters", "conditionals", "linear_constraints", "num_solutions", "tasks", "type"}
    paths: list[str] = []
    patch = m.Experiment(id=current.id, name=current.name, parameters=[], metrics=current.metrics)
    for key, value in doc.items():
        if key in fixed:
            r.add(key, "cannot change after the experiment is created")
        elif key == "no_optimize":
            continue
        elif key not in allowed:
            r.add(key, "unknown field" if key not in EXPERIMENT_KEYS else "not updatable here")
        elif key == "name":
            patch.name = r.string(value, key, True) or ""
            paths.append("name")
        elif key == "project":
            patch.project = r.string(value, key) or ""
            paths.append("project")
        elif key == "state":
            state = r.enum(value, m.ExperimentState, key)
            if state is m.ExperimentState.ARCHIVED:
                r.add(key, "one of active, deleted")
            patch.state = state
            paths.append("state")
        elif key == budget_key:
            patch.observation_budget = r.integer(value, key)
            paths.append("observation_budget")
        elif key == "parallel_bandwidth":
            patch.parallel_bandwidth = _positive_or(r, doc, key, 1)
            paths.append("parallel_bandwidth")
        elif key == "metadata":
            patch.metadata = r.metadata(value, key)
            paths.append("metadata")
        elif key == "metrics":
            patch.metrics = [
                _metric(r, x, f"metrics[{i}]") for i, x in enumerate(r.array(value, key))
            ]
            paths.append("metrics")
    r.done()
    return patch, paths


# ------------------------------------------------------------------ suggestions, observations


def suggestion_json(s: m.Suggestion) -> dict[str, Any]:
    return {
        "object": "suggestion",
        "id": s.id,
        "experiment": s.experiment_id,
        "assignments": dict(s.assignments),
        "state": "open" if s.state is m.SuggestionState.EXPIRED else s.state.value,
        "created": ts(s.create_time),
        "deleted": False,
        "metadata": s.metadata or None,
    }


def queued_suggestion_json(q: m.QueuedSuggestion) -> dict[str, Any]:
    return {
        "object": "queued_suggestion",
        "id": q.id,
        "experiment": q.experiment_id,
        "assignments": dict(q.assignments),
        "created": ts(q.create_time),
    }


def observation_from_json(
    exp: m.Experiment, doc: Any, path: str = "", r: Reader | None = None
) -> m.Observation:
    own = r is None
    r = r or Reader()
    prefix = f"{path}." if path else ""
    d = r.obj(doc, path or "observation", required=True) or {}
    r.keys(d, OBSERVATION_KEYS, path)
    if d.get("task") is not None:
        r.add(f"{prefix}task", "multitask experiments are not supported")
    suggestion = d.get("suggestion")
    if isinstance(suggestion, int) and not isinstance(suggestion, bool):
        suggestion = str(suggestion)
    suggestion = r.string(suggestion, f"{prefix}suggestion")
    assignments = r.assignments(d.get("assignments"), f"{prefix}assignments")
    if suggestion is None and d.get("assignments") is None:
        r.add(f"{prefix}suggestion", "required: a suggestion or assignments")
    if suggestion is not None and d.get("assignments") is not None:
        r.add(f"{prefix}assignments", "give either a suggestion or assignments, not both")
    failed = bool(r.boolean(d.get("failed"), f"{prefix}failed"))
    values: list[m.MetricValue] = []
    has_values = d.get("values") is not None
    if has_values and d.get("value") is not None:
        r.add(f"{prefix}value", "give either value or values, not both")
    if has_values and d.get("value_stddev") is not None:
        r.add(f"{prefix}value_stddev", "with values, give value_stddev inside each value")
    for i, v in enumerate(r.array(d.get("values"), f"{prefix}values")):
        vpath = f"{prefix}values[{i}]"
        vd = r.obj(v, vpath, True) or {}
        r.keys(vd, {"name", "value", "value_stddev", "object"}, vpath)
        name = r.string(vd.get("name"), f"{vpath}.name")
        if name is None and len(exp.metrics) == 1:
            name = exp.metrics[0].name
        number = r.number(vd.get("value"), f"{vpath}.value", required=True)
        stddev = r.number(vd.get("value_stddev"), f"{vpath}.value_stddev")
        if number is not None:
            values.append(m.MetricValue(name or "", number, stddev))
    if d.get("value") is not None:
        number = r.number(d.get("value"), f"{prefix}value")
        stddev = r.number(d.get("value_stddev"), f"{prefix}value_stddev")
        if len(exp.optimized_metrics) != 1 or len(exp.metrics) != 1:
            r.add(f"{prefix}value", "value is for experiments of one metric: use values")
        elif number is not None:
            values.append(m.MetricValue(exp.metrics[0].name, number, stddev))
    if failed and (has_values or d.get("value") is not None):
        r.add(f"{prefix}values", "a failed observation carries no values")
    if not failed and not has_values and d.get("value") is None:
        r.add(f"{prefix}values", "required: values (or failed: true)")
    metadata = r.metadata(d.get("metadata"), f"{prefix}metadata")
    if own:
        r.done()
    return m.Observation(
        id="",
        experiment_id=exp.id,
        suggestion_id=suggestion,
        assignments=assignments,
        values=values,
        failed=failed,
        metadata=metadata,
    )


def observation_update_from_json(
    exp: m.Experiment, current: m.Observation, doc: dict[str, Any]
) -> tuple[m.Observation, list[str]]:
    r = Reader()
    r.keys(doc, OBSERVATION_KEYS, "")
    for key in ("suggestion", "assignments", "task"):
        if key in doc:
            r.add(key, "cannot change: delete the observation and report a new one")
    merged = {
        "failed": doc.get("failed", current.failed),
        "metadata": doc.get("metadata", current.metadata),
        "assignments": current.assignments,
    }
    if "values" in doc or "value" in doc:
        merged.update({k: doc[k] for k in ("values", "value", "value_stddev") if k in doc})
    elif not merged["failed"]:
        merged["values"] = [
            {"name": v.name, "value": v.value, "value_stddev": v.stddev} for v in current.values
        ]
    r.done()
    patch = observation_from_json(exp, merged)
    patch.id = current.id
    paths = ["values", "failed"]
    if "metadata" in doc:
        paths.append("metadata")
    return patch, paths


def observation_json(o: m.Observation) -> dict[str, Any]:
    return {
        "object": "observation",
        "id": o.id,
        "experiment": o.experiment_id,
        "suggestion": o.suggestion_id,
        "assignments": dict(o.assignments),
        "values": [metric_value_json(v.name, v.value, v.stddev) for v in o.values],
        "failed": o.failed,
        "metadata": o.metadata or None,
        "created": ts(o.create_time),
    }


def best_assignments_json(o: m.Observation) -> dict[str, Any]:
    return {
        "object": "best_assignments",
        "id": o.id,
        "assignments": dict(o.assignments),
        "values": [metric_value_json(v.name, v.value, v.stddev) for v in o.values],
        "metadata": o.metadata or None,
    }


# ------------------------------------------------------------------ projects, runs, tokens


def project_json(p: rn.Project) -> dict[str, Any]:
    return {
        "object": "project",
        "id": p.id,
        "name": p.name,
        "client": CLIENT_ID,
        "user": None,
        "created": ts(p.create_time),
        "updated": ts(p.update_time),
        "metadata": p.metadata or None,
        "deleted": False,
    }


def project_from_json(doc: dict[str, Any], project_id: str | None = None) -> rn.Project:
    r = Reader()
    r.keys(doc, {"id", "name", "metadata", "client"}, "")
    pid = project_id or r.string(doc.get("id"), "id", required=True) or ""
    name = r.string(doc.get("name"), "name") or pid
    metadata = r.metadata(doc.get("metadata"), "metadata")
    r.done()
    return rn.Project(id=pid, name=name, metadata=metadata)


def run_values_from_json(r: Reader, value: Any, path: str) -> dict[str, rn.RunValue]:
    out: dict[str, rn.RunValue] = {}
    if isinstance(value, list):
        # checkpoints send [{name, value}], runs {name: {value, value_stddev}}
        value = {(v.get("name") if isinstance(v, dict) else None) or "": v for v in value}
    for name, v in (r.obj(value, path) or {}).items():
        vpath = f"{path}{map_key(name)}"
        vd = r.obj(v, vpath, True) or {}
        r.keys(vd, {"name", "value", "value_stddev", "object"}, vpath)
        number = r.number(vd.get("value"), f"{vpath}.value", required=True)
        stddev = r.number(vd.get("value_stddev"), f"{vpath}.value_stddev")
        if number is not None:
            out[name] = rn.RunValue(number, stddev)
    return out


RUN_KEYS = {"name", "state", "deleted", "assignments", "values", "metadata", *rn.EXTRA_FIELDS}


def run_patch_from_json(doc: dict[str, Any]) -> rn.RunPatch:
    r = Reader()
    for key in doc:
        # read-only fields a client may echo back
        if key not in RUN_KEYS and key not in {
            "object",
            "id",
            "project",
            "experiment",
            "suggestion",
            "observation",
            "client",
            "user",
            "created",
            "updated",
            "completed",
            "finished",
            "checkpoint_count",
            "best_checkpoint",
            "files",
        }:
            r.add(key, "unknown field")
    patch = rn.RunPatch(
        name=r.string(doc.get("name"), "name"),
        state=r.enum(doc.get("state"), rn.RunState, "state"),
        deleted=r.boolean(doc.get("deleted"), "deleted"),
        assignments=r.assignments(doc["assignments"], "assignments")
        if "assignments" in doc
        else None,
        values=run_values_from_json(r, doc["values"], "values") if "values" in doc else None,
        metadata=r.metadata(doc["metadata"], "metadata") if "metadata" in doc else None,
        extras={k: doc[k] for k in rn.EXTRA_FIELDS if k in doc},
    )
    r.done()
    return patch


def _document(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def run_json(run: rn.TrainingRun) -> dict[str, Any]:
    # logs, model and source_code are objects, empty ones too, as SigOpt's server shows them
    x = run.extras
    datasets = x.get("datasets")
    model, source = _document(x.get("model")), _document(x.get("source_code"))
    best = None
    if run.checkpoints:
        best = run.checkpoints[-1].id
    return {
        "object": "training_run",
        "id": run.id,
        "name": run.name or None,
        "state": run.state.value,
        "assignments": dict(run.assignments),
        "values": {n: metric_value_json(n, v.value, v.stddev) for n, v in run.values.items()},
        "metadata": run.metadata or None,
        "sys_metadata": x.get("sys_metadata"),
        "dev_metadata": x.get("dev_metadata"),
        "datasets": sorted(datasets) if isinstance(datasets, dict) else datasets or [],
        "model": {"object": "model", "type": model.get("type")},
        "source_code": {
            "object": "source_code",
            "content": source.get("content"),
            "hash": source.get("hash"),
        },
        "logs": {
            name: {"object": "log", "content": _document(log).get("content")}
            for name, log in _document(x.get("logs")).items()
        },
        "tags": x.get("tags") or [],
        "favorite": bool(x.get("favorite", False)),
        "files": [],
        "experiment": run.experiment_id,
        "suggestion": run.suggestion_id,
        "observation": run.observation_id,
        "project": run.project,
        "client": CLIENT_ID,
        "user": None,
        "created": ts(run.create_time),
        "updated": ts(run.update_time),
        "completed": ts(run.complete_time),
        "finished": run.finished,
        "deleted": run.deleted,
        "checkpoint_count": len(run.checkpoints),
        "best_checkpoint": best,
    }


def checkpoint_json(run_id: str, c: rn.Checkpoint) -> dict[str, Any]:
    return {
        "object": "checkpoint",
        "id": c.id,
        "training_run": run_id,
        "values": [metric_value_json(n, v.value, v.stddev) for n, v in c.values.items()],
        "metadata": c.metadata or None,
        "created": ts(c.create_time),
    }


def token_json(token: Token, secret: str | None) -> dict[str, Any]:
    return {
        "object": "token",
        "token": secret,
        "token_type": "client-api",
        "client": CLIENT_ID,
        "user": None,
        "development": False,
        "experiment": None,
        "all_experiments": True,
        "expires": None,
        "permissions": token.role.value,
        "projects": sorted(token.projects),
    }


def client_json() -> dict[str, Any]:
    return {
        "object": "client",
        "id": CLIENT_ID,
        "name": "optserve",
        "organization": None,
        "created": None,
    }


def pagination(
    data: list[dict[str, Any]],
    before: str | None,
    after: str | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """SigOpt's page: ``count`` is the number of items in all pages when known."""
    return {
        "object": "pagination",
        "count": len(data) if count is None else count,
        "data": data,
        "paging": {"object": "paging", "before": before or None, "after": after or None},
    }
