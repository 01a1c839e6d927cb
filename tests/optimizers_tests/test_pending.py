"""Pending points in the acquisition: the kriging believer's incumbent and the
local penalization of Gonzalez et al. (2016)."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.encoding import Encoder
from optserve.optimizers import acquisition as acq
from optserve.optimizers.gp import GaussianProcess, log_expected_improvement

from .spaces import unit_square

EXP = unit_square("pending")
ENCODER = Encoder(EXP)


def _gp() -> tuple[GaussianProcess, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.random((25, 2))
    y = np.sin(5 * x[:, 0]) + np.cos(3 * x[:, 1])
    return GaussianProcess(maxiter=30).fit(x, y, rng=rng), x


def _best_candidate(gp: GaussianProcess, incumbent: float) -> np.ndarray:
    rows = np.random.default_rng(4).random((2000, 2))
    mean, var = gp.predict(rows)
    return rows[np.argmax(log_expected_improvement(mean, np.sqrt(var), incumbent))]


def test_believed_incumbent_takes_the_believed_value_of_a_better_pending_point():
    gp, x = _gp()
    incumbent = float(np.max(gp.predict(x)[0]))
    best = _best_candidate(gp, incumbent)[None, :]
    worst = x[np.argmin(gp.predict(x)[0])][None, :]
    assert acq.believed_incumbent(incumbent, gp, worst, ENCODER, None, []) == incumbent
    believed = acq.believed_incumbent(incumbent, gp, np.vstack([worst, best]), ENCODER, None, [])
    assert believed == pytest.approx(max(incumbent, float(gp.mean(best)[0])), rel=1e-12)
    assert acq.believed_incumbent(None, gp, best, ENCODER, None, []) is None
    assert acq.believed_incumbent(incumbent, gp, best[:0], ENCODER, None, []) == incumbent


def test_a_pending_point_expected_to_break_a_constraint_does_not_raise_the_incumbent():
    gp, x = _gp()
    incumbent = float(np.max(gp.predict(x)[0])) - 10.0
    point = x[:1]
    # a constraint model whose mean at the point is below its threshold
    constraint = (gp, float(gp.mean(point)[0]) + 1.0)
    assert acq.believed_incumbent(incumbent, gp, point, ENCODER, None, [constraint]) == incumbent
    assert acq.believed_incumbent(incumbent, gp, point, ENCODER, None, []) > incumbent


def test_under_the_believer_expected_improvement_vanishes_at_a_pending_point():
    gp, x = _gp()
    incumbent = float(np.max(gp.predict(x)[0]))
    point = _best_candidate(gp, incumbent)[None, :]
    mean, var = gp.predict(point)
    before = log_expected_improvement(mean, np.sqrt(var), incumbent)[0]
    believing = gp.believe(point)
    believed = acq.believed_incumbent(incumbent, gp, point, ENCODER, None, [])
    mean_b, var_b = believing.predict(point)
    after = log_expected_improvement(mean_b, np.sqrt(var_b), believed)[0]
    # down to about the fitted noise
    assert var_b[0] < 0.05 * var[0]
    assert after < before - np.log(20.0)


def test_the_gradient_norm_of_the_mean_matches_finite_differences():
    gp, _ = _gp()
    rows = np.random.default_rng(5).random((7, 2))
    h = 1e-6
    ell = gp.lengthscales
    norms = []
    for row in rows:
        grad = [
            (gp.mean((row + h * e)[None, :])[0] - gp.mean((row - h * e)[None, :])[0]) / (2 * h)
            for e in np.eye(2)
        ]
        norms.append(float(np.linalg.norm(np.array(grad) * ell)))
    np.testing.assert_allclose(acq.mean_gradient_norm(gp, rows), max(norms), rtol=1e-5)
    for row, norm in zip(rows, norms, strict=True):
        np.testing.assert_allclose(acq.mean_gradient_norm(gp, row[None, :]), norm, rtol=1e-5)


def test_local_penalty_excludes_a_wider_ball_around_a_poor_pending_point():
    gp, x = _gp()
    incumbent = float(np.max(gp.predict(x)[0]))
    mean = gp.predict(x)[0]
    good, poor = x[np.argmax(mean)], x[np.argmin(mean)]
    assert acq.local_penalty(np.empty((0, 2)), gp, incumbent) is None
    direction = np.array([1.0, 1.0]) / np.sqrt(2.0)
    step = 0.05 * gp.lengthscales * direction
    around: dict[str, np.ndarray] = {}
    for name, point in (("good", good), ("poor", poor)):
        penalty = acq.local_penalty(point[None, :], gp, incumbent)
        assert penalty is not None
        near = np.clip(point + step, 0, 1)[None, :]
        values = penalty(np.vstack([point[None, :], near]))
        assert np.all(values <= 0.0)
        around[name] = values
    # the poor point (far below the incumbent) excludes its neighbourhood,
    # the point at the incumbent hardly anything next to it
    assert around["poor"][1] < np.log(1e-3)
    assert around["good"][1] > around["poor"][1] + 5.0
    # far from a pending point (beyond its ball by many standard deviations) no penalty
    penalty = acq.local_penalty(poor[None, :], gp, incumbent)
    assert penalty is not None
    lipschitz = acq.mean_gradient_norm(gp, gp.x_train)
    mean_p, var_p = gp.predict(poor[None, :])
    radius = (incumbent - mean_p[0] + 8.0 * np.sqrt(var_p[0])) / lipschitz
    rows = np.random.default_rng(6).random((4000, 2))
    outside = np.linalg.norm((rows - poor) / gp.lengthscales, axis=1) > radius
    assert outside.sum() > 100
    assert np.all(penalty(rows[outside]) > -1e-12)


def test_the_lipschitz_constant_is_the_steepest_slope_over_the_domain_too():
    gp, x = _gp()
    incumbent = float(np.max(gp.predict(x)[0]))
    domain = np.random.default_rng(7).random((acq.LIPSCHITZ_DRAWS, 2))
    at_data = acq.mean_gradient_norm(gp, gp.x_train)
    between = acq.mean_gradient_norm(gp, domain)
    # the mean is steeper between the training points than at them
    assert between > at_data
    alone = acq.local_penalty(x[:2], gp, incumbent)
    both = acq.local_penalty(x[:2], gp, incumbent, domain)
    assert alone is not None and both is not None
    assert alone.lipschitz == at_data and both.lipschitz == max(at_data, between)
    # a larger L rules out a smaller ball: no row is penalized more
    rows = np.random.default_rng(8).random((500, 2))
    assert np.all(both(rows) >= alone(rows) - 1e-12)
    _, _, through = acq.with_pending(gp, incumbent, x[:2], ENCODER, None, [], domain)
    assert isinstance(through, acq.LocalPenalty) and through.lipschitz == both.lipschitz


def test_with_no_pending_point_nothing_changes():
    gp, x = _gp()
    incumbent = float(np.max(gp.predict(x)[0]))
    model, value, penalty = acq.with_pending(gp, incumbent, np.empty((0, 2)), ENCODER, None, [])
    assert model is gp and value == incumbent and penalty is None
    model, value, penalty = acq.with_pending(gp, None, x[:2], ENCODER, None, [])
    assert value is None and penalty is not None and model is not gp
