"""An experiment's suggestions do not depend on the units of its optimized
metric: scaling every reported value by a positive constant, shifting it, or
reporting its negative to be minimized changes no suggestion, in the final
stretch of a budget too, where an upper confidence bound is weighed against
the probability of the constraint metrics and the local penalty of the
points in flight."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from optserve.domain.model import (
    Experiment,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Strategy,
    Suggestion,
)
from optserve.optimizers import SuggestRequest, suggest
from optserve.optimizers import acquisition as acq

from .spaces import unit_square

SQUARE = unit_square("units")
BUDGET = 20


def _experiment(objective: Objective) -> Experiment:
    constraint = Metric("c", strategy=Strategy.CONSTRAINT, threshold=0.0)
    return Experiment(
        id=SQUARE.id,
        name=SQUARE.name,
        parameters=SQUARE.parameters,
        metrics=[Metric("v", objective=objective), constraint],
        observation_budget=BUDGET,
        seed=3,
    )


def _points(n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"a": float(rng.random()), "b": float(rng.random())} for _ in range(n)]


def _history(n: int, report: Callable[[float], float]) -> list[Observation]:
    out = []
    for i, a in enumerate(_points(n, 4)):
        value = float(np.sin(5 * a["a"]) + np.cos(3 * a["b"]))
        held = 0.25 - a["a"] + 0.1 * a["b"]  # held where >= 0: binding at the best "a"
        values = [MetricValue("v", report(value)), MetricValue("c", held)]
        out.append(Observation(str(i), SQUARE.id, None, a, values))
    return out


# the same outcomes in other units: (objective, how each value is reported)
REPORTS = {
    "milli": (Objective.MAXIMIZE, lambda v: 1e-3 * v),
    "kilo": (Objective.MAXIMIZE, lambda v: 1e3 * v),
    "shifted": (Objective.MAXIMIZE, lambda v: v + 1e6),
    "negated": (Objective.MINIMIZE, lambda v: -v),
}
# units near the ends of the doubles' range
EXTREMES = {
    "tiny": (Objective.MAXIMIZE, lambda v: 1e-300 * v),
    "huge": (Objective.MAXIMIZE, lambda v: 1e300 * v),
}


@pytest.mark.parametrize(
    ("observed", "in_flight", "stretch"),
    [(10, 0, False), (10, 3, False), (18, 0, True), (15, 3, True)],
    ids=["expected-improvement", "in-flight", "final-stretch", "final-stretch-in-flight"],
)
def test_suggestions_are_the_same_in_any_units(observed, in_flight, stretch):
    _assert_same_in(REPORTS, observed, in_flight, stretch)


@pytest.mark.parametrize(
    ("observed", "in_flight", "stretch"),
    [(10, 0, False), (10, 3, False), (18, 0, True), (15, 3, True)],
    ids=["expected-improvement", "in-flight", "final-stretch", "final-stretch-in-flight"],
)
def test_values_in_tiny_or_huge_units_are_not_read_as_constant(observed, in_flight, stretch):
    """Values of magnitude 1e-300 are scaled up exactly, as those near 1e308 are
    scaled down, and a spread is measured against the values' own magnitude; the
    observations that miss the constraint metric keep their order among
    themselves where the best of them start the search."""
    _assert_same_in(EXTREMES, observed, in_flight, stretch)


def _assert_same_in(reports, observed, in_flight, stretch):
    pending = [Suggestion(f"p{i}", SQUARE.id, a) for i, a in enumerate(_points(in_flight, 5))]
    sequence = observed + in_flight
    exp = _experiment(Objective.MAXIMIZE)
    request = SuggestRequest(exp, _history(observed, float), pending, 1, sequence)
    assert acq.final_stretch(request, 0) is stretch
    (expected,) = suggest(request)
    for name, (objective, report) in reports.items():
        other = SuggestRequest(
            _experiment(objective), _history(observed, report), pending, 1, sequence
        )
        (point,) = suggest(other)
        assert point == pytest.approx(expected, rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("threshold", [1e100, -1e100, 1e-300])
@pytest.mark.parametrize("strategy", [Strategy.OPTIMIZE, Strategy.CONSTRAINT])
def test_thresholds_far_beyond_values_in_tiny_units(threshold, strategy):
    """Values near 1e-300 are scaled up by about 2 ** 740, and a threshold of
    1e100 scaled with them is beyond every double (an infinite threshold: never
    or always met); the suggestion is still an ordinary point of the space."""
    exp = Experiment(
        id=SQUARE.id,
        name=SQUARE.name,
        parameters=SQUARE.parameters,
        metrics=[Metric("v"), Metric("w", strategy=strategy, threshold=threshold)],
        observation_budget=BUDGET,
        seed=3,
    )
    history = [
        Observation(
            str(i),
            SQUARE.id,
            None,
            a,
            [
                MetricValue("v", 1e-300 * (np.sin(5 * a["a"]) + 1.5)),
                MetricValue("w", 1e-300 * a["b"]),
            ],
        )
        for i, a in enumerate(_points(12, 4))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the scaled threshold is inf, quietly
        (point,) = suggest(SuggestRequest(exp, history, [], 1, 12))
    assert all(0.0 <= point[name] <= 1.0 for name in ("a", "b"))
