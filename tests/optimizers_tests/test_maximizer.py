"""Stage 4 of a Bayesian suggestion: the maximizer of the acquisition over feasible points."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import (
    Bounds,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    Parameter,
    ParameterType,
)
from optserve.optimizers import maximizer
from optserve.optimizers.feasible import feasible_space
from optserve.optimizers.gp import GaussianProcess

EXP = Experiment(
    id="maximizer",
    name="maximizer",
    parameters=[
        Parameter("a", ParameterType.DOUBLE, Bounds(0, 1)),
        Parameter("b", ParameterType.DOUBLE, Bounds(0, 1)),
        Parameter("n", ParameterType.INT, Bounds(1, 5)),
    ],
    linear_constraints=[
        LinearConstraint(
            ConstraintType.LESS_THAN, 1.0, [ConstraintTerm("a", 1), ConstraintTerm("b", 1)]
        )
    ],
    metrics=[Metric("v")],
    seed=1,
)
SPACE = feasible_space(EXP)
TARGET = SPACE.encoder.encode([{"a": 0.7, "b": 0.3, "n": 4}])[0]


def _score(rows: np.ndarray) -> np.ndarray:
    """A smooth score whose maximum lies on the constraint's boundary."""
    return -np.sum((rows - TARGET) ** 2, axis=1)


def test_neighbours_are_feasible_and_know_their_origin():
    rng = np.random.default_rng(0)
    rows = SPACE.draw_rows(5, rng)
    near, origin = maximizer.neighbours(SPACE, rows, 30, 0.1, rng)
    assert len(near) and np.all(SPACE.feasible_mask(near))
    assert set(origin) <= set(range(5))
    for row, i in zip(near, origin, strict=True):
        assert np.abs(row - rows[i]).max() < 1.0


def test_the_local_search_never_loses_ground_and_finds_the_boundary_optimum():
    rng = np.random.default_rng(1)
    rows = maximizer.candidates(SPACE, SPACE.draw_rows(4, rng), rng)
    assert len(rows) > maximizer.GLOBAL_CANDIDATES and np.all(SPACE.feasible_mask(rows))
    scores = _score(rows)
    point, refined, values = maximizer.maximize(SPACE, _score, rows, scores, 3, rng, None)
    assert np.all(values >= np.sort(scores)[-3:].min())
    assert SPACE.is_feasible(point) and point["n"] == 4
    assert abs(point["a"] - 0.7) < 0.02 and abs(point["b"] - 0.3) < 0.02
    np.testing.assert_allclose(values, _score(refined))


def test_the_pick_skips_excluded_and_infeasible_rows():
    rng = np.random.default_rng(2)
    rows = SPACE.encoder.encode(
        [{"a": 0.9, "b": 0.9, "n": 1}, {"a": 0.1, "b": 0.1, "n": 1}, {"a": 0.2, "b": 0.2, "n": 2}]
    )
    point = maximizer.pick(SPACE, SPACE.encoder, rows, np.array([3.0, -np.inf, 1.0]), rng)
    assert point == {"a": 0.2, "b": 0.2, "n": 2}
    fresh = maximizer.pick(SPACE, SPACE.encoder, rows[:2], np.array([3.0, -np.inf]), rng)
    assert SPACE.is_feasible(fresh)


@pytest.mark.parametrize("unit", [1.0, 1e-300, 1e300])
def test_the_best_rows_rank_feasible_first_then_by_value_in_any_units(unit):
    x = np.arange(7.0)[:, None]
    y = unit * np.array([5.0, 1.0, 4.0, 3.0, 9.0, 8.0, 2.0])
    feasible = np.array([False, True, False, False, False, True, False])
    best = maximizer.best_rows(x, y, feasible)
    assert best[:, 0].tolist() == [5.0, 1.0, 4.0, 0.0][: maximizer.INCUMBENTS]


def test_the_gradient_polish_keeps_the_linear_constraint():
    rng = np.random.default_rng(3)
    x = SPACE.draw_rows(40, rng)
    gp = GaussianProcess(maxiter=20).fit(x, _score(x), rng=rng)
    incumbent = float(np.max(gp.predict(x)[0]))
    polished = maximizer.polish(
        SPACE, gp, incumbent, SPACE.encoder.encode([{"a": 0.5, "b": 0.4, "n": 4}])[0]
    )
    assert polished is not None and SPACE.feasible_mask(polished[None, :])[0]


def test_the_pool_is_rescored_as_the_believing_gp_predicts():
    rng = np.random.default_rng(4)
    x = rng.random((50, 3))
    gp = GaussianProcess(maxiter=20).fit(x, np.sin(5 * x).sum(axis=1), rng=rng)
    rows = rng.random((80, 3))
    pool = maximizer.CandidatePool(gp, rows, np.zeros(80), capacity=100)
    pool.add(gp, rng.random((5, 3)), np.zeros(5))
    believing = gp.believe(rng.random((6, 3)))
    mean, var = pool.posterior(gp, believing)
    want_mean, want_var = believing.predict(pool.rows)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var, want_var, rtol=1e-7, atol=1e-12)
    assert pool.size == 85
    pool.add(gp, rng.random((30, 3)), np.zeros(30))
    assert pool.size == 100  # up to the capacity
