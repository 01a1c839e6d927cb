"""Every experiment rule: INVALID_ARGUMENT naming the field, and nothing stored."""

from __future__ import annotations

import grpc
import pytest

from optserve.v1 import service_pb2 as pb

from .helpers import categorical, create, double, integer, violations

M = {"name": "value"}
CONDITIONAL = [{"name": "layers", "values": ["1", "2"]}]


def lc(kind: str, threshold: float, *terms: tuple[str, float]) -> dict:
    return {
        "type": f"LINEAR_CONSTRAINT_TYPE_{kind}",
        "threshold": threshold,
        "terms": [{"name": n, "weight": w} for n, w in terms],
    }


def opt(name: str, **extra) -> dict:
    return {"name": name, "strategy": "METRIC_STRATEGY_OPTIMIZE", **extra}


def store(name: str, **extra) -> dict:
    return {"name": name, "strategy": "METRIC_STRATEGY_STORE", **extra}


def constraint(name: str, **extra) -> dict:
    return {"name": name, "strategy": "METRIC_STRATEGY_CONSTRAINT", **extra}


XY = [double("x"), double("y")]
IJ = [integer("i"), integer("j")]

# (case id, experiment fields, expected field path, words in the description)
CASES = [
    ("name-required", {"name": ""}, "experiment.name", "required"),
    ("parameters-required", {"parameters": []}, "experiment.parameters", "at least one"),
    ("parameter-name-required", {"parameters": [double("")]}, "parameters[0].name", "required"),
    (
        "parameter-name-unique",
        {"parameters": [double("x"), double("x")]},
        "parameters[1].name",
        "unique",
    ),
    (
        "parameter-name-not-a-conditional",
        {
            "parameters": [double("layers", conditions={"layers": {"values": ["1"]}}), double("z")],
            "conditionals": CONDITIONAL,
        },
        "parameters[0].name",
        "unique",
    ),
    (
        "parameter-type-required",
        {"parameters": [{"name": "x", "bounds": {"min": 0, "max": 1}}]},
        "parameters[0].type",
        "required",
    ),
    (
        "bounds-required",
        {"parameters": [{"name": "x", "type": "PARAMETER_TYPE_DOUBLE"}]},
        "parameters[0].bounds",
        "required",
    ),
    ("bounds-ordered", {"parameters": [double("x", 1, 0)]}, "parameters[0].bounds", "less than"),
    ("bounds-equal", {"parameters": [double("x", 1, 1)]}, "parameters[0].bounds", "less than"),
    ("bounds-width", {"parameters": [double("x", 0, 1e-10)]}, "parameters[0].bounds", "apart"),
    (
        "bounds-finite",
        {"parameters": [double("x", 0, "Infinity")]},
        "parameters[0].bounds",
        "finite",
    ),
    (
        "int-bounds-integral",
        {"parameters": [integer("i", 0, 2.5)]},
        "parameters[0].bounds",
        "integers",
    ),
    (
        "categorical-two-values",
        {"parameters": [categorical("c", ["a"])]},
        "parameters[0].categorical_values",
        "at least 2",
    ),
    (
        "categorical-unique",
        {"parameters": [categorical("c", ["a", "a"])]},
        "parameters[0].categorical_values",
        "unique",
    ),
    (
        "categorical-non-empty",
        {"parameters": [categorical("c", ["a", ""])]},
        "parameters[0].categorical_values",
        "non-empty",
    ),
    (
        "categorical-no-bounds",
        {"parameters": [categorical("c", ["a", "b"], bounds={"min": 0, "max": 1})]},
        "parameters[0].bounds",
        "no bounds",
    ),
    (
        "numeric-no-categories",
        {"parameters": [double("x", categoricalValues=["a", "b"])]},
        "parameters[0].categorical_values",
        "no categorical",
    ),
    (
        "log-positive",
        {"parameters": [double("x", 0, 1, transformation="TRANSFORMATION_LOG")]},
        "parameters[0].transformation",
        "> 0",
    ),
    (
        "log-numeric-only",
        {"parameters": [categorical("c", ["a", "b"], transformation="TRANSFORMATION_LOG")]},
        "parameters[0].transformation",
        "double and int",
    ),
    (
        "grid-within-bounds",
        {"parameters": [double("x", grid=[0.5, 2.0])]},
        "parameters[0].grid",
        "within the bounds",
    ),
    ("grid-unique", {"parameters": [double("x", grid=[0.5, 0.5])]}, "parameters[0].grid", "unique"),
    (
        "grid-int-integral",
        {"parameters": [integer("i", grid=[1, 2.5])]},
        "parameters[0].grid",
        "integers",
    ),
    (
        "grid-required-for-doubles",
        {"type": "EXPERIMENT_TYPE_GRID"},
        "parameters[0].grid",
        "required",
    ),
    (
        "grid-budget-at-most-size",
        {
            "type": "EXPERIMENT_TYPE_GRID",
            "parameters": [double("x", grid=[0.1, 0.2])],
            "observationBudget": 3,
        },
        "experiment.observation_budget",
        "at most 2",
    ),
    (
        "condition-names-a-conditional",
        {
            "parameters": [double("x", conditions={"depth": {"values": ["1"]}}), double("z")],
            "conditionals": CONDITIONAL,
        },
        'parameters[0].conditions["depth"]',
        "not a conditional",
    ),
    (
        "condition-value-exists",
        {
            "parameters": [double("x", conditions={"layers": {"values": ["3"]}}), double("z")],
            "conditionals": CONDITIONAL,
        },
        'parameters[0].conditions["layers"]',
        "not a value",
    ),
    (
        "conditional-values-required",
        {"conditionals": [{"name": "layers", "values": []}]},
        "conditionals[0].values",
        "at least one",
    ),
    (
        "conditional-values-unique",
        {"conditionals": [{"name": "layers", "values": ["1", "1"]}]},
        "conditionals[0].values",
        "unique",
    ),
    (
        "conditional-names-unique",
        {
            "conditionals": [
                {"name": "layers", "values": ["1"]},
                {"name": "layers", "values": ["2"]},
            ]
        },
        "conditionals[1].name",
        "duplicate",
    ),
    (
        "conditionals-offline-only",
        {"conditionals": CONDITIONAL, "type": "EXPERIMENT_TYPE_RANDOM"},
        "experiment.type",
        "offline",
    ),
    (
        "conditionals-at-most-20-parameters",
        {"conditionals": CONDITIONAL, "parameters": [double(f"x{i}") for i in range(21)]},
        "experiment.parameters",
        "at most 20",
    ),
    (
        "conditionals-one-optimized-metric",
        {"conditionals": CONDITIONAL, "metrics": [opt("a"), opt("b")], "observationBudget": 10},
        "experiment.metrics",
        "exactly one",
    ),
    (
        "conditionals-no-multisolution",
        {"conditionals": CONDITIONAL, "numSolutions": 2, "observationBudget": 10},
        "experiment.num_solutions",
        "conditionals",
    ),
    (
        "conditional-combinations-covered",
        {
            "conditionals": CONDITIONAL,
            "parameters": [double("x", conditions={"layers": {"values": ["1"]}})],
        },
        "experiment.conditionals",
        "no parameter is active when layers=2",
    ),
    ("metrics-required", {"metrics": []}, "experiment.metrics", "between 1 and 50"),
    (
        "metrics-at-most-50",
        {"metrics": [opt("m")] + [store(f"s{i}") for i in range(50)]},
        "experiment.metrics",
        "between 1 and 50",
    ),
    ("metric-names-unique", {"metrics": [opt("m"), store("m")]}, "metrics[1].name", "duplicate"),
    ("metric-name-required", {"metrics": [opt("")]}, "metrics[0].name", "required"),
    (
        "at-most-two-optimized",
        {"metrics": [opt("a"), opt("b"), opt("c")], "observationBudget": 9},
        "experiment.metrics",
        "at most 2",
    ),
    ("one-optimized-required", {"metrics": [store("a")]}, "experiment.metrics", "at least one"),
    (
        "at-most-four-constraint-metrics",
        {
            "metrics": [opt("m")] + [constraint(f"c{i}", threshold=1) for i in range(5)],
            "observationBudget": 9,
        },
        "experiment.metrics",
        "at most 4",
    ),
    (
        "constraint-metric-threshold",
        {"metrics": [opt("m"), constraint("c")], "observationBudget": 9},
        "metrics[1].threshold",
        "required",
    ),
    (
        "stored-metric-no-threshold",
        {"metrics": [opt("m"), store("s", threshold=1)]},
        "metrics[1].threshold",
        "stored",
    ),
    (
        "lone-optimized-no-threshold",
        {"metrics": [opt("m", threshold=1)]},
        "metrics[0].threshold",
        "two-metric",
    ),
    (
        "two-optimized-need-budget",
        {"metrics": [opt("a"), opt("b")]},
        "experiment.observation_budget",
        "two optimized",
    ),
    (
        "constraint-metrics-need-budget",
        {"metrics": [opt("a"), constraint("c", threshold=1)]},
        "experiment.observation_budget",
        "constraint",
    ),
    (
        "multisolution-needs-budget",
        {"numSolutions": 2},
        "experiment.observation_budget",
        "num_solutions",
    ),
    (
        "multisolution-no-categoricals",
        {
            "numSolutions": 2,
            "observationBudget": 10,
            "parameters": [double("x"), categorical("c", ["a", "b"])],
        },
        "experiment.num_solutions",
        "categoricals",
    ),
    (
        "multisolution-within-budget",
        {"numSolutions": 5, "observationBudget": 3},
        "experiment.num_solutions",
        "budget",
    ),
    ("budget-positive", {"observationBudget": 0}, "experiment.observation_budget", "at least 1"),
    ("bandwidth-positive", {"parallelBandwidth": -1}, "experiment.parallel_bandwidth", "between 1"),
    ("num-solutions-positive", {"numSolutions": -2}, "experiment.num_solutions", "at least 1"),
    (
        "constraint-two-terms",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", 1))]},
        "linear_constraints[0].terms",
        "at least two",
    ),
    (
        "constraint-known-parameter",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("q", 1))]},
        "linear_constraints[0].terms[1].name",
        "not a parameter",
    ),
    (
        "constraint-not-mixed",
        {
            "parameters": [double("x"), integer("i")],
            "linearConstraints": [lc("LESS_THAN", 5, ("x", 1), ("i", 1))],
        },
        "linear_constraints[0].terms",
        "mix",
    ),
    (
        "constraint-not-categorical",
        {
            "parameters": [double("x"), categorical("c", ["a", "b"])],
            "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("c", 1))],
        },
        "linear_constraints[0].terms[1].name",
        "categorical",
    ),
    (
        "constraint-not-conditional",
        {
            "parameters": [double("x"), double("y", conditions={"layers": {"values": ["2"]}})],
            "conditionals": CONDITIONAL,
            "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", 1))],
        },
        "linear_constraints[0].terms[1].name",
        "conditional",
    ),
    (
        "constraint-not-log",
        {
            "parameters": [double("x"), double("y", 0.1, 1, transformation="TRANSFORMATION_LOG")],
            "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", 1))],
        },
        "linear_constraints[0].terms[1].name",
        "log",
    ),
    (
        "constraint-not-grid",
        {
            "parameters": [double("x"), double("y", grid=[0.1, 0.2])],
            "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", 1))],
        },
        "linear_constraints[0].terms[1].name",
        "grid",
    ),
    (
        "constraint-nonzero-weight",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", 0))]},
        "linear_constraints[0].terms[1].weight",
        "non-zero",
    ),
    (
        "constraint-type-required",
        {
            "parameters": XY,
            "linearConstraints": [
                {"threshold": 1, "terms": [{"name": "x", "weight": 1}, {"name": "y", "weight": 1}]}
            ],
        },
        "linear_constraints[0].type",
        "required",
    ),
    (
        "constraint-distinct-terms",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("x", 2))]},
        "linear_constraints[0].terms[1].name",
        "twice",
    ),
    (
        "constraint-at-most-10-ints",
        {
            "parameters": [integer(f"i{k}") for k in range(11)],
            "linearConstraints": [lc("LESS_THAN", 100, *[(f"i{k}", 1) for k in range(11)])],
        },
        "experiment.linear_constraints",
        "at most 10",
    ),
    (
        "constraint-offline-or-random",
        {
            "type": "EXPERIMENT_TYPE_GRID",
            "parameters": [double("x", grid=[0.1]), double("y", grid=[0.1])],
            "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", 1))],
        },
        "experiment.linear_constraints",
        "offline and random",
    ),
    (
        "constraint-feasible-doubles",
        {"parameters": XY, "linearConstraints": [lc("GREATER_THAN", 2.5, ("x", 1), ("y", 1))]},
        "experiment.linear_constraints",
        "no feasible point",
    ),
    (
        "constraint-region-not-flat",
        {
            "parameters": XY,
            "linearConstraints": [
                lc("LESS_THAN", 1, ("x", 1), ("y", 1)),
                lc("GREATER_THAN", 1, ("x", 1), ("y", 1)),
            ],
        },
        "experiment.linear_constraints",
        "flat",
    ),
    (
        "constraint-feasible-ints",
        {
            "parameters": IJ,
            "linearConstraints": [
                lc("LESS_THAN", 1, ("i", 2), ("j", 2)),
                lc("GREATER_THAN", 1, ("i", 2), ("j", 2)),
            ],
        },
        "experiment.linear_constraints",
        "no integer point",
    ),
]


