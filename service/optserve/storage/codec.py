"""JSON encoding of the domain objects that storage keeps as documents."""

from __future__ import annotations

import json
from typing import Any

from ..domain.model import (
    Bounds,
    Conditional,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    ExperimentType,
    LinearConstraint,
    Metric,
    MetricValue,
    Objective,
    Parameter,
    ParameterType,
    Strategy,
    Transformation,
)


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
    }
    return json.dumps(doc, separators=(",", ":"))


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
        **fields,
    )


def values_to_json(values: list[MetricValue]) -> str:
    return json.dumps([[v.name, v.value, v.stddev] for v in values], separators=(",", ":"))


def values_from_json(text: str) -> list[MetricValue]:
    return [MetricValue(n, v, s) for n, v, s in json.loads(text)]


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
