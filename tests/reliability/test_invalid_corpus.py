"""A corpus of invalid experiment specs and observations: each one is
INVALID_ARGUMENT with a google.rpc.BadRequest naming the exact field path,
and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from optserve.v1 import experiment_pb2, observation_pb2
from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import categorical, create, double, experiment, integer, violations
from ..service_tests.test_experiment_validation import CASES as RULES
from ..service_tests.test_experiment_validation import constraint, lc, opt, store

NAN, INF = float("nan"), float("inf")
WIDE = "\U0001d4b3"  # four bytes in UTF-8
XY = [double("x"), double("y")]


def _set(**fields: Any) -> Callable[[experiment_pb2.Experiment], None]:
    """A change of the proto the JSON form cannot express (unknown enum values, NaN)."""

    def change(proto: experiment_pb2.Experiment) -> None:
        for path, value in fields.items():
            *parents, leaf = path.split("__")
            target: Any = proto
            for part in parents:
                target = target[int(part)] if part.isdigit() else getattr(target, part)
            setattr(target, leaf, value)

    return change


def _metadata(value: Any) -> Callable[[Any], None]:
    def change(proto: Any) -> None:
        proto.metadata.update({"a": value})

    return change


def _unset_metadata_value(proto: Any) -> None:
    proto.metadata.fields["k"].Clear()


def _grid(name: str, values: list) -> dict:
    return {"name": name, "type": "PARAMETER_TYPE_DOUBLE", "grid": values}


def _conditionals(n: int, values: int) -> list[dict]:
    return [{"name": f"k{i}", "values": [str(j) for j in range(values)]} for i in range(n)]


def _big_grid_space() -> dict:
    """40 grids of 1,000 values: 320 KB, past the search space's 256 KiB; the last
    parameter, with the longest name, is the largest element."""
    grid = [k / 1000 for k in range(1000)]
    names = [f"g{i:02d}" for i in range(39)] + ["g" * 50]
    return {"parameters": [double(name, 0, 1, grid=grid) for name in names]}


# (case, experiment fields or a change of the proto, the exact field path named)
SPECS: list[tuple[str, Any, str]] = [
    # -------------------------------------------------------- non-finite numbers
    ("bounds-min-nan", {"parameters": [double("x", "NaN", 1)]}, "experiment.parameters[0].bounds"),
    (
        "bounds-max-inf",
        {"parameters": [double("x", 0, "Infinity")]},
        "experiment.parameters[0].bounds",
    ),
    (
        "bounds-min-minus-inf",
        {"parameters": [double("x", "-Infinity", 0)]},
        "experiment.parameters[0].bounds",
    ),
    ("int-bounds-nan", {"parameters": [integer("i", 0, "NaN")]}, "experiment.parameters[0].bounds"),
    ("grid-nan", {"parameters": [_grid("x", [0.1, "NaN"])]}, "experiment.parameters[0].grid"),
    ("grid-inf", {"parameters": [_grid("x", [0.1, "Infinity"])]}, "experiment.parameters[0].grid"),
    (
        "grid-minus-inf",
        {"parameters": [_grid("x", ["-Infinity", 0.1])]},
        "experiment.parameters[0].grid",
    ),
    (
        "metric-threshold-nan",
        {"metrics": [opt("a", threshold="NaN"), opt("b")], "observationBudget": 9},
        "experiment.metrics[0].threshold",
    ),
    (
        "constraint-metric-threshold-inf",
        {"metrics": [opt("a"), constraint("c", threshold="Infinity")], "observationBudget": 9},
        "experiment.metrics[1].threshold",
    ),
    (
        "constraint-threshold-nan",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", "NaN", ("x", 1), ("y", 1))]},
        "experiment.linear_constraints[0].threshold",
    ),
    (
        "constraint-threshold-inf",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", "Infinity", ("x", 1), ("y", 1))]},
        "experiment.linear_constraints[0].threshold",
    ),
    (
        "constraint-weight-nan",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", "NaN"), ("y", 1))]},
        "experiment.linear_constraints[0].terms[0].weight",
    ),
    (
        "constraint-weight-minus-inf",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", "-Infinity"))]},
        "experiment.linear_constraints[0].terms[1].weight",
    ),
    ("metadata-nan", _metadata(NAN), 'experiment.metadata["a"]'),
    ("metadata-inf", _metadata(INF), 'experiment.metadata["a"]'),
    ("metadata-minus-inf", _metadata(-INF), 'experiment.metadata["a"]'),
    ("metadata-nested-nan", _metadata({"b": NAN}), 'experiment.metadata["a"]'),
    ("metadata-list-inf", _metadata([1.0, INF]), 'experiment.metadata["a"]'),
    # -------------------------------------------------------- magnitudes that cannot be sampled
    (
        "bounds-of-the-issue",
        {"parameters": [double("x", -1e308, 1e308)]},
        "experiment.parameters[0].bounds",
    ),
    (
        "int-bounds-of-the-issue",
        {"parameters": [integer("i", 0, 1e300)]},
        "experiment.parameters[0].bounds",
    ),
    (
        "bounds-width-overflows",
        {"parameters": [double("x", -1.7e308, 1.7e308)]},
        "experiment.parameters[0].bounds",
    ),
    (
        "bounds-beyond-2-52",
        {"parameters": [double("x", 0, 2.0**52 + 1)]},
        "experiment.parameters[0].bounds",
    ),
    (
        "int-bounds-beyond-2-52",
        {"parameters": [integer("i", -(2**52) - 1, 0)]},
        "experiment.parameters[0].bounds",
    ),
    ("grid-beyond-2-52", {"parameters": [_grid("x", [0, 1e300])]}, "experiment.parameters[0].grid"),
    (
        "constraint-weight-huge",
        {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", 1e16), ("y", 1))]},
        "experiment.linear_constraints[0].terms[0].weight",
    ),
    (
        "constraint-weight-huge-negative",
        {"parameters": XY, "linearConstraints": [lc("GREATER_THAN", -1, ("x", 1), ("y", -1e300))]},
        "experiment.linear_constraints[0].terms[1].weight",
    ),
    # -------------------------------------------------------- unknown enum values
    ("type-99", _set(type=99), "experiment.type"),
    ("type-negative", _set(type=-1), "experiment.type"),
    ("state-99", _set(state=99), "experiment.state"),
    ("parameter-type-99", _set(parameters__0__type=99), "experiment.parameters[0].type"),
    (
        "second-parameter-type-7",
        lambda p: (
            p.parameters.add().CopyFrom(p.parameters[0]),
            _set(parameters__1__type=7, parameters__1__name="y")(p),
        ),
        "experiment.parameters[1].type",
    ),
    (
        "transformation-99",
        _set(parameters__0__transformation=99),
        "experiment.parameters[0].transformation",
    ),
    (
        "constraint-type-99",
        lambda p: (
            json_format.ParseDict(
                {"parameters": XY, "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", 1))]}, p
            ),
            _set(linear_constraints__0__type=99)(p),
        ),
        "experiment.linear_constraints[0].type",
    ),
    ("objective-99", _set(metrics__0__objective=99), "experiment.metrics[0].objective"),
    ("objective-negative", _set(metrics__0__objective=-5), "experiment.metrics[0].objective"),
    ("strategy-99", _set(metrics__0__strategy=99), "experiment.metrics[0].strategy"),
    # -------------------------------------------------------- metadata rules
    ("metadata-bool", _metadata(True), 'experiment.metadata["a"]'),
    ("metadata-object", _metadata({"b": "c"}), 'experiment.metadata["a"]'),
    ("metadata-list", _metadata(["b"]), 'experiment.metadata["a"]'),
    ("metadata-unset-value", _unset_metadata_value, 'experiment.metadata["k"]'),
    ("metadata-101-keys", {"metadata": {f"k{i}": i for i in range(101)}}, "experiment.metadata"),
    (
        "metadata-100000-keys",
        {"metadata": {f"k{i}": 1 for i in range(100_000)}},
        "experiment.metadata",
    ),
    ("metadata-key-101", {"metadata": {"k" * 101: 1}}, f'experiment.metadata["{"k" * 100}..."]'),
    ("metadata-string-501", {"metadata": {"k": WIDE * 501}}, 'experiment.metadata["k"]'),
    # -------------------------------------------------------- names and strings
    ("name-101", {"name": "n" * 101}, "experiment.name"),
    ("name-1mb", {"name": "n" * 1_000_000}, "experiment.name"),
    ("name-wide-101", {"name": WIDE * 101}, "experiment.name"),
    ("project-101", {"project": "p" * 101}, "experiment.project"),
    ("project-uppercase", {"project": "Team"}, "experiment.project"),
    ("project-space", {"project": "my project"}, "experiment.project"),
    ("project-star", {"project": "*"}, "experiment.project"),
    ("project-slash", {"project": "a/b"}, "experiment.project"),
    ("project-non-ascii", {"project": "\u00e9quipe"}, "experiment.project"),
    ("parameter-name-101", {"parameters": [double("x" * 101)]}, "experiment.parameters[0].name"),
    ("metric-name-101", {"metrics": [{"name": "m" * 101}]}, "experiment.metrics[0].name"),
    (
        "conditional-name-101",
        {"conditionals": [{"name": "k" * 101, "values": ["a"]}]},
        "experiment.conditionals[0].name",
    ),
    (
        "categorical-value-51",
        {"parameters": [categorical("c", ["a" * 51, "b"])]},
        "experiment.parameters[0].categorical_values",
    ),
    (
        "conditional-value-51",
        {"conditionals": [{"name": "k", "values": ["a" * 51]}]},
        "experiment.conditionals[0].values",
    ),
    (
        "conditional-value-empty",
        {"conditionals": [{"name": "k", "values": ["a", ""]}]},
        "experiment.conditionals[0].values",
    ),
    # -------------------------------------------------------- counts and sizes
    (
        "categorical-101-values",
        {"parameters": [categorical("c", [f"v{i}" for i in range(101)])]},
        "experiment.parameters[0].categorical_values",
    ),
    (
        "categorical-100000-values",
        {"parameters": [categorical("c", [f"v{i}" for i in range(100_000)])]},
        "experiment.parameters[0]",
    ),
    (
        "conditional-21-values",
        {"conditionals": _conditionals(1, 21)},
        "experiment.conditionals[0].values",
    ),
    (
        "parameters-101",
        {"parameters": [double(f"x{i}") for i in range(101)]},
        "experiment.parameters",
    ),
    (
        "dimensions-201",
        {
            "parameters": [categorical(f"c{i}", [f"v{j}" for j in range(100)]) for i in range(2)]
            + [double("x")]
        },
        "experiment.parameters",
    ),
    ("conditionals-11", {"conditionals": _conditionals(11, 1)}, "experiment.conditionals"),
    (
        "conditional-combinations",
        {"conditionals": [*_conditionals(4, 10), {"name": "z", "values": ["a", "b"]}]},
        "experiment.conditionals",
    ),
    (
        "constraints-101",
        {
            "parameters": XY,
            "linearConstraints": [lc("LESS_THAN", 1 + k, ("x", 1), ("y", 1)) for k in range(101)],
        },
        "experiment.linear_constraints",
    ),
    (
        "grid-1001-values",
        {"parameters": [_grid("x", list(range(1001)))]},
        "experiment.parameters[0].grid",
    ),
    (
        "grid-size",
        {"type": "EXPERIMENT_TYPE_GRID", "parameters": [integer("i", 0, 100_000)]},
        "experiment.parameters",
    ),
    (
        "grid-size-without-listing",
        {"type": "EXPERIMENT_TYPE_GRID", "parameters": [integer("i", 0, 2**52)]},
        "experiment.parameters",
    ),
    ("search-space-bytes", _big_grid_space(), "experiment.parameters[39]"),
    (
        "assignments-bytes",
        {"parameters": [double(f"{i:03d}" + WIDE * 97) for i in range(100)]},
        "experiment.parameters",
    ),
    (
        "condition-on-11-conditionals",
        {
            "parameters": [
                double("x", conditions={f"k{i}": {"values": ["0"]} for i in range(11)}),
                double("z"),
            ]
        },
        "experiment.parameters[0].conditions",
    ),
    ("bandwidth-1001", {"parallelBandwidth": 1001}, "experiment.parallel_bandwidth"),
    (
        "metrics-51",
        {"metrics": [opt("m"), *[store(f"s{i}") for i in range(50)]]},
        "experiment.metrics",
    ),
    ("budget-negative", {"observationBudget": -5}, "experiment.observation_budget"),
    (
        "grid-with-log-zero",
        {"parameters": [_grid("x", [0, 1]) | {"transformation": "TRANSFORMATION_LOG"}]},
        "experiment.parameters[0].grid",
    ),
    (
        "constraint-terms-beyond-parameters",
        {
            "parameters": XY,
            "linearConstraints": [lc("LESS_THAN", 1, *[("x", 1)] * 3)],
        },
        "experiment.linear_constraints[0].terms",
    ),
]
# Every rule of the service tests, with its full field path.
SPECS += [
    (f"rule-{case}", fields, field if field.startswith("experiment.") else f"experiment.{field}")
    for case, fields, field, _words in RULES
]


def _newest(stub) -> str:
    page = stub.ListExperiments(pb.ListExperimentsRequest(page_size=1))
    return page.experiments[0].id if page.experiments else ""


@pytest.mark.parametrize(("spec", "field"), [c[1:] for c in SPECS], ids=[c[0] for c in SPECS])
def test_invalid_experiment(stub, spec, field):
    if callable(spec):
        proto = experiment()
        spec(proto)
    else:
        proto = experiment(**spec)
    before = _newest(stub)
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateExperiment(pb.CreateExperimentRequest(experiment=proto))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, info.value
    found = violations(info.value)
    assert field in [f for f, _ in found], found
    assert all(d for _, d in found), "every violation says why"
    assert _newest(stub) == before, "a refused experiment must not be stored"


def test_the_corpus_is_large():
    assert len(SPECS) >= 100 and len(OBSERVATIONS) >= 50


# ---------------------------------------------------------------- observations

MANUAL = {
    "x": {"doubleValue": 0.2},
    "y": {"doubleValue": 0.3},
    "i": {"intValue": 3},
    "c": {"stringValue": "a"},
    "g": {"doubleValue": 0.5},
}
GOOD = [{"name": "m", "value": 1.0}, {"name": "k", "value": 0.5}]


def _obs(**fields: Any) -> dict:
    return {"assignments": MANUAL, "values": GOOD, **fields}


def _with(name: str, value: dict) -> dict:
    return _obs(assignments={**MANUAL, name: value})


def _values(*values: dict) -> dict:
    return _obs(values=list(values))


def _meta(value: Any) -> Callable[[observation_pb2.Observation], None]:
    def change(proto: observation_pb2.Observation) -> None:
        proto.metadata.update({"a": value})

    return change


def _unset(name: str) -> Callable[[observation_pb2.Observation], None]:
    def change(proto: observation_pb2.Observation) -> None:
        proto.assignments[name].Clear()

    return change


def _suggestion(value: str) -> Callable[[observation_pb2.Observation], None]:
    def change(proto: observation_pb2.Observation) -> None:
        proto.ClearField("assignments")
        proto.suggestion_id = value

    return change


LONG = "w" * 150
# (case, observation fields or a change of the valid observation, the exact field path)
OBSERVATIONS: list[tuple[str, Any, str]] = [
    ("value-nan", _values({"name": "m", "value": "NaN"}, GOOD[1]), "observation.values[0].value"),
    (
        "value-inf",
        _values({"name": "m", "value": "Infinity"}, GOOD[1]),
        "observation.values[0].value",
    ),
    (
        "value-minus-inf",
        _values(GOOD[0], {"name": "k", "value": "-Infinity"}),
        "observation.values[1].value",
    ),
    (
        "stored-value-nan",
        _values(*GOOD, {"name": "s", "value": "NaN"}),
        "observation.values[2].value",
    ),
    (
        "stddev-nan",
        _values({"name": "m", "value": 1, "valueStddev": "NaN"}, GOOD[1]),
        "observation.values[0].value_stddev",
    ),
    (
        "stddev-inf",
        _values({"name": "m", "value": 1, "valueStddev": "Infinity"}, GOOD[1]),
        "observation.values[0].value_stddev",
    ),
    (
        "stddev-negative",
        _values({"name": "m", "value": 1, "valueStddev": -0.5}, GOOD[1]),
        "observation.values[0].value_stddev",
    ),
    ("metadata-nan", _meta(NAN), 'observation.metadata["a"]'),
    ("metadata-inf", _meta(INF), 'observation.metadata["a"]'),
    ("metadata-minus-inf", _meta(-INF), 'observation.metadata["a"]'),
    ("metadata-nested", _meta({"b": 1}), 'observation.metadata["a"]'),
    ("metadata-nested-nan", _meta({"b": NAN}), 'observation.metadata["a"]'),
    ("metadata-list", _meta([1, 2]), 'observation.metadata["a"]'),
    ("metadata-bool", _meta(False), 'observation.metadata["a"]'),
    ("metadata-unset", _unset_metadata_value, 'observation.metadata["k"]'),
    ("metadata-101-keys", _obs(metadata={f"k{i}": i for i in range(101)}), "observation.metadata"),
    ("metadata-key-101", _obs(metadata={"k" * 101: 1}), f'observation.metadata["{"k" * 100}..."]'),
    ("metadata-string-501", _obs(metadata={"k": "v" * 501}), 'observation.metadata["k"]'),
    ("assignment-unset", _unset("x"), 'observation.assignments["x"]'),
    ("categorical-assignment-unset", _unset("c"), 'observation.assignments["c"]'),
    ("assignment-nan", _with("x", {"doubleValue": "NaN"}), 'observation.assignments["x"]'),
    ("assignment-inf", _with("x", {"doubleValue": "Infinity"}), 'observation.assignments["x"]'),
    (
        "assignment-minus-inf",
        _with("y", {"doubleValue": "-Infinity"}),
        'observation.assignments["y"]',
    ),
    ("grid-assignment-nan", _with("g", {"doubleValue": "NaN"}), 'observation.assignments["g"]'),
    ("assignment-above-bounds", _with("x", {"doubleValue": 1.5}), 'observation.assignments["x"]'),
    ("assignment-below-bounds", _with("x", {"doubleValue": -0.1}), 'observation.assignments["x"]'),
    ("int-assignment-fraction", _with("i", {"doubleValue": 2.5}), 'observation.assignments["i"]'),
    ("int-assignment-above", _with("i", {"intValue": 11}), 'observation.assignments["i"]'),
    (
        "int-assignment-int64-max",
        _with("i", {"intValue": str(2**63 - 1)}),
        'observation.assignments["i"]',
    ),
    (
        "int-assignment-int64-min",
        _with("i", {"intValue": str(-(2**63))}),
        'observation.assignments["i"]',
    ),
    (
        "int-assignment-2-53-plus-1",
        _with("i", {"intValue": str(2**53 + 1)}),
        'observation.assignments["i"]',
    ),
    (
        "int-assignment-huge-double",
        _with("i", {"doubleValue": 1e300}),
        'observation.assignments["i"]',
    ),
    (
        "double-assignment-string",
        _with("x", {"stringValue": "0.5"}),
        'observation.assignments["x"]',
    ),
    (
        "categorical-assignment-number",
        _with("c", {"doubleValue": 1}),
        'observation.assignments["c"]',
    ),
    (
        "categorical-assignment-unknown",
        _with("c", {"stringValue": "z"}),
        'observation.assignments["c"]',
    ),
    (
        "categorical-assignment-long",
        _with("c", {"stringValue": "a" * 10_000}),
        'observation.assignments["c"]',
    ),
    ("grid-assignment-off-grid", _with("g", {"doubleValue": 0.55}), 'observation.assignments["g"]'),
    ("unknown-parameter", _with("w", {"doubleValue": 1}), 'observation.assignments["w"]'),
    (
        "unknown-parameter-long",
        _with(LONG, {"doubleValue": 1}),
        f'observation.assignments["{LONG[:100]}..."]',
    ),
    (
        "missing-parameter",
        _obs(assignments={k: v for k, v in MANUAL.items() if k != "i"}),
        'observation.assignments["i"]',
    ),
    ("constraint-violated", _with("x", {"doubleValue": 0.9}), "observation.assignments"),
    ("neither-suggestion-nor-assignments", {"values": GOOD}, "observation.suggestion_id"),
    ("suggestion-fullwidth", _suggestion("\uff11"), "observation.suggestion_id"),
    ("suggestion-beyond-int64", _suggestion(str(2**63)), "observation.suggestion_id"),
    ("suggestion-negative", _suggestion("-1"), "observation.suggestion_id"),
    ("suggestion-letters", _suggestion("abc"), "observation.suggestion_id"),
    ("suggestion-leading-zero", _suggestion("01"), "observation.suggestion_id"),
    ("failed-with-values", _obs(failed=True), "observation.values"),
    ("unknown-metric", _values({"name": "q", "value": 1}, *GOOD), "observation.values[0].name"),
    ("empty-metric-name", _values({"name": "", "value": 1}, *GOOD), "observation.values[0].name"),
    ("metric-twice", _values(*GOOD, {"name": "m", "value": 2}), "observation.values[2].name"),
    ("optimized-metric-missing", _values(GOOD[1]), "observation.values"),
    ("constraint-metric-missing", _values(GOOD[0]), "observation.values"),
    ("no-values", _values(), "observation.values"),
    (
        "more-values-than-metrics",
        _values(*[{"name": f"v{i}", "value": 1} for i in range(4)]),
        "observation.values",
    ),
]


def _target_fields() -> dict:
    return {
        "type": "EXPERIMENT_TYPE_RANDOM",
        "parameters": [
            double("x"),
            double("y"),
            integer("i"),
            categorical("c", ["a", "b"]),
            _grid("g", [0.25, 0.5, 0.75]),
        ],
        "linearConstraints": [lc("LESS_THAN", 1, ("x", 1), ("y", 1))],
        "metrics": [opt("m"), constraint("k", threshold=0), store("s")],
        "observationBudget": 20,
    }


@pytest.fixture(scope="module")
def target(stub) -> experiment_pb2.Experiment:
    return create(stub, **_target_fields())


def _observation(spec: Any) -> observation_pb2.Observation:
    if callable(spec):
        proto = json_format.ParseDict(_obs(), observation_pb2.Observation())
        spec(proto)
        return proto
    return json_format.ParseDict(spec, observation_pb2.Observation())


def _count(stub, experiment_id: str) -> int:
    exp = stub.GetExperiment(pb.GetExperimentRequest(id=experiment_id)).experiment
    return exp.progress.observation_count


@pytest.mark.parametrize(
    ("spec", "field"), [c[1:] for c in OBSERVATIONS], ids=[c[0] for c in OBSERVATIONS]
)
def test_invalid_observation(stub, target, spec, field):
    request = pb.CreateObservationRequest(experiment_id=target.id, observation=_observation(spec))
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateObservation(request)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, info.value
    found = violations(info.value)
    assert field in [f for f, _ in found], found
    assert _count(stub, target.id) == 0, "a refused observation must not be stored"


def test_the_valid_observation_is_accepted(target_with_observation):
    """The corpus starts from this observation: only each case's change is wrong."""
    _, made = target_with_observation
    assert made.id and made.assignments["g"].double_value == 0.5


