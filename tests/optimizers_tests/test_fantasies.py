"""Expected improvement averaged over fantasies of the pending outcomes
(Snoek, Larochelle & Adams 2012, section 3.3)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from optserve.domain.encoding import Encoder
from optserve.domain.model import Experiment, Suggestion
from optserve.optimizers import SuggestRequest
from optserve.optimizers import acquisition as acq
from optserve.optimizers.gp import GaussianProcess, log_expected_improvement
from optserve.optimizers.gp.fantasy import Fantasies
from optserve.optimizers.gp.model import matern52

from .spaces import unit_square

EXP = unit_square("fantasies")
ENCODER = Encoder(EXP)


def _gp() -> GaussianProcess:
    rng = np.random.default_rng(3)
    x = rng.random((25, 2))
    y = np.sin(5 * x[:, 0]) + np.cos(3 * x[:, 1])
    return GaussianProcess(maxiter=30).fit(x, y, rng=rng)


def _setup(
    seed: int = 7, pending: int = 3
) -> tuple[GaussianProcess, GaussianProcess, np.ndarray, float, Fantasies]:
    gp = _gp()
    incumbent = float(np.max(gp.mean(gp.x_train)))
    # the point of highest EI (outcomes on both sides of the incumbent) and random ones
    rows = np.random.default_rng(4).random((2000, 2))
    mean, var = gp.predict(rows)
    best = rows[np.argmax(log_expected_improvement(mean, np.sqrt(var), incumbent))]
    x_pending = np.vstack([best, np.random.default_rng(11).random((pending - 1, 2))])
    believing = gp.believe(x_pending)
    fantasies = acq.pending_fantasies(
        gp, believing, incumbent, x_pending, ENCODER, None, [], np.random.default_rng(seed)
    )
    assert fantasies is not None
    return gp, believing, x_pending, incumbent, fantasies


def test_each_fantasy_is_the_gp_conditioned_on_its_draw_of_the_pending_outcomes():
    gp, _, x_pending, _, fantasies = _setup()
    hyper = gp.hyperparameters
    assert hyper is not None
    ell, s = hyper.lengthscales, hyper.outputscale
    x, n = gp.x_train, len(gp.x_train)
    diag = s + hyper.noise + gp.jitter
    # the standardized targets, recovered from the factors: (K + noise) alpha
    y_s = (matern52(x, x, ell, s) + (diag - s) * np.eye(n)) @ gp.alpha
    # predictive distribution of the pending outcomes (noise included), from scratch
    k_xx = matern52(x, x, ell, s) + (diag - s) * np.eye(n)
    k_xp = matern52(x, x_pending, ell, s)
    k_pp = matern52(x_pending, x_pending, ell, s) + (diag - s) * np.eye(len(x_pending))
    mu_p = k_xp.T @ np.linalg.solve(k_xx, y_s)
    cov_p = k_pp - k_xp.T @ np.linalg.solve(k_xx, k_xp)
    # draw j is mu_p + L_S z_j with L_S the Cholesky factor of cov_p
    outcomes = mu_p[:, None] + np.linalg.cholesky(cov_p) @ fantasies.draws
    x_all = np.vstack([x, x_pending])
    k_all = matern52(x_all, x_all, ell, s) + (diag - s) * np.eye(len(x_all))
    rows = np.random.default_rng(5).random((40, 2))
    k_rows = matern52(x_all, rows, ell, s)
    means, var = fantasies.posterior(rows)
    for j in range(fantasies.samples):
        targets = np.concatenate([y_s, outcomes[:, j]])
        expected = gp.y_mean + gp.y_std * (k_rows.T @ np.linalg.solve(k_all, targets))
        np.testing.assert_allclose(means[:, j], expected, rtol=1e-7, atol=1e-7)
    expected_var = s - np.einsum("ij,ij->j", k_rows, np.linalg.solve(k_all, k_rows))
    np.testing.assert_allclose(var, gp.y_std**2 * expected_var, rtol=1e-6, atol=1e-10)


def test_the_average_is_over_each_fantasys_expected_improvement_and_incumbent():
    _, _, x_pending, incumbent, fantasies = _setup()
    means_p, _ = fantasies.posterior(x_pending)
    # every pending point here may become the incumbent (no branch, no constraints)
    np.testing.assert_allclose(fantasies.incumbents, np.maximum(incumbent, means_p.max(axis=0)))
    assert len(np.unique(fantasies.incumbents)) > 1
    rows = np.random.default_rng(6).random((30, 2))
    means, var = fantasies.posterior(rows)
    per = np.stack(
        [
            log_expected_improvement(means[:, j], np.sqrt(var), fantasies.incumbents[j])
            for j in range(fantasies.samples)
        ],
        axis=1,
    )
    np.testing.assert_allclose(fantasies.log_ei(rows), logsumexp(per, axis=1) - np.log(16))


def test_with_every_draw_zero_it_is_the_kriging_believer():
    gp, believing, x_pending, incumbent, _ = _setup()
    zero = Fantasies(believing, len(gp.x_train), np.zeros((len(x_pending), 4)))
    zero.set_incumbents(incumbent, x_pending)
    believed = acq.believed_incumbent(incumbent, gp, x_pending, ENCODER, None, [])
    assert believed is not None
    rows = np.random.default_rng(8).random((50, 2))
    mean, var = believing.predict(rows)
    np.testing.assert_allclose(
        zero.log_ei(rows), log_expected_improvement(mean, np.sqrt(var), believed), rtol=1e-9
    )


def test_nothing_pending_or_no_incumbent_means_no_fantasies_and_no_draws():
    gp = _gp()
    incumbent = float(np.max(gp.mean(gp.x_train)))
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    none = np.empty((0, 2))
    assert acq.pending_fantasies(gp, gp, incumbent, none, ENCODER, None, [], rng) is None
    point = np.array([[0.5, 0.5]])
    assert acq.pending_fantasies(gp, gp.believe(point), None, point, ENCODER, None, [], rng) is None
    # the suggestion's generator is untouched: without pending points nothing changes
    assert rng.bit_generator.state == state


def test_reproducible_from_the_generator_and_different_across_seeds():
    rows = np.random.default_rng(9).random((20, 2))
    a = _setup(seed=7)[4].log_ei(rows)
    b = _setup(seed=7)[4].log_ei(rows)
    c = _setup(seed=8)[4].log_ei(rows)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_expected_improvement_drops_at_a_pending_point():
    gp = _gp()
    incumbent = float(np.max(gp.mean(gp.x_train)))
    rows = np.random.default_rng(4).random((2000, 2))
    mean, var = gp.predict(rows)
    plain = log_expected_improvement(mean, np.sqrt(var), incumbent)
    point = rows[np.argmax(plain)][None, :]
    fantasies = acq.pending_fantasies(
        gp, gp.believe(point), incumbent, point, ENCODER, None, [], np.random.default_rng(2)
    )
    assert fantasies is not None
    # each fantasy has observed the point: only about the fitted noise is left there
    assert fantasies.log_ei(point)[0] < plain.max() - np.log(20.0)
    # and the best of the rest is elsewhere
    assert np.argmax(fantasies.log_ei(rows)) != np.argmax(plain)


def test_a_pending_point_expected_to_break_a_constraint_does_not_raise_the_incumbents():
    gp = _gp()
    incumbent = float(np.max(gp.mean(gp.x_train))) - 10.0
    point = gp.x_train[:1]
    constraint = (gp, float(gp.mean(point)[0]) + 1.0)
    fantasies = acq.pending_fantasies(
        gp,
        gp.believe(point),
        incumbent,
        point,
        ENCODER,
        None,
        [constraint],
        np.random.default_rng(0),
    )
    assert fantasies is not None
    np.testing.assert_array_equal(fantasies.incumbents, incumbent)


def test_the_gradient_matches_finite_differences():
    _, _, _, _, fantasies = _setup()
    h = 1e-6
    for row in np.random.default_rng(10).random((6, 2)):
        value, grad = fantasies.log_ei_and_grad(row)
        assert value == pytest.approx(fantasies.log_ei(row[None, :])[0], rel=1e-9, abs=1e-9)
        numeric = [
            (
                fantasies.log_ei((row + h * e)[None, :])[0]
                - fantasies.log_ei((row - h * e)[None, :])[0]
            )
            / (2 * h)
            for e in np.eye(2)
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_the_final_stretch_starts_earlier_by_the_points_in_flight():
    exp = Experiment(EXP.id, EXP.name, EXP.parameters, EXP.metrics, observation_budget=80)

    def request(observed: int, pending: int) -> SuggestRequest:
        open_ = [Suggestion(f"p{i}", exp.id, {"a": 0.5, "b": 0.5}) for i in range(pending)]
        return SuggestRequest(exp, [None] * observed, open_, 1, observed + pending)  # type: ignore[list-item]

    # one worker: the last 8 suggestions of 80
    assert not acq.final_stretch(request(71, 0), 0) and acq.final_stretch(request(72, 0), 0)
    # 7 open: 7 suggestions earlier (the 66th onwards), counting the batch's earlier points too
    assert not acq.final_stretch(request(57, 7), 0) and acq.final_stretch(request(58, 7), 0)
    assert not acq.final_stretch(request(57, 3), 4) and acq.final_stretch(request(58, 3), 4)
