"""An experiment's suggestions do not depend on the units of its optimized
metric: scaling every reported value by a positive constant changes no
suggestion, in the final stretch of a budget too, where an upper confidence
bound is weighed against the probability of the constraint metrics and the
local penalty of the points in flight."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import (
    Experiment,
    Metric,
    MetricValue,
    Observation,
    Strategy,
    Suggestion,
)
from optserve.optimizers import SuggestRequest, suggest
from optserve.optimizers import acquisition as acq

from .spaces import unit_square

SQUARE = unit_square("units")
BUDGET = 20
EXP = Experiment(
    id=SQUARE.id,
    name=SQUARE.name,
    parameters=SQUARE.parameters,
    metrics=[Metric("v"), Metric("c", strategy=Strategy.CONSTRAINT, threshold=0.0)],
    observation_budget=BUDGET,
    seed=3,
)


def _points(n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"a": float(rng.random()), "b": float(rng.random())} for _ in range(n)]


def _history(n: int, scale: float) -> list[Observation]:
    out = []
    for i, a in enumerate(_points(n, 4)):
        value = float(np.sin(5 * a["a"]) + np.cos(3 * a["b"]))
        held = 0.25 - a["a"] + 0.1 * a["b"]  # held where >= 0: binding at the best "a"
        values = [MetricValue("v", scale * value), MetricValue("c", held)]
        out.append(Observation(str(i), EXP.id, None, a, values))
    return out


@pytest.mark.parametrize(
    ("observed", "in_flight", "stretch"),
    [(10, 0, False), (10, 3, False), (18, 0, True), (15, 3, True)],
    ids=["expected-improvement", "in-flight", "final-stretch", "final-stretch-in-flight"],
)
def test_suggestions_are_the_same_in_any_units(observed, in_flight, stretch):
    pending = [Suggestion(f"p{i}", EXP.id, a) for i, a in enumerate(_points(in_flight, 5))]
    sequence = observed + in_flight
    request = SuggestRequest(EXP, _history(observed, 1.0), pending, 1, sequence)
    assert acq.final_stretch(request, 0) is stretch
    (expected,) = suggest(request)
    for scale in (1e-3, 1e3):
        scaled = SuggestRequest(EXP, _history(observed, scale), pending, 1, sequence)
        (point,) = suggest(scaled)
        assert point == pytest.approx(expected, rel=1e-9, abs=1e-12), scale