# UpdateObservation checks the same values and metadata.
UPDATES: list[tuple[str, Any, list[str], str]] = [
    (
        "value-nan",
        {"values": [{"name": "m", "value": "NaN"}, GOOD[1]]},
        ["values"],
        "observation.values[0].value",
    ),
    ("metadata-inf", {"metadata": {"a": "Infinity"}}, ["metadata"], 'observation.metadata["a"]'),
    ("metadata-nested", {"metadata": {"a": {"b": 1}}}, ["metadata"], 'observation.metadata["a"]'),
    ("mask-unknown", {}, ["bogus"], "update_mask.paths[0]"),
    ("mask-long", {}, ["x" * 100_000], "update_mask.paths[0]"),
]


@pytest.mark.parametrize(
    ("patch", "paths", "field"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES]
)
def test_invalid_observation_update(stub, target_with_observation, patch, paths, field):
    exp_id, obs = target_with_observation
    proto = observation_pb2.Observation()
    if "metadata" in patch and isinstance(patch["metadata"]["a"], str):
        proto.metadata.update({"a": float(patch["metadata"]["a"])})
        patch = {}
    json_format.ParseDict(patch, proto)
    proto.id = obs.id
    request = pb.UpdateObservationRequest(
        experiment_id=exp_id, observation=proto, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.UpdateObservation(request)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, info.value
    assert field in [f for f, _ in violations(info.value)]
    again = stub.GetObservation(pb.GetObservationRequest(experiment_id=exp_id, id=obs.id))
    assert again.observation == obs, "a refused update must change nothing"


@pytest.fixture(scope="module")
def target_with_observation(stub):
    exp = create(stub, **_target_fields())
    obs = stub.CreateObservation(
        pb.CreateObservationRequest(experiment_id=exp.id, observation=_observation(_obs()))
    ).observation
    return exp.id, obs