def _newest(stub) -> str:
    page = stub.ListExperiments(pb.ListExperimentsRequest(page_size=1))
    return page.experiments[0].id if page.experiments else ""


@pytest.mark.parametrize(
    ("fields", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(stub, fields, field, words):
    before = _newest(stub)
    with pytest.raises(grpc.RpcError) as info:
        create(stub, **fields)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    found = violations(info.value)
    assert any(f.endswith(field) and words in d for f, d in found), found
    assert _newest(stub) == before, "a refused experiment must not be stored"


def test_every_violation_is_reported_at_once(stub):
    with pytest.raises(grpc.RpcError) as info:
        create(stub, name="", parameters=[double("x", 1, 0), categorical("c", ["a"])])
    fields = {f for f, _ in violations(info.value)}
    assert {
        "experiment.name",
        "experiment.parameters[0].bounds",
        "experiment.parameters[1].categorical_values",
    } <= fields


def test_valid_experiments_are_accepted(stub):
    seeds_constrained = create(
        stub,
        parameters=[double("alpha"), double("beta"), integer("gamma"), integer("theta")],
        linearConstraints=[
            lc("LESS_THAN", 1, ("alpha", 1), ("beta", 1)),
            lc("GREATER_THAN", 0, ("gamma", 3), ("theta", -5)),
        ],
        observationBudget=80,
    )
    assert seeds_constrained.id and len(seeds_constrained.linear_constraints) == 2
    two_metric = create(
        stub,
        metrics=[opt("a", threshold=0.5), opt("b", objective="METRIC_OBJECTIVE_MINIMIZE")],
        observationBudget=20,
    )
    assert two_metric.metrics[0].threshold == 0.5
    grid = create(
        stub,
        type="EXPERIMENT_TYPE_GRID",
        parameters=[double("x", grid=[0.1, 0.2]), categorical("c", ["a", "b", "c"])],
    )
    assert grid.observation_budget == 6
