"""Best assignments: Pareto fronts, thresholds, constraint metrics, diverse solutions."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.best import best_observations, pareto_mask
from optserve.domain.model import (
    Bounds,
    Experiment,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Strategy,
)


def _brute_force_front(points: np.ndarray) -> set[int]:
    front = set()
    for i, p in enumerate(points):
        if not any(np.all(q >= p) and np.any(q > p) for j, q in enumerate(points) if j != i):
            front.add(i)
    return front


@pytest.mark.parametrize("seed", range(20))
def test_pareto_mask_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 60)), int(rng.integers(2, 4))
    points = rng.integers(0, 6, size=(n, k)).astype(float)  # ties and duplicates on purpose
    assert set(np.flatnonzero(pareto_mask(points))) == _brute_force_front(points)


def _experiment(metrics: list[Metric], **extra) -> Experiment:
    return Experiment(
        id="1",
        name="e",
        parameters=[
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("y", ParameterType.DOUBLE, Bounds(0, 1)),
        ],
        metrics=metrics,
        observation_budget=50,
        **extra,
    )


def _obs(i: int, x: float, y: float, **values: float) -> Observation:
    return Observation(
        str(i), "1", None, {"x": x, "y": y}, [MetricValue(k, v) for k, v in values.items()]
    )


def test_two_metric_front_respects_directions_and_thresholds():
    exp = _experiment([Metric("acc", Objective.MAXIMIZE), Metric("cost", Objective.MINIMIZE)])
    rng = np.random.default_rng(0)
    observations = [
        _obs(i, *rng.random(2), acc=float(rng.random()), cost=float(rng.random()))
        for i in range(80)
    ]
    observations.append(Observation("f", "1", None, {"x": 0.5, "y": 0.5}, [], failed=True))
    front, _ = best_observations(exp, observations)
    signed = np.array([[o.value_of("acc"), -o.value_of("cost")] for o in observations[:80]])
    assert {o.id for o in front} == {str(i) for i in _brute_force_front(signed)}

    limited = _experiment(
        [
            Metric("acc", Objective.MAXIMIZE, threshold=0.5),
            Metric("cost", Objective.MINIMIZE, threshold=0.5),
        ]
    )
    front, _ = best_observations(limited, observations)
    assert front and all(o.value_of("acc") >= 0.5 and o.value_of("cost") <= 0.5 for o in front)
    inside = [
        o for o in observations[:80] if o.value_of("acc") >= 0.5 and o.value_of("cost") <= 0.5
    ]
    signed = np.array([[o.value_of("acc"), -o.value_of("cost")] for o in inside])
    assert {o.id for o in front} == {inside[i].id for i in _brute_force_front(signed)}


def test_constraint_metrics_exclude_violating_observations():
    exp = _experiment(
        [Metric("v"), Metric("mem", Objective.MINIMIZE, Strategy.CONSTRAINT, threshold=10)]
    )
    observations = [
        _obs(0, 0.1, 0.1, v=5.0, mem=20.0),
        _obs(1, 0.2, 0.2, v=3.0, mem=8.0),
        _obs(2, 0.3, 0.3, v=4.0, mem=11.0),
    ]
    (best,), _ = best_observations(exp, observations)
    assert best.id == "1"
    none, why = best_observations(exp, [observations[0], observations[2]])
    assert none == [] and "constraint" in why


def test_multisolution_returns_distinct_separated_solutions():
    exp = _experiment([Metric("v")], num_solutions=3)
    rng = np.random.default_rng(1)
    # three peaks; the top 10 observations all crowd around the highest one
    peaks = [(0.1, 0.1, 3.0), (0.9, 0.2, 2.0), (0.5, 0.9, 1.0)]
    observations = []
    for i in range(60):
        px, py, h = peaks[i % 3]
        x, y = px + 0.02 * rng.standard_normal(), py + 0.02 * rng.standard_normal()
        observations.append(_obs(i, x, y, v=h - ((x - px) ** 2 + (y - py) ** 2)))
    solutions, _ = best_observations(exp, observations)
    assert len(solutions) == 3
    centres = {
        min(
            range(3),
            key=lambda k: (
                (o.assignments["x"] - peaks[k][0]) ** 2 + (o.assignments["y"] - peaks[k][1]) ** 2
            ),
        )
        for o in solutions
    }
    assert centres == {0, 1, 2}, "each solution should be the best of its own region"
    for k, o in enumerate(solutions):
        peers = [
            o
            for o in observations
            if (o.assignments["x"] - solutions[k].assignments["x"]) ** 2 < 0.01
        ]
        assert o.value_of("v") == max(p.value_of("v") for p in peers)


def test_multisolution_never_returns_near_duplicates():
    exp = _experiment([Metric("v")], num_solutions=3)
    observations = [
        _obs(0, 0.30, 0.5, v=2.0),
        _obs(1, 0.31, 0.5, v=1.9),
        _obs(2, 0.305, 0.51, v=1.8),
    ]
    solutions, why = best_observations(exp, observations)
    assert [o.id for o in solutions] == ["0"] and "1 of 3" in why


def test_explanation_names_the_constraint_metrics():
    exp = _experiment(
        [Metric("v"), Metric("mem", Objective.MINIMIZE, Strategy.CONSTRAINT, threshold=10)]
    )
    none, why = best_observations(exp, [_obs(0, 0.1, 0.1, v=5.0, mem=20.0)])
    assert none == [] and "mem <= 10" in why
