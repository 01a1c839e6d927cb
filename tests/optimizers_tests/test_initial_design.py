"""The initial design: uniform feasible draws, not crowded on the box's faces."""

from __future__ import annotations

import numpy as np

from optserve.domain.model import (
    Bounds,
    Experiment,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    Suggestion,
)
from optserve.domain.model import ParameterType as T
from optserve.optimizers import SuggestRequest, initial_design, models, suggest


def _design(exp: Experiment, n: int) -> list[dict]:
    observations: list[Observation] = []
    for i in range(n):
        (a,) = initial_design.suggest(SuggestRequest(exp, observations, [], 1, i))
        observations.append(Observation(str(i), exp.id, None, a, [MetricValue("v", 0.0)]))
    return [o.assignments for o in observations]


def test_the_design_of_a_box_is_not_crowded_on_its_faces():
    # Greedy maximin picks put about half of the coordinates within 0.1 of a
    # face; uniform draws put a fifth there (2 * 0.1).
    near = []
    for seed in range(6):
        exp = Experiment(
            id=f"box-{seed}",
            name="box",
            parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(6)],
            metrics=[Metric("v")],
            seed=seed,
        )
        x = np.array([[a[f"x{i}"] for i in range(6)] for a in _design(exp, 8)])
        near.append(np.mean((x < 0.1) | (x > 0.9)))
    assert 0.1 < float(np.mean(near)) < 0.3


def test_two_optimized_metrics_keep_the_spread_design():
    # the first front's extent sets the reference point of hypervolume improvement
    near = []
    for seed in range(6):
        exp = Experiment(
            id=f"front-{seed}",
            name="front",
            parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(6)],
            metrics=[Metric("a"), Metric("b")],
            seed=seed,
        )
        x = np.array([[a[f"x{i}"] for i in range(6)] for a in _design(exp, 8)])
        near.append(np.mean((x < 0.1) | (x > 0.9)))
    assert float(np.mean(near)) > 0.35


def test_a_small_discrete_space_is_covered_without_repeats():
    exp = Experiment(
        id="small",
        name="small",
        parameters=[Parameter("a", T.INT, Bounds(1, 3)), Parameter("b", T.INT, Bounds(1, 3))],
        metrics=[Metric("v")],
        seed=1,
    )
    points = {(a["a"], a["b"]) for a in _design(exp, 9)}
    assert len(points) == 9


def test_with_workers_in_flight_the_model_takes_over_after_the_same_observations(monkeypatch):
    """The design ends once its observations are in: the points still in flight
    then are design points already, so declaring eight workers adds none."""

    base = initial_design.initial_design_size(
        Experiment(
            id="size",
            name="size",
            parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(4)],
            metrics=[Metric("v")],
        )
    )
    exp = Experiment(
        id="workers",
        name="workers",
        parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(4)],
        metrics=[Metric("v")],
        parallel_bandwidth=8,
        seed=3,
    )
    assert initial_design.initial_design_size(exp) == base
    points = _design(exp, base + 7)
    done = [
        Observation(str(i), exp.id, None, a, [MetricValue("v", float(sum(a.values())))])
        for i, a in enumerate(points[:base])
    ]
    pending = [Suggestion(f"s{i}", exp.id, a) for i, a in enumerate(points[base:])]
    designed, modelled = [], []
    original, exact = initial_design.suggest, models.Models.exact
    monkeypatch.setattr(
        initial_design, "suggest", lambda request: designed.append(1) or original(request)
    )
    monkeypatch.setattr(
        models.Models, "exact", lambda self, *args: modelled.append(1) or exact(self, *args)
    )
    suggest(SuggestRequest(exp, done, pending, 1, base + 7))
    # the model's point, not a design point (nor the fallback's)
    assert designed == [] and modelled == [1]
