"""Fuzzing through a real server: random experiment specs and observations,
valid and not, are never INTERNAL; a refused one names its fields, and every
suggestion of an accepted experiment is finite, within bounds and feasible."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from optserve.v1 import experiment_pb2 as ex
from optserve.v1 import observation_pb2 as ob
from optserve.v1 import service_pb2 as pb

from ..conftest import RunningServer, start_server
from ..service_tests.helpers import violations

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "80"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Numbers of every kind: NaN, infinities, subnormals, the largest doubles, the
# edges of the limits, and plenty of ordinary ones.
EXTREMES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e-8,
    5e-324,
    1e-300,
    2.0**52,
    -(2.0**52),
    2.0**52 + 1,
    2.0**53 + 2,
    1e15,
    1e16,
    1e300,
    -1e308,
    1.7e308,
    math.inf,
    -math.inf,
    math.nan,
]
NUMBERS = st.one_of(st.floats(), st.sampled_from(EXTREMES), st.integers(-20, 20).map(float))
SMALL = st.one_of(st.integers(-10, 10).map(float), st.floats(-10, 10))
NAMES = st.one_of(st.sampled_from(["x", "y", "z", "i", "c", "k", "m", ""]), st.text(max_size=6))
FIELD_VALUES = st.one_of(
    st.text(max_size=8), NUMBERS, st.none(), st.booleans(), st.lists(st.integers(), max_size=2)
)


def enum(count: int) -> st.SearchStrategy[int]:
    """Known values mostly, unknown ones sometimes."""
    return st.one_of(st.integers(0, count), st.integers(1, count), st.sampled_from([99, -1]))


def numbers() -> st.SearchStrategy[float]:
    return st.one_of(SMALL, SMALL, NUMBERS)


@st.composite
def bounds(draw, integral: bool) -> tuple[float, float]:
    if integral and draw(st.booleans()):
        lo = draw(st.integers(-30, 30))
        return float(lo), float(lo + draw(st.integers(-1, 40)))
    lo = draw(numbers())
    if draw(st.booleans()) and math.isfinite(lo):
        return lo, lo + draw(st.sampled_from([1e-9, 1e-8, 1e-3, 1.0, 100.0, 1e300]))
    return lo, draw(numbers())


@st.composite
def parameter(draw, name: str, conditionals: list[ex.Conditional]) -> ex.Parameter:
    kind = draw(enum(3))
    p = ex.Parameter(name=name, type=kind)
    if kind in (1, 2) or draw(st.integers(0, 5)) == 0:
        if kind != 1 or draw(st.integers(0, 4)):
            lo, hi = draw(bounds(kind == 2))
            p.bounds.min, p.bounds.max = lo, hi
        if draw(st.integers(0, 3)) == 0:
            p.grid.extend(draw(st.lists(numbers(), min_size=1, max_size=5)))
    if kind == 3 or draw(st.integers(0, 5)) == 0:
        values = st.one_of(st.sampled_from(["a", "b", "c", "d"]), st.text(max_size=4))
        p.categorical_values.extend(draw(st.lists(values, min_size=1, max_size=5)))
    if draw(st.integers(0, 4)) == 0:
        p.transformation = draw(enum(2))
    for c in conditionals:
        if draw(st.booleans()):
            p.conditions[c.name].values.extend(draw(st.lists(st.sampled_from([*c.values, "?"]))))
    return p


@st.composite
def experiments(draw) -> ex.Experiment:
    exp = ex.Experiment(name=draw(st.sampled_from(["fuzz", "", "n" * 101])), type=draw(enum(3)))
    for i in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
        values = draw(st.lists(st.sampled_from(["0", "1", "2", ""]), min_size=0, max_size=3))
        exp.conditionals.add(name=f"k{i}", values=values)
    names = draw(
        st.lists(st.one_of(st.sampled_from(["x", "y", "z", "i", "j", "c"]), NAMES), max_size=4)
    )
    for name in names:
        exp.parameters.append(draw(parameter(name, list(exp.conditionals))))
    for _ in range(draw(st.integers(0, 2))):
        c = exp.linear_constraints.add(type=draw(enum(2)), threshold=draw(numbers()))
        for name in draw(st.lists(st.sampled_from([*names, "q"]), min_size=1, max_size=3)):
            weight = draw(st.one_of(st.sampled_from([1.0, -1.0, 2.0, 0.5, -3.0]), numbers()))
            c.terms.add(name=name, weight=weight)
    for name in draw(st.lists(NAMES, min_size=0, max_size=3)) or ["m"]:
        metric = exp.metrics.add(name=name, objective=draw(enum(2)), strategy=draw(enum(3)))
        if draw(st.integers(0, 3)) == 0:
            metric.threshold = draw(numbers())
    if draw(st.booleans()):
        exp.observation_budget = draw(st.sampled_from([-1, 0, 1, 3, 30, 2**31 - 1]))
    exp.parallel_bandwidth = draw(st.sampled_from([0, 1, 2, 1001]))
    exp.num_solutions = draw(st.sampled_from([0, 0, 1, 2, -1]))
    if draw(st.booleans()):
        exp.project = draw(st.sampled_from(["", "fuzz", "Fuzz", "*", "p" * 101]))
    if draw(st.integers(0, 3)) == 0:
        exp.metadata.update(draw(st.dictionaries(st.text(max_size=4), FIELD_VALUES, max_size=3)))
    return exp


LIMIT = 2.0**52


@st.composite
def double_range(draw) -> tuple[float, float]:
    """Ranges of every scale: widths from 1e-7 to 2^53, near zero or far from it."""
    scale = 10.0 ** draw(st.integers(-7, 15))
    width = min(scale * draw(st.floats(0.1, 1.0)), 2 * LIMIT)
    offset = draw(st.sampled_from([0.0, 0.0, 1.0, -1.0, 1e3, -1e6])) * width
    lo = max(-LIMIT, min(offset - width / 2, LIMIT - width))
    return lo, min(lo + width, LIMIT)


@st.composite
def valid_experiments(draw) -> ex.Experiment:
    """Experiments that follow every rule, over wide ranges of scale."""
    kind = draw(st.sampled_from([0, 1, 2, 3]))
    exp = ex.Experiment(name="fuzz", type=kind)
    centre: dict[str, float] = {}
    for i in range(draw(st.integers(1, 4))):
        t = draw(st.sampled_from([1, 1, 2, 3]))
        p = exp.parameters.add(name=f"p{i}", type=t)
        if t == 3:
            values = st.text(min_size=1, max_size=5)
            p.categorical_values.extend(draw(st.lists(values, min_size=2, max_size=4, unique=True)))
        elif t == 2:
            span = draw(
                st.sampled_from([1, 3, 10]) if kind == 3 else st.sampled_from([1, 50, 10**6])
            )
            lo = draw(st.sampled_from([0, -5, 2**40, -(2**52)]))
            p.bounds.min, p.bounds.max = lo, min(lo + span, LIMIT)
            centre[p.name] = float(draw(st.integers(int(p.bounds.min), int(p.bounds.max))))
        else:
            lo, hi = draw(double_range())
            p.bounds.min, p.bounds.max = lo, hi
            if kind == 3 or draw(st.integers(0, 5)) == 0:
                grid = st.floats(lo, hi, allow_nan=False)
                p.grid.extend(sorted(draw(st.lists(grid, min_size=1, max_size=4, unique=True))))
            elif lo > 0 and draw(st.booleans()):
                p.transformation = 2
            else:
                centre[p.name] = lo + (hi - lo) * draw(st.floats(0.2, 0.8))
    if kind in (0, 1, 2):
        for prefix_type in (1, 2):
            names = [p.name for p in exp.parameters if p.type == prefix_type and p.name in centre]
            if len(names) < 2:
                continue
            for _ in range(draw(st.integers(0, 2))):
                terms = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
                c = exp.linear_constraints.add(type=draw(st.sampled_from([1, 2])))
                total, spread = 0.0, 0.0
                for name in terms:
                    weight = draw(st.sampled_from([1.0, -1.0, 0.5, 3.0, 1e-6, -1e6]))
                    c.terms.add(name=name, weight=weight)
                    total += weight * centre[name]
                    p = next(q for q in exp.parameters if q.name == name)
                    spread += abs(weight) * (p.bounds.max - p.bounds.min)
                slack = draw(st.sampled_from([0.05, 0.3])) * spread
                c.threshold = total + slack if c.type == 1 else total - slack
    if kind in (0, 1) and draw(st.integers(0, 3)) == 0:
        exp.conditionals.add(name="k", values=["a", "b"])
        extra = exp.parameters.add(name="q", type=1)
        extra.bounds.min, extra.bounds.max = 0.0, 1.0
        extra.conditions["k"].values.append("b")
    metrics = draw(st.sampled_from(["one", "one", "stored", "two", "constraint"]))
    exp.metrics.add(name="m", objective=draw(st.sampled_from([0, 1, 2])))
    if metrics == "stored":
        exp.metrics.add(name="s", strategy=2)
    elif metrics == "two" and not exp.conditionals:
        exp.metrics.add(name="n", strategy=1, objective=2)
        exp.observation_budget = 20
    elif metrics == "constraint":
        exp.metrics.add(name="c", strategy=3, threshold=draw(SMALL))
        exp.observation_budget = 20
    exp.parallel_bandwidth = draw(st.sampled_from([0, 1, 3]))
    return exp


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(Path(tmp_path_factory.mktemp("fuzz")) / "optserve.db")
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def fstub(fuzz_server):
    return fuzz_server.stub()


def _call(fn, request, allowed: set[grpc.StatusCode]):
    """The response, or None for an allowed error code; never INTERNAL or UNKNOWN."""
    try:
        return fn(request)
    except grpc.RpcError as error:
        assert error.code() in allowed, (error.code(), error.details(), request)
        if error.code() is grpc.StatusCode.INVALID_ARGUMENT:
            found = violations(error)
            assert found and all(f and d for f, d in found), found
        return None


def _value(a) -> object:
    return getattr(a, a.WhichOneof("kind"))


def check_suggestion(exp: ex.Experiment, assignments) -> None:
    """Finite, within bounds, integral ints, known categories, grid values,
    every conditional and exactly the active parameters, constraints hold."""
    conditionals = {c.name: list(c.values) for c in exp.conditionals}
    for name, values in conditionals.items():
        assert assignments[name].string_value in values
    expected = set(conditionals)
    values: dict[str, float] = {}
    for p in exp.parameters:
        active = all(
            assignments[name].string_value in cond.values for name, cond in p.conditions.items()
        )
        if not active:
            continue
        expected.add(p.name)
        v = _value(assignments[p.name])
        if p.type == ex.PARAMETER_TYPE_CATEGORICAL:
            assert v in p.categorical_values, (p.name, v)
            continue
        assert isinstance(v, int | float) and math.isfinite(v), (p.name, v)
        if p.HasField("bounds"):
            assert p.bounds.min <= v <= p.bounds.max, (p.name, v, p.bounds)
        if p.type == ex.PARAMETER_TYPE_INT:
            assert v == int(v), (p.name, v)
        if p.grid:
            assert v in p.grid, (p.name, v)
        values[p.name] = float(v)
    assert set(assignments) == expected
    for c in exp.linear_constraints:
        terms = [t.weight * values[t.name] for t in c.terms]
        scale = max([1.0, *(abs(x) for x in terms)])
        slack = c.threshold - math.fsum(terms)
        if c.type == ex.LINEAR_CONSTRAINT_TYPE_GREATER_THAN:
            slack = -slack
        assert slack >= -1e-9 * scale, (c, values)


@st.composite
def observations(draw, exp: ex.Experiment, suggestion_id: str) -> ob.Observation:
    obs = ob.Observation()
    choice = draw(st.integers(0, 3))
    if choice == 0 or not suggestion_id:
        for name in draw(st.lists(st.sampled_from([p.name for p in exp.parameters] + ["w"]))):
            kind = draw(st.sampled_from(["double_value", "int_value", "string_value", None]))
            if kind == "double_value":
                obs.assignments[name].double_value = draw(numbers())
            elif kind == "int_value":
                obs.assignments[name].int_value = draw(st.integers(-(2**63), 2**63 - 1))
            elif kind == "string_value":
                obs.assignments[name].string_value = draw(st.sampled_from(["a", "b", "0", ""]))
            else:
                obs.assignments[name].SetInParent()
    if choice != 0:
        obs.suggestion_id = draw(st.sampled_from([suggestion_id, "0", "\uff11", str(2**63)]))
    obs.failed = draw(st.integers(0, 4)) == 0
    for name in draw(st.lists(st.sampled_from([m.name for m in exp.metrics] + ["q"]))):
        v = obs.values.add(name=name, value=draw(numbers()))
        if draw(st.integers(0, 3)) == 0:
            v.value_stddev = draw(numbers())
    if draw(st.integers(0, 3)) == 0:
        obs.metadata.update(draw(st.dictionaries(st.text(max_size=4), FIELD_VALUES, max_size=3)))
    return obs


ANY_OBSERVATION_ERROR = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}


@FUZZ
@given(data=st.data())
def test_fuzzed_specs_and_observations(fstub, data):
    """Specs and observations of every shape: never INTERNAL; accepted experiments
    only ever suggest valid points."""
    spec = data.draw(st.one_of(valid_experiments(), experiments()))
    created = _call(
        fstub.CreateExperiment,
        pb.CreateExperimentRequest(experiment=spec),
        {grpc.StatusCode.INVALID_ARGUMENT},
    )
    event("accepted" if created else "refused")
    if created is None:
        return
    exp = created.experiment
    count = data.draw(st.integers(1, 3))
    made = _call(
        fstub.CreateSuggestions,
        pb.CreateSuggestionsRequest(experiment_id=exp.id, count=count),
        {grpc.StatusCode.FAILED_PRECONDITION},  # a grid smaller than count
    )
    suggestions = list(made.suggestions) if made else []
    for s in suggestions:
        check_suggestion(exp, s.assignments)
    sid = suggestions[0].id if suggestions else ""
    for _ in range(data.draw(st.integers(1, 3))):
        obs = data.draw(observations(exp, sid))
        _call(
            fstub.CreateObservation,
            pb.CreateObservationRequest(experiment_id=exp.id, observation=obs),
            ANY_OBSERVATION_ERROR,
        )
    again = _call(
        fstub.CreateSuggestions,
        pb.CreateSuggestionsRequest(experiment_id=exp.id),
        {grpc.StatusCode.FAILED_PRECONDITION},
    )
    for s in again.suggestions if again else []:
        check_suggestion(exp, s.assignments)
    _call(
        fstub.GetBestAssignments,
        pb.GetBestAssignmentsRequest(experiment_id=exp.id),
        set(),
    )


# Accepted shapes whose suggestions come from the model once a few observations are in.
TEMPLATES = {
    "doubles": ex.Experiment(
        name="t",
        parameters=[
            ex.Parameter(name="x", type=1, bounds=ex.Bounds(min=-(2.0**52), max=2.0**52)),
            ex.Parameter(name="y", type=1, bounds=ex.Bounds(min=1e-8, max=2e-8)),
            ex.Parameter(name="l", type=1, transformation=2, bounds=ex.Bounds(min=5e-324, max=1)),
        ],
        metrics=[ex.Metric(name="m")],
    ),
    "constrained": ex.Experiment(
        name="t",
        parameters=[
            ex.Parameter(name="x", type=1, bounds=ex.Bounds(min=0, max=1e-6)),
            ex.Parameter(name="y", type=1, bounds=ex.Bounds(min=-1e9, max=1e9)),
            ex.Parameter(name="i", type=2, bounds=ex.Bounds(min=-(2.0**52), max=2.0**52)),
            ex.Parameter(name="j", type=2, bounds=ex.Bounds(min=0, max=10)),
        ],
        linear_constraints=[
            ex.LinearConstraint(
                type=1,
                threshold=1.0,
                terms=[
                    ex.ConstraintTerm(name="x", weight=1e6),
                    ex.ConstraintTerm(name="y", weight=1e-9),
                ],
            ),
            ex.LinearConstraint(
                type=2,
                threshold=-5.0,
                terms=[
                    ex.ConstraintTerm(name="i", weight=1e-15),
                    ex.ConstraintTerm(name="j", weight=-1),
                ],
            ),
        ],
        metrics=[ex.Metric(name="m", objective=2)],
    ),
    "mixed": ex.Experiment(
        name="t",
        parameters=[
            ex.Parameter(name="c", type=3, categorical_values=["a", "b", "c"]),
            ex.Parameter(name="g", type=1, grid=[-1e15, 0.0, 1e15]),
            ex.Parameter(name="i", type=2, bounds=ex.Bounds(min=0, max=3)),
        ],
        metrics=[
            ex.Metric(name="m", strategy=1, threshold=0.0),
            ex.Metric(name="n", strategy=1, threshold=0.0),
            ex.Metric(name="k", strategy=3, threshold=1e300),
        ],
        observation_budget=12,
    ),
    "conditional": ex.Experiment(
        name="t",
        conditionals=[ex.Conditional(name="layers", values=["1", "2"])],
        parameters=[
            ex.Parameter(name="a", type=1, bounds=ex.Bounds(min=0, max=1)),
            ex.Parameter(
                name="b",
                type=2,
                bounds=ex.Bounds(min=-5, max=5),
                conditions={"layers": ex.ConditionValues(values=["2"])},
            ),
        ],
        metrics=[ex.Metric(name="m")],
    ),
}
FINITE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([v for v in EXTREMES if math.isfinite(v)]),
    SMALL,
)


@settings(FUZZ, max_examples=max(8, EXAMPLES // 5))
@given(template=st.sampled_from(sorted(TEMPLATES)), data=st.data())
def test_fuzzed_histories_keep_suggestions_valid(fstub, template, data):
    """Extreme but finite values, stddevs and failures in the history: the model's
    suggestions stay finite, within bounds and feasible."""
    exp = fstub.CreateExperiment(
        pb.CreateExperimentRequest(experiment=TEMPLATES[template])
    ).experiment
    for _ in range(data.draw(st.integers(4, 7))):
        (s,) = fstub.CreateSuggestions(
            pb.CreateSuggestionsRequest(experiment_id=exp.id)
        ).suggestions
        check_suggestion(exp, s.assignments)
        obs = ob.Observation(suggestion_id=s.id, failed=data.draw(st.integers(0, 5)) == 0)
        if not obs.failed:
            for m in exp.metrics:
                v = obs.values.add(name=m.name, value=data.draw(FINITE))
                if data.draw(st.integers(0, 3)) == 0:
                    v.value_stddev = abs(data.draw(FINITE))
        fstub.CreateObservation(pb.CreateObservationRequest(experiment_id=exp.id, observation=obs))
    count = data.draw(st.integers(1, 3))
    made = fstub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id, count=count))
    assert len(made.suggestions) == count
    for s in made.suggestions:
        check_suggestion(exp, s.assignments)
    fstub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id))
