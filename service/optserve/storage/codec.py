"""JSON encoding of the domain objects that storage keeps as documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..domain.model import (
    Bounds,
    Conditional,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    ExperimentState,
    ExperimentType,
    LinearConstraint,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Prior,
    PriorType,
    Progress,
    QueuedSuggestion,
    Strategy,
    Suggestion,
    SuggestionState,
    Transformation,
)
from ..domain.runs import Checkpoint, Project, RunState, RunValue, TrainingRun


def definition_to_json(exp: Experiment) -> str:
    """The immutable-or-rarely-changed part of an experiment, as JSON."""
    doc = {
        "type": exp.type.value,
        "parameters": [
            {
                "name": p.name,
                "type": p.type.value if p.type else None,
                "bounds": None if p.bounds is None else [p.bounds.min, p.bounds.max],
                "categorical_values": p.categorical_values,
                "grid": p.grid,
                "transformation": p.transformation.value,
                "conditions": p.conditions,
                **_prior_doc(p),
            }
            for p in exp.parameters
        ],
        "conditionals": [{"name": k.name, "values": k.values} for k in exp.conditionals],
        "linear_constraints": [
            {
                "type": lc.type.value if lc.type else None,
                "threshold": lc.threshold,
                "terms": [[t.name, t.weight] for t in lc.terms],
            }
            for lc in exp.linear_constraints
        ],
        "metrics": [
            {
                "name": m.name,
                "objective": m.objective.value,
                "strategy": m.strategy.value,
                "threshold": m.threshold,
            }
            for m in exp.metrics
        ],
        "observation_budget": exp.observation_budget,
        "parallel_bandwidth": exp.parallel_bandwidth,
        "num_solutions": exp.num_solutions,
        "metadata": exp.metadata,
        "seed": exp.seed,
        "suggestion_lease_seconds": exp.suggestion_lease_seconds,
    }
    if exp.runs_only:
        doc["runs_only"] = True
    return json.dumps(doc, separators=(",", ":"))


def _prior_doc(p: Parameter) -> dict[str, Any]:
    """Prior and default value, written only when set (older documents lack them)."""
    doc: dict[str, Any] = {}
    if p.prior is not None:
        pr = p.prior
        doc["prior"] = [
            pr.type.value if pr.type else None,
            pr.mean,
            pr.scale,
            pr.shape_a,
            pr.shape_b,
        ]
    if p.default_value is not None:
        doc["default_value"] = p.default_value
    return doc


def _prior_from(p: dict[str, Any]) -> Prior | None:
    if p.get("prior") is None:
        return None
    kind, mean, scale, shape_a, shape_b = p["prior"]
    return Prior(PriorType(kind), mean, scale, shape_a, shape_b)


def definition_from_json(text: str, **fields: Any) -> Experiment:
    doc = json.loads(text)
    return Experiment(
        type=ExperimentType(doc["type"]),
        parameters=[
            Parameter(
                name=p["name"],
                type=ParameterType(p["type"]),
                bounds=None if p["bounds"] is None else Bounds(*p["bounds"]),
                categorical_values=p["categorical_values"],
                grid=p["grid"],
                transformation=Transformation(p["transformation"]),
                conditions=p["conditions"],
                prior=_prior_from(p),
                default_value=p.get("default_value"),
            )
            for p in doc["parameters"]
        ],
        conditionals=[Conditional(k["name"], k["values"]) for k in doc["conditionals"]],
        linear_constraints=[
            LinearConstraint(
                ConstraintType(lc["type"]),
                lc["threshold"],
                [ConstraintTerm(n, w) for n, w in lc["terms"]],
            )
            for lc in doc["linear_constraints"]
        ],
        metrics=[
            Metric(m["name"], Objective(m["objective"]), Strategy(m["strategy"]), m["threshold"])
            for m in doc["metrics"]
        ],
        observation_budget=doc["observation_budget"],
        parallel_bandwidth=doc["parallel_bandwidth"],
        num_solutions=doc["num_solutions"],
        metadata=doc["metadata"],
        seed=doc["seed"],
        suggestion_lease_seconds=doc.get("suggestion_lease_seconds"),
        runs_only=doc.get("runs_only", False),
        **fields,
    )


def _run_values_doc(values: dict[str, RunValue]) -> list[list[Any]]:
    return [[n, v.value, v.stddev] for n, v in values.items()]


def _run_values_from(doc: list[list[Any]]) -> dict[str, RunValue]:
    return {n: RunValue(v, s) for n, v, s in doc}


def run_to_json(run: TrainingRun) -> str:
    """A training run's document: what is not kept in columns of its own."""
    doc = {
        "name": run.name,
        "assignments": run.assignments,
        "values": _run_values_doc(run.values),
        "metadata": run.metadata,
        "extras": run.extras,
        "checkpoints": [
            {
                "id": c.id,
                "values": _run_values_doc(c.values),
                "metadata": c.metadata,
                "create_time": _ts(c.create_time),
            }
            for c in run.checkpoints
        ],
    }
    return dumps(doc)


