"""Two optimized metrics: the front, the reference point, log EHVI and the suggestions."""

from __future__ import annotations

import numpy as np
import pytest

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
    Suggestion,
)
from optserve.optimizers import base, bayesian, hyperfit, multiobjective
from optserve.optimizers.base import SuggestRequest
from optserve.optimizers.feasible import feasible_space
from optserve.optimizers.training import History

FRONT = multiobjective.pareto_front(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]))
REF = np.array([0.0, 0.0])


def _hvi(sample: np.ndarray, front: np.ndarray, ref: np.ndarray) -> float:
    """The hypervolume a point adds, from the definition."""
    before = multiobjective.hypervolume(front, ref)
    after = multiobjective.hypervolume(multiobjective.pareto_front(np.vstack([front, sample])), ref)
    return after - before


def test_pareto_front_keeps_non_dominated_points_once_sorted():
    points = np.array([[1.0, 3.0], [2.0, 2.0], [1.5, 1.0], [2.0, 2.0], [3.0, 1.0], [0.5, 3.0]])
    front = multiobjective.pareto_front(points)
    np.testing.assert_array_equal(front, [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])


def test_hypervolume_and_contributions_of_a_staircase():
    assert multiobjective.hypervolume(FRONT, REF) == pytest.approx(6.0)
    np.testing.assert_allclose(multiobjective.contributions(FRONT, REF), [1.0, 1.0, 1.0])
    # (1, 3) is not above the reference: (2, 2) and (3, 1) hold 0.5 * 2 + 1 * 1
    assert multiobjective.hypervolume(FRONT, np.array([1.5, 0.0])) == pytest.approx(2.0)


def test_reference_point_is_the_nadir_less_a_tenth_of_the_range_raised_by_thresholds():
    np.testing.assert_allclose(multiobjective.reference_point(FRONT, [None, None]), [0.8, 0.8])
    np.testing.assert_allclose(multiobjective.reference_point(FRONT, [None, 1.5]), [0.8, 1.5])
    single = np.array([[2.0, -4.0]])
    np.testing.assert_allclose(multiobjective.reference_point(single, [None, None]), [1.8, -4.4])


def test_thresholds_are_warped_as_the_values_they_compare_with():
    y = -np.exp(np.random.default_rng(2).normal(0.0, 2.0, 40))  # a long bad tail
    warped, transform = multiobjective.warp(y)
    assert not np.allclose(warped, y)
    np.testing.assert_allclose([transform(v) for v in y[:5]], warped[:5], rtol=1e-9)
    plain = np.linspace(0.0, 1.0, 10)
    same, identity = multiobjective.warp(plain)
    assert same is plain and identity(0.3) == 0.3


@pytest.mark.parametrize(
    ("mean", "std"),
    [((2.5, 2.5), (0.5, 0.5)), ((1.0, 1.0), (1.0, 0.3)), ((3.5, 0.5), (0.2, 0.8))],
)
def test_log_ehvi_is_the_expected_hypervolume_improvement(mean, std):
    rng = np.random.default_rng(0)
    samples = rng.normal(mean, std, size=(20000, 2))
    hvi = np.array([_hvi(s, FRONT, REF) for s in samples])
    value = multiobjective.log_ehvi(np.array([mean]), np.array([std]), FRONT, REF)[0]
    stderr = hvi.std() / np.sqrt(len(hvi))
    assert abs(np.exp(value) - hvi.mean()) < 4 * stderr


def test_log_ehvi_stays_finite_and_increasing_far_below_the_front():
    means = np.column_stack([np.linspace(-60.0, -5.0, 12), np.full(12, -20.0)])
    value = multiobjective.log_ehvi(means, np.full((12, 2), 0.5), FRONT, REF)
    assert np.all(np.isfinite(value))
    assert np.all(np.diff(value) > 0)
    # a sure point on the front adds nothing; one beyond the front adds its box
    sure = np.full((2, 2), 1e-9)
    value = multiobjective.log_ehvi(np.array([[2.0, 2.0], [4.0, 4.0]]), sure, FRONT, REF)
    assert np.exp(value[0]) < 1e-8
    assert np.exp(value[1]) == pytest.approx(16.0 - 6.0, rel=1e-6)


