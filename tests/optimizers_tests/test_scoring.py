"""The compiled acquisition kernel against the NumPy posterior and log EI."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from optserve import _sampler
from optserve.optimizers.gp import GaussianProcess, Hyperparameters
from optserve.optimizers.gp.scoring import AcquisitionScorer, Backend

MEAN_RTOL = 1e-9
VAR_RTOL = 1e-9
LOG_EI_RTOL = 1e-7


def _fitted(seed: int, n: int, dim: int, duplicates: int = 0) -> tuple[GaussianProcess, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, dim))
    if duplicates:
        x = np.vstack([x, x[rng.integers(n, size=duplicates)]])
    y = np.sin(3.0 * x).sum(axis=1) + 0.1 * rng.standard_normal(len(x))
    gp = GaussianProcess(maxiter=20).fit(x, y, rng=np.random.default_rng(seed))
    return gp, x


def _assert_backends_agree(gp: GaussianProcess, rows: np.ndarray, incumbent: float) -> None:
    rust = AcquisitionScorer(gp, incumbent)
    numpy = AcquisitionScorer(gp, incumbent, backend="numpy")
    mean_r, var_r = rust.predict(rows)
    mean_n, var_n = numpy.predict(rows)
    # Variances are a difference of O(outputscale) terms: the NumPy path's
    # |a|^2 + |b|^2 - 2 a.b distances lose ~eps * |x / l|^2 of it, so the
    # absolute part of the tolerance is relative to the prior variance.
    prior_var = gp.y_std**2 * gp.outputscale
    np.testing.assert_allclose(mean_r, mean_n, rtol=MEAN_RTOL, atol=1e-12 * gp.y_std)
    np.testing.assert_allclose(var_r, var_n, rtol=VAR_RTOL, atol=1e-12 * prior_var)
    log_ei_r, log_ei_n = rust.log_ei(rows), numpy.log_ei(rows)
    assert np.all(np.isfinite(log_ei_r))
    np.testing.assert_allclose(log_ei_r, log_ei_n, rtol=LOG_EI_RTOL, atol=1e-12)


@pytest.mark.parametrize(("seed", "n", "dim"), [(0, 1, 1), (1, 2, 3), (2, 12, 2), (3, 40, 5)])
def test_rust_matches_numpy_on_random_fitted_gps(seed: int, n: int, dim: int) -> None:
    gp, x = _fitted(seed, n, dim)
    rng = np.random.default_rng(100 + seed)
    incumbent = float(np.max(gp.predict(x)[0]))
    rows = np.vstack([rng.random((37, dim)), x])  # training points among the candidates
    _assert_backends_agree(gp, rows, incumbent)


def test_many_points_several_blocks() -> None:
    gp, x = _fitted(4, 150, 8)
    rows = np.random.default_rng(5).random((203, 8))
    _assert_backends_agree(gp, rows, float(np.max(gp.predict(x)[0])))


def test_duplicate_training_points_and_candidates_on_them() -> None:
    gp, x = _fitted(6, 20, 3, duplicates=10)
    rows = np.vstack([x, x[:5], np.random.default_rng(7).random((9, 3))])
    _assert_backends_agree(gp, rows, float(np.max(gp.predict(x)[0])))


def test_far_away_candidates_have_finite_log_ei() -> None:
    gp, x = _fitted(8, 25, 4)
    incumbent = float(np.max(gp.predict(x)[0]))
    rows = np.vstack([np.full((1, 4), 50.0), np.full((1, 4), -1e3), x[:1] + 3.0])
    _assert_backends_agree(gp, rows, incumbent)
    # far below the incumbent too: the mean is y_mean, the stddev the prior's
    scores = AcquisitionScorer(gp, incumbent + 1e3 * gp.y_std).log_ei(rows)
    assert np.all(np.isfinite(scores))
    reference = AcquisitionScorer(gp, incumbent + 1e3 * gp.y_std, backend="numpy").log_ei(rows)
    np.testing.assert_allclose(scores, reference, rtol=LOG_EI_RTOL)


def test_incumbents_across_the_log_ei_regimes() -> None:
    gp, _ = _fitted(9, 30, 2)
    rows = np.random.default_rng(10).random((50, 2))
    mean, var = gp.predict(rows)
    sd = np.sqrt(var)
    # z = (mean - best) / sd spans the direct, erfcx and asymptotic regimes
    for z in (5.0, 0.0, -0.9, -1.0, -1.5, -3.0, -20.0, -39.0, -40.0, -99.0, -101.0, -1e4):
        best = float(np.median(mean - z * sd))
        _assert_backends_agree(gp, rows, best)


def test_no_data_gives_the_prior() -> None:
    gp = GaussianProcess().fit(np.zeros((0, 3)), np.zeros(0))
    rows = np.random.default_rng(11).random((4, 3))
    _assert_backends_agree(gp, rows, 0.5)


def test_constant_outcomes_and_a_hand_set_posterior() -> None:
    x = np.array([[0.1, 0.2], [0.5, 0.9], [0.8, 0.3]])
    gp = GaussianProcess().condition(
        x, np.full(3, 2.0), Hyperparameters(np.array([0.3, 0.7]), 1.5, 1e-6)
    )
    _assert_backends_agree(gp, np.vstack([x, [[0.3, 0.3]]]), 2.0)


@pytest.mark.parametrize("backend", ["rust", "numpy"])
def test_bad_candidates_raise_value_error(backend: Backend) -> None:
    gp, _ = _fitted(12, 10, 3)
    scorer = AcquisitionScorer(gp, 0.0, backend=backend)
    with pytest.raises(ValueError):
        scorer.log_ei(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        scorer.log_ei(np.zeros(3))
    with pytest.raises(ValueError):
        scorer.log_ei(np.array([[0.1, np.nan, 0.2]]))
    with pytest.raises(ValueError):
        scorer.predict(np.array([[0.1, np.inf, 0.2]]))
    with pytest.raises(ValueError):
        AcquisitionScorer(gp, float("nan"), backend=backend)


def test_the_kernel_rejects_inconsistent_factors() -> None:
    gp, _ = _fitted(13, 6, 2)
    rows = np.random.default_rng(14).random((5, 2))
    args: dict[str, Any] = {
        "x_train": gp.x_train,
        "alpha": gp.alpha,
        "chol": np.ascontiguousarray(gp.chol),
        "lengthscales": gp.lengthscales,
        "outputscale": gp.outputscale,
        "y_mean": gp.y_mean,
        "y_std": gp.y_std,
    }
    good = _sampler.score_log_ei(rows, **args, incumbent=0.0)
    assert good.shape == (5,)
    # a Fortran-ordered factor (as LAPACK returns it) gives the same scores
    fortran = {**args, "chol": np.asfortranarray(gp.chol)}
    np.testing.assert_array_equal(
        _sampler.score_log_ei(rows, **fortran, incumbent=0.0),
        good,
    )
    bad_cases: list[dict[str, Any]] = [
        {"alpha": gp.alpha[:-1]},
        {"x_train": gp.x_train[:, :1]},
        {"chol": np.ascontiguousarray(gp.chol[:-1])},
        {"lengthscales": -gp.lengthscales},
        {"alpha": np.full_like(gp.alpha, np.nan)},
        {"chol": np.zeros_like(gp.chol)},
        {"outputscale": 0.0},
        {"y_std": float("nan")},
    ]
    for change in bad_cases:
        with pytest.raises(ValueError):
            _sampler.score_log_ei(rows, **{**args, **change}, incumbent=0.0)
        with pytest.raises(ValueError):
            _sampler.gp_posterior(rows, **{**args, **change})
    with pytest.raises(ValueError):
        _sampler.score_log_ei(rows, **args, incumbent=float("inf"))


def _factors(gp: GaussianProcess) -> tuple[Any, ...]:
    """The positional arguments of ``_sampler.GpScorer`` for ``gp``."""
    return (
        gp.x_train,
        gp.alpha,
        np.ascontiguousarray(gp.chol),
        gp.lengthscales,
        gp.outputscale,
        gp.y_mean,
        gp.y_std,
    )


def test_the_prepared_scorer_gives_what_the_functions_give() -> None:
    gp, _ = _fitted(9, 60, 4)
    factors = _factors(gp)
    scorer = _sampler.GpScorer(*factors)
    assert scorer.dim == 4
    rng = np.random.default_rng(10)
    for k in (1, 16, 45):
        rows = rng.random((k, 4))
        mean, var = scorer.posterior(rows)
        want_mean, want_var = _sampler.gp_posterior(rows, *factors)
        np.testing.assert_array_equal(mean, want_mean)
        np.testing.assert_array_equal(var, want_var)
        np.testing.assert_array_equal(
            scorer.log_ei(rows, 0.3), _sampler.score_log_ei(rows, *factors, 0.3)
        )
    with pytest.raises(ValueError, match="candidates"):
        scorer.log_ei(rng.random((3, 5)), 0.3)
    with pytest.raises(ValueError, match="incumbent"):
        scorer.log_ei(rng.random((3, 4)), math.nan)
    bad = np.ascontiguousarray(gp.chol).copy()
    bad[0, 0] = 0.0
    with pytest.raises(ValueError, match="chol"):
        _sampler.GpScorer(gp.x_train, gp.alpha, bad, *factors[3:])


def test_a_scorer_with_several_means_checks_them_and_averages_ei() -> None:
    gp, _ = _fitted(9, 30, 4)
    scorer = _sampler.GpScorer(*_factors(gp))
    shifts = np.random.default_rng(3).normal(0.0, 0.1, (30, 3))
    several = scorer.with_means(gp.alpha[:, None] + shifts)
    assert (scorer.means, several.means) == (1, 3)
    rows = np.random.default_rng(4).random((12, 4))
    means, var = several.posterior(rows)
    assert means.shape == (12, 3)
    np.testing.assert_array_equal(var, scorer.posterior(rows)[1])
    incumbents = np.array([0.1, 0.2, 0.3])
    per = [
        scorer.with_means(gp.alpha[:, None] + shifts[:, [j]]).log_ei(rows, float(incumbents[j]))
        for j in range(3)
    ]
    want = np.log(np.mean(np.exp(per), axis=0))
    np.testing.assert_allclose(several.log_ei(rows, incumbents), want, rtol=1e-9)
    for bad in (np.zeros((29, 3)), np.zeros((30, 0)), np.full((30, 2), np.nan)):
        with pytest.raises(ValueError, match="weights"):
            scorer.with_means(bad)
    for wrong in (0.1, [0.1, 0.2], [0.1, 0.2, math.inf]):
        with pytest.raises(ValueError, match="incumbent"):
            several.log_ei(rows, wrong)


def test_a_mixture_scorer_checks_its_groups_and_scales() -> None:
    gp, _ = _fitted(15, 20, 3)
    factors = _factors(gp)
    groups = [[0], [1, 2]]
    train_scales = np.full((20, 3), 1.0 / np.sqrt(3.0))
    scorer = _sampler.GpScorer(*factors, groups=groups, train_scales=train_scales)
    rows = np.random.default_rng(16).random((7, 3))
    scales = np.full((7, 3), 1.0 / np.sqrt(3.0))
    mean, var = scorer.posterior(rows, scales)
    assert mean.shape == var.shape == (7,) and np.all(var > 0)
    assert scorer.log_ei(rows, 0.0, scales).shape == (7,)
    for bad in (None, scales[:-1], -scales, np.full((7, 2), 0.5)):
        with pytest.raises(ValueError):
            scorer.log_ei(rows, 0.0, bad)
    with pytest.raises(ValueError):  # scales without a mixture
        _sampler.GpScorer(*factors).posterior(rows, scales)
    for kwargs in (
        {"groups": groups},
        {"train_scales": train_scales},
        {"groups": [[0], [3]], "train_scales": train_scales},
        {"groups": [[]], "train_scales": train_scales[:, :2]},
        {"groups": [[1, 1]], "train_scales": train_scales[:, :2]},
        {"groups": groups, "train_scales": train_scales[:-1]},
        {"groups": groups, "train_scales": np.full((20, 3), np.nan)},
    ):
        with pytest.raises(ValueError):
            _sampler.GpScorer(*factors, **kwargs)
    # the compiled maximizer refuses a mixture: it could not map its candidates
    space = _sampler.SearchSpace([None, None, None], [])
    with pytest.raises(ValueError, match="mixture"):
        _sampler.maximize_log_ei(scorer, 0.0, space, np.zeros((0, 3)), seed=1)