def run_from_json(text: str) -> TrainingRun:
    """The run of a document; columns (id, project, references, state, times) are set by storage."""
    doc = json.loads(text)
    return TrainingRun(
        id="",
        project="",
        name=doc["name"],
        assignments=doc["assignments"],
        values=_run_values_from(doc["values"]),
        metadata=doc["metadata"],
        extras=doc["extras"],
        checkpoints=[
            Checkpoint(c["id"], _run_values_from(c["values"]), c["metadata"], _dt(c["create_time"]))
            for c in doc["checkpoints"]
        ],
    )


def values_to_json(values: list[MetricValue]) -> str:
    return json.dumps([[v.name, v.value, v.stddev] for v in values], separators=(",", ":"))


def values_from_json(text: str) -> list[MetricValue]:
    return [MetricValue(n, v, s) for n, v, s in json.loads(text)]


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ------------------------------------------------------------------ recorded results
# The result of a write, kept with its request id so that a retry gets it back.


def _ts(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _dt(x: float | None) -> datetime | None:
    return None if x is None else datetime.fromtimestamp(x, UTC)


def _suggestion_doc(s: Suggestion) -> dict[str, Any]:
    return {
        "id": s.id,
        "experiment_id": s.experiment_id,
        "assignments": s.assignments,
        "state": s.state.value,
        "metadata": s.metadata,
        "create_time": _ts(s.create_time),
        "sequence": s.sequence,
        "expire_time": _ts(s.expire_time),
        "lease_seconds": s.lease_seconds,
    }


def _suggestion_from(d: dict[str, Any]) -> Suggestion:
    return Suggestion(
        id=d["id"],
        experiment_id=d["experiment_id"],
        assignments=d["assignments"],
        state=SuggestionState(d["state"]),
        metadata=d["metadata"],
        create_time=_dt(d["create_time"]),
        sequence=d["sequence"],
        expire_time=_dt(d["expire_time"]),
        lease_seconds=d["lease_seconds"],
    )


def _observation_doc(o: Observation) -> dict[str, Any]:
    return {
        "id": o.id,
        "experiment_id": o.experiment_id,
        "suggestion_id": o.suggestion_id,
        "assignments": o.assignments,
        "values": [[v.name, v.value, v.stddev] for v in o.values],
        "failed": o.failed,
        "metadata": o.metadata,
        "create_time": _ts(o.create_time),
    }


def _observation_from(d: dict[str, Any]) -> Observation:
    return Observation(
        id=d["id"],
        experiment_id=d["experiment_id"],
        suggestion_id=d["suggestion_id"],
        assignments=d["assignments"],
        values=[MetricValue(n, v, s) for n, v, s in d["values"]],
        failed=d["failed"],
        metadata=d["metadata"],
        create_time=_dt(d["create_time"]),
    )


def result_to_json(result: Any) -> str:
    if result is None:
        doc: dict[str, Any] = {"kind": "none"}
    elif isinstance(result, Experiment):
        doc = {
            "kind": "experiment",
            "definition": definition_to_json(result),
            "id": result.id,
            "name": result.name,
            "project": result.project,
            "state": result.state.value,
            "create_time": _ts(result.create_time),
            "update_time": _ts(result.update_time),
            "progress": [
                result.progress.observation_count,
                result.progress.failed_observation_count,
                result.progress.open_suggestion_count,
            ],
            "best": (
                None
                if result.progress.best_observation is None
                else _observation_doc(result.progress.best_observation)
            ),
            "ends": [
                None if o is None else _observation_doc(o)
                for o in (result.progress.first_observation, result.progress.last_observation)
            ],
            "runs": [result.progress.total_run_count, result.progress.finished_run_count],
        }
    elif isinstance(result, Observation):
        doc = {"kind": "observation", "observation": _observation_doc(result)}
    elif isinstance(result, Suggestion):
        doc = {"kind": "suggestion", "suggestion": _suggestion_doc(result)}
    elif isinstance(result, QueuedSuggestion):
        doc = {
            "kind": "queued_suggestion",
            "id": result.id,
            "experiment_id": result.experiment_id,
            "assignments": result.assignments,
            "create_time": _ts(result.create_time),
        }
    elif isinstance(result, Project):
        doc = {
            "kind": "project",
            "id": result.id,
            "name": result.name,
            "metadata": result.metadata,
            "create_time": _ts(result.create_time),
            "update_time": _ts(result.update_time),
        }
    elif isinstance(result, TrainingRun):
        doc = {
            "kind": "training_run",
            "document": run_to_json(result),
            "id": result.id,
            "project": result.project,
            "refs": [result.experiment_id, result.suggestion_id, result.observation_id],
            "state": result.state.value,
            "deleted": result.deleted,
            "times": [
                _ts(t) for t in (result.create_time, result.update_time, result.complete_time)
            ],
        }
    elif isinstance(result, list) and result and isinstance(result[0], Observation):
        doc = {"kind": "observations", "observations": [_observation_doc(o) for o in result]}
    elif isinstance(result, list):
        doc = {"kind": "suggestions", "suggestions": [_suggestion_doc(s) for s in result]}
    else:
        raise TypeError(f"cannot record a {type(result).__name__}")
    return dumps(doc)


def result_from_json(text: str) -> Any:
    doc = json.loads(text)
    kind = doc["kind"]
    if kind == "none":
        return None
    if kind == "experiment":
        observations, failed, open_ = doc["progress"]
        first, last = (
            None if o is None else _observation_from(o) for o in doc.get("ends", [None, None])
        )
        total_runs, finished_runs = doc.get("runs", [0, 0])
        return definition_from_json(
            doc["definition"],
            id=doc["id"],
            name=doc["name"],
            project=doc["project"],
            state=ExperimentState(doc["state"]),
            create_time=_dt(doc["create_time"]),
            update_time=_dt(doc["update_time"]),
            progress=Progress(
                observations,
                failed,
                open_,
                None if doc["best"] is None else _observation_from(doc["best"]),
                first,
                last,
                total_runs,
                finished_runs,
            ),
        )
    if kind == "observation":
        return _observation_from(doc["observation"])
    if kind == "observations":
        return [_observation_from(d) for d in doc["observations"]]
    if kind == "suggestion":
        return _suggestion_from(doc["suggestion"])
    if kind == "queued_suggestion":
        return QueuedSuggestion(
            id=doc["id"],
            experiment_id=doc["experiment_id"],
            assignments=doc["assignments"],
            create_time=_dt(doc["create_time"]),
        )
    if kind == "project":
        return Project(
            id=doc["id"],
            name=doc["name"],
            metadata=doc["metadata"],
            create_time=_dt(doc["create_time"]),
            update_time=_dt(doc["update_time"]),
        )
    if kind == "training_run":
        run = run_from_json(doc["document"])
        run.id, run.project = doc["id"], doc["project"]
        run.experiment_id, run.suggestion_id, run.observation_id = doc["refs"]
        run.state, run.deleted = RunState(doc["state"]), doc["deleted"]
        run.create_time, run.update_time, run.complete_time = (_dt(t) for t in doc["times"])
        return run
    return [_suggestion_from(d) for d in doc["suggestions"]]