def _experiment(**kwargs) -> Experiment:
    fields = {
        "id": "mo",
        "name": "mo",
        "parameters": [
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("y", ParameterType.DOUBLE, Bounds(0, 1)),
        ],
        "metrics": [Metric("f1", Objective.MINIMIZE), Metric("f2", Objective.MINIMIZE)],
        "observation_budget": 30,
        "seed": 5,
    }
    fields.update(kwargs)
    return Experiment(**fields)


def _observations(exp: Experiment, n: int) -> list[Observation]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        x, y = rng.random(2)
        values = [MetricValue("f1", x), MetricValue("f2", 1.0 - np.sqrt(x) + y)]
        if len(exp.metrics) > 2:
            values.append(MetricValue("g", x - 0.5))
        out.append(Observation(f"o{i}", exp.id, None, {"x": x, "y": y}, values))
    return out


def test_two_metrics_suggest_by_ehvi_below_its_size_limit(monkeypatch):
    exp = _experiment()
    observations = _observations(exp, 14)
    history = History(exp, observations, feasible_space(exp).encoder)
    assert multiobjective.applies(history)
    (ehvi,) = multiobjective.suggest(
        SuggestRequest(exp, observations, [], 1, 14), feasible_space(exp), history
    )
    assert base.suggest(SuggestRequest(exp, observations, [], 1, 14)) == [ehvi]
    # above the limit the scalarized (ParEGO) model suggests
    monkeypatch.setattr(multiobjective, "EHVI_MAX_POINTS", 10)
    assert not multiobjective.applies(history)
    assert bayesian.suggest(SuggestRequest(exp, observations, [], 1, 14)) != [ehvi]


def test_same_seed_and_history_give_the_same_suggestion_after_a_restart():
    exp = _experiment()
    observations = _observations(exp, 16)
    hyperfit.clear_cache()
    cold = base.suggest(SuggestRequest(exp, observations, [], 2, 16))
    warm = base.suggest(SuggestRequest(exp, observations, [], 2, 16))
    hyperfit.clear_cache()
    assert base.suggest(SuggestRequest(exp, observations, [], 2, 16)) == cold == warm


def test_pending_points_are_believed_into_the_front():
    exp = _experiment()
    observations = _observations(exp, 16)
    (alone,) = base.suggest(SuggestRequest(exp, observations, [], 1, 16))
    pending = [Suggestion("s", exp.id, alone)]
    (next_one,) = base.suggest(SuggestRequest(exp, observations, pending, 1, 16))
    space = feasible_space(exp)
    a, b = space.encoder.encode([alone, next_one])
    # the second worker goes elsewhere: its point is not the pending one's neighbour
    assert np.linalg.norm(a - b) > 0.05
    batch = base.suggest(SuggestRequest(exp, observations, [], 4, 16))
    rows = space.encoder.encode(batch)
    gaps = np.linalg.norm(rows[:, None] - rows[None], axis=2)[np.triu_indices(4, 1)]
    assert np.all(gaps > 0.01)


def test_constraint_metrics_weight_ehvi_by_the_probability_of_holding():
    exp = _experiment(
        metrics=[
            Metric("f1", Objective.MINIMIZE),
            Metric("f2", Objective.MINIMIZE),
            Metric("g", Objective.MINIMIZE, Strategy.CONSTRAINT, threshold=0.0),
        ]
    )
    observations = _observations(exp, 20)
    batch = base.suggest(SuggestRequest(exp, observations, [], 3, 20))
    # g = x - 0.5 <= 0: every suggestion on the feasible side
    assert all(p["x"] < 0.5 for p in batch)
