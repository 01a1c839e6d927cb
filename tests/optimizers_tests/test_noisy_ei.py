"""Noisy expected improvement (Letham et al. 2019): EI averaged over joint draws of
the latent values at the observed points that may be the best."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import MetricValue, Observation
from optserve.optimizers import SuggestRequest, compiled_maximizer, hyperfit, suggest
from optserve.optimizers import acquisition as acq
from optserve.optimizers.feasible import feasible_space
from optserve.optimizers.gp import GaussianProcess
from optserve.optimizers.gp.fantasy import Fantasies
from optserve.optimizers.gp.model import matern52

from .spaces import unit_square

EXP = unit_square("noisy-ei")
NOISE_SD = 0.2


def _truth(x: np.ndarray) -> np.ndarray:
    return np.sin(5 * x[:, 0]) + np.cos(3 * x[:, 1])


def _noisy_gp(n: int = 40) -> GaussianProcess:
    rng = np.random.default_rng(5)
    x = rng.random((n, 2))
    y = _truth(x) + NOISE_SD * rng.standard_normal(n)
    return GaussianProcess(maxiter=60).fit(x, y, rng=rng)


def _exact_gp() -> GaussianProcess:
    rng = np.random.default_rng(5)
    x = rng.random((40, 2))
    return GaussianProcess(maxiter=60).fit(x, _truth(x), rng=rng)


def _fantasies(gp: GaussianProcess, seed: int = 3):
    return acq.noisy_fantasies(gp, gp.x_train, np.random.default_rng(seed))


def test_a_noisy_fit_gets_noisy_ei_and_an_exact_one_keeps_ei():
    noisy, exact = _noisy_gp(), _exact_gp()
    assert noisy.hyperparameters is not None and exact.hyperparameters is not None
    assert noisy.hyperparameters.noise > acq.NEI_MIN_NOISE > exact.hyperparameters.noise
    assert _fantasies(noisy) is not None
    assert _fantasies(exact) is None


def test_a_noiseless_belief_conditions_on_the_latent_value():
    gp = _noisy_gp()
    rows = gp.x_train[:3]
    latent = gp.believe(rows, noiseless=True).predict(rows)[1]
    noisy = gp.believe(rows).predict(rows)[1]
    before = gp.predict(rows)[1]
    # believed without noise the latent value is known there; with noise it is not
    assert np.all(latent < 1e-6 * before)
    assert np.all(noisy > 0.2 * before)


def test_each_draw_is_a_joint_draw_of_the_latent_values_and_its_incumbent_their_best():
    gp = _noisy_gp()
    fantasies = _fantasies(gp)
    assert fantasies is not None
    hyper = gp.hyperparameters
    assert hyper is not None
    n = len(gp.x_train)
    rows = fantasies.gp.x_train[n:]
    # only observations that may be the best, at most NEI_BASELINE of them
    assert 1 <= len(rows) < n and len(rows) <= acq.NEI_BASELINE
    # from scratch: the latent posterior at the baseline, and the draws through its factor
    x, ell, s = gp.x_train, hyper.lengthscales, hyper.outputscale
    k_xx = matern52(x, x, ell, s) + (hyper.noise + gp.jitter) * np.eye(n)
    k_xr = matern52(x, rows, ell, s)
    solved = np.linalg.solve(k_xx, k_xr)
    cov = matern52(rows, rows, ell, s) - k_xr.T @ solved
    mean = gp.predict(rows)[0]
    drawn = mean[:, None] + gp.y_std * np.linalg.cholesky(cov + 1e-10 * np.eye(len(rows))) @ (
        fantasies.draws
    )
    means, _ = fantasies.posterior(rows)
    np.testing.assert_allclose(means, drawn, atol=1e-3 * gp.y_std)
    np.testing.assert_allclose(fantasies.incumbents, drawn.max(axis=0), atol=1e-3 * gp.y_std)
    # the incumbent is uncertain: it differs between draws
    assert np.std(fantasies.incumbents) > 0.01 * gp.y_std


def test_noisy_ei_still_prefers_unexplored_promise_to_a_settled_bad_region():
    gp = _noisy_gp()
    fantasies = _fantasies(gp)
    assert fantasies is not None
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 41), np.linspace(0, 1, 41)), -1).reshape(-1, 2)
    scores = fantasies.log_ei(grid)
    assert np.all(np.isfinite(scores))
    # the truth's best quarter of the square scores above its worst quarter
    truth = _truth(grid)
    good = scores[truth >= np.quantile(truth, 0.75)]
    bad = scores[truth <= np.quantile(truth, 0.25)]
    assert np.median(good) > np.median(bad)


def test_the_compiled_kernel_scores_the_draws_as_numpy_does():
    gp = _noisy_gp()
    fantasies = _fantasies(gp)
    assert fantasies is not None and fantasies.compiled is not None
    reference = Fantasies(fantasies.gp, fantasies.observed, fantasies.draws, backend="numpy")
    reference.incumbents = fantasies.incumbents
    rows = np.random.default_rng(9).random((300, 2))
    means, var = fantasies.posterior(rows)
    want_means, want_var = reference.posterior(rows)
    np.testing.assert_allclose(means, want_means, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(var, want_var, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fantasies.log_ei(rows), reference.log_ei(rows), rtol=1e-9)
    # and the gradient (NumPy) climbs the compiled value
    for row in rows[:5]:
        value, _ = fantasies.log_ei_and_grad(row)
        assert abs(value - fantasies.log_ei(row[None, :])[0]) <= 1e-9 * (1 + abs(value))


def test_the_compiled_maximizer_maximizes_noisy_ei():
    gp = _noisy_gp()
    fantasies = _fantasies(gp)
    assert fantasies is not None and fantasies.compiled is not None
    space = feasible_space(EXP)
    found = compiled_maximizer.maximize_log_ei(
        space, fantasies.compiled, fantasies.incumbents, gp.x_train[:4], np.random.default_rng(1)
    )
    assert found is not None
    point, row, value = found
    assert space.is_feasible(point)
    # its value is noisy EI's, and no row of a dense grid scores higher
    assert abs(value - fantasies.log_ei(row[None, :])[0]) <= 1e-9 * (1 + abs(value))
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101)), -1).reshape(-1, 2)
    assert value >= np.max(fantasies.log_ei(grid)) - 1e-9
    # one incumbent per draw
    with pytest.raises(ValueError, match="incumbent"):
        compiled_maximizer.maximize_log_ei(
            space,
            fantasies.compiled,
            fantasies.incumbents[:3],
            gp.x_train[:4],
            np.random.default_rng(1),
        )


def test_a_point_observed_more_than_once_enters_the_baseline_once():
    rng = np.random.default_rng(5)
    x = rng.random((30, 2))
    x = np.vstack([x, x[:5], x[:5]])  # five points reported three times each
    y = _truth(x) + NOISE_SD * rng.standard_normal(len(x))
    gp = GaussianProcess(maxiter=60).fit(x, y, rng=rng)
    fantasies = _fantasies(gp)
    assert fantasies is not None
    baseline = fantasies.gp.x_train[len(x) :]
    assert len(np.unique(baseline, axis=0)) == len(baseline)
    # conditioned on each latent value once, the factor stays well conditioned
    assert np.abs(fantasies.weights).max() < 1e4
    reference = Fantasies(fantasies.gp, fantasies.observed, fantasies.draws, backend="numpy")
    reference.incumbents = fantasies.incumbents
    rows = np.random.default_rng(2).random((200, 2))
    np.testing.assert_allclose(fantasies.log_ei(rows), reference.log_ei(rows), rtol=1e-9)


def test_noisy_suggestions_are_reproducible_with_a_cold_cache():
    rng = np.random.default_rng(8)
    x = rng.random((30, 2))
    y = _truth(x) + NOISE_SD * rng.standard_normal(30)
    history = [
        Observation(f"o{i}", EXP.id, None, {"a": float(a), "b": float(b)}, [MetricValue("v", v)])
        for i, ((a, b), v) in enumerate(zip(x, y, strict=True))
    ]
    first = suggest(SuggestRequest(EXP, history, [], 2, len(history)))
    hyperfit.clear_cache()
    again = suggest(SuggestRequest(EXP, history, [], 2, len(history)))
    assert first == again
