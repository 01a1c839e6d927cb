"""The GP model and the log expected improvement of the Bayesian optimizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from optserve.optimizers.gp import GaussianProcess, Hyperparameters, log_expected_improvement
from optserve.optimizers.gp.model import (
    _Tying,
    log_marginal_likelihood_and_grad,
    log_posterior_and_grad,
    log_prior_and_grad,
    matern52,
)


def _matern52_by_hand(a: np.ndarray, b: np.ndarray, lengthscales: np.ndarray, s: float) -> float:
    r = math.sqrt(float(np.sum(((a - b) / lengthscales) ** 2)))
    u = math.sqrt(5.0) * r
    return s * (1.0 + u + u * u / 3.0) * math.exp(-u)


def test_posterior_matches_a_hand_computed_case() -> None:
    x = np.array([[0.1, 0.2], [0.5, 0.9], [0.8, 0.3]])
    y = np.array([1.0, 3.0, 2.0])
    hyper = Hyperparameters(np.array([0.3, 0.7]), outputscale=1.5, noise=0.01)
    known = np.array([0.0, 0.5, 0.0])  # raw units: y_std^2 = 2/3
    gp = GaussianProcess().condition(x, y, hyper, known_noise=known)

    xc = np.array([[0.3, 0.3], [0.5, 0.9], [0.9, 0.0]])
    mean, var = gp.predict(xc)

    y_mean, y_std = y.mean(), y.std()
    ys = (y - y_mean) / y_std
    k = np.array([[_matern52_by_hand(a, b, hyper.lengthscales, 1.5) for b in x] for a in x])
    k += np.diag(0.01 + known / y_std**2)
    kc = np.array([[_matern52_by_hand(a, b, hyper.lengthscales, 1.5) for b in x] for a in xc])
    k_inv = np.linalg.inv(k)
    np.testing.assert_allclose(mean, y_mean + y_std * kc @ k_inv @ ys, rtol=1e-10)
    expected_var = y_std**2 * (1.5 - np.einsum("ij,jk,ik->i", kc, k_inv, kc))
    np.testing.assert_allclose(var, expected_var, rtol=1e-10)

    # The exported factors reproduce the prediction by the documented formulas.
    cross = matern52(gp.x_train, xc, gp.lengthscales, gp.outputscale)
    np.testing.assert_allclose(gp.chol @ gp.chol.T, k, rtol=1e-12)
    np.testing.assert_allclose(gp.y_mean + gp.y_std * cross.T @ gp.alpha, mean, rtol=1e-12)


@pytest.mark.parametrize("with_known_noise", [False, True])
def test_analytic_gradient_matches_finite_differences(with_known_noise: bool) -> None:
    rng = np.random.default_rng(3)
    n, dim = 25, 3
    x = rng.random((n, dim))
    y = rng.standard_normal(n)
    known = rng.random(n) * 0.1 if with_known_noise else None
    theta = np.concatenate([rng.normal(-1.0, 0.5, dim), [0.3, -4.0]])

    for function in (log_marginal_likelihood_and_grad, log_posterior_and_grad):
        _, grad = function(theta, x, y, known)
        step = 1e-5
        numeric = np.array(
            [
                (
                    function(theta + step * e, x, y, known)[0]
                    - function(theta - step * e, x, y, known)[0]
                )
                / (2 * step)
                for e in np.eye(dim + 2)
            ]
        )
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_noiseless_fit_interpolates_the_training_points() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((20, 2))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2
    gp = GaussianProcess().fit(x, y)
    mean, var = gp.predict(x)
    np.testing.assert_allclose(mean, y, atol=1e-2 * y.std())
    assert np.all(var < 1e-2 * y.var())


def test_sin_in_one_dimension_predicts_held_out_points() -> None:
    x = np.linspace(0.0, 1.0, 12)[:, None]
    gp = GaussianProcess().fit(x, np.sin(6 * x[:, 0]))
    held_out = np.linspace(0.02, 0.98, 50)[:, None]
    mean, _ = gp.predict(held_out)
    assert np.max(np.abs(mean - np.sin(6 * held_out[:, 0]))) < 0.1


def _assert_sane(gp: GaussianProcess, dim: int, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    xc = np.random.default_rng(9).random((k, dim))
    mean, var = gp.predict(xc)
    assert mean.shape == (k,) and var.shape == (k,)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var > 0)
    return mean, var


def test_constant_outcomes() -> None:
    x = np.random.default_rng(1).random((10, 3))
    gp = GaussianProcess().fit(x, np.full(10, 4.2))
    mean, _ = _assert_sane(gp, 3)
    np.testing.assert_allclose(mean, 4.2)
    assert gp.y_std == 1.0


def test_outcomes_in_tiny_units_are_not_constant() -> None:
    """Constant means constant up to rounding relative to the values themselves."""
    rng = np.random.default_rng(1)
    x = rng.random((12, 2))
    y = np.sin(4 * x[:, 0]) + x[:, 1]
    unit, tiny = GaussianProcess().fit(x, y), GaussianProcess().fit(x, 1e-20 * y)
    assert tiny.y_std == pytest.approx(1e-20 * np.std(y))
    rows = rng.random((5, 2))
    np.testing.assert_allclose(tiny.predict(rows)[0], 1e-20 * unit.predict(rows)[0], rtol=1e-6)


def test_far_from_the_data_the_worst_mean_predicts_the_worst_output() -> None:
    """The constant mean is the prior's prediction where no observation reaches:
    the outputs' average by default, their smallest value with ``worst_mean``;
    at the observations both interpolate."""
    rng = np.random.default_rng(3)
    x = 0.1 * rng.random((12, 2))  # one corner of the square
    y = np.sin(20 * x[:, 0]) + 10 * x[:, 1]
    hyper = Hyperparameters(np.array([0.05, 0.05]), 1.0, 1e-6)
    average = GaussianProcess().condition(x, y, hyper)
    worst = GaussianProcess(worst_mean=True).condition(x, y, hyper)
    far = np.array([[0.9, 0.9]])
    assert average.predict(far)[0][0] == pytest.approx(np.mean(y))
    assert worst.predict(far)[0][0] == pytest.approx(np.min(y))
    np.testing.assert_allclose(worst.predict(x)[0], y, atol=1e-3)
    np.testing.assert_allclose(average.predict(x)[0], y, atol=1e-3)
    # believed points keep the model's mean
    believing = worst.believe(far)
    assert believing.worst_mean and believing.y_mean == worst.y_mean


def test_duplicated_points() -> None:
    x = np.repeat(np.random.default_rng(2).random((4, 2)), 5, axis=0)
    y = np.repeat([1.0, 2.0, 0.5, 3.0], 5) + np.tile([0.0, 0.0, 1e-3, 0.0, -1e-3], 4)
    gp = GaussianProcess().fit(x, y)
    mean, _ = _assert_sane(gp, 2)
    assert y.min() - 2 <= mean.min() and mean.max() <= y.max() + 2
    at_points, _ = gp.predict(x[::5])
    np.testing.assert_allclose(at_points, [1.0, 2.0, 0.5, 3.0], atol=0.05)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_handful_of_points(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.random((n, 4))
    y = rng.standard_normal(n)
    gp = GaussianProcess().fit(x, y)
    _assert_sane(gp, 4)
    mean, _ = gp.predict(x)
    np.testing.assert_allclose(mean, y, atol=0.1 * max(1.0, float(np.ptp(y))))


def test_non_finite_rows_are_dropped_and_no_data_gives_the_prior() -> None:
    x = np.array([[0.1, 0.2], [np.nan, 0.5], [0.7, 0.7]])
    y = np.array([1.0, 2.0, np.inf])
    gp = GaussianProcess().fit(x, y, known_noise=[np.nan, -1.0, 0.1])
    assert gp.x_train.shape == (1, 2)
    _assert_sane(gp, 2)
    empty = GaussianProcess().fit(np.zeros((0, 3)), np.zeros(0))
    mean, var = _assert_sane(empty, 3)
    np.testing.assert_allclose(mean, 0.0)
    np.testing.assert_allclose(var, empty.outputscale)


def test_many_points_in_ten_dimensions_with_warm_start() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((1500, 10))
    w = rng.normal(size=10)
    y = np.sin(x @ w) + 0.05 * rng.standard_normal(1500)
    gp = GaussianProcess(max_fit_points=200, maxiter=20).fit(
        x, y, known_noise=np.full(1500, 0.05**2)
    )
    assert gp.x_train.shape == (1500, 10)
    hyper = gp.hyperparameters
    assert hyper is not None and hyper.is_finite()
    refit = GaussianProcess(max_fit_points=200, maxiter=20).fit(x, y, warm_start=hyper)
    mean, _ = _assert_sane(refit, 10, k=200)
    truth = np.sin(np.random.default_rng(9).random((200, 10)) @ w)
    assert np.corrcoef(mean, truth)[0, 1] > 0.9


def test_a_bad_warm_start_is_ignored() -> None:
    x = np.random.default_rng(5).random((8, 2))
    y = x.sum(axis=1)
    bad = Hyperparameters(np.array([np.nan, 1.0]), 1.0, 1e-3)
    _assert_sane(GaussianProcess().fit(x, y, warm_start=bad), 2)
    wrong_dim = Hyperparameters(np.ones(5), 1.0, 1e-3)
    _assert_sane(GaussianProcess().fit(x, y, warm_start=wrong_dim), 2)


def _categorical_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A double column and four one-hot columns; only the first value matters."""
    values = rng.integers(0, 4, n)
    x = np.column_stack([rng.random(n), np.eye(4)[values]])
    y = np.sin(6.0 * x[:, 0]) + 1.5 * (values == 0)
    return x, y


def test_the_length_scale_prior_is_normal_at_its_median_with_steeper_tails() -> None:
    dim = 4
    medians = Hyperparameters.default(dim).to_log_params()
    at_median, grad = log_prior_and_grad(medians)
    assert at_median == pytest.approx(0.0, abs=1e-20)
    np.testing.assert_allclose(grad, np.zeros(dim + 2), atol=1e-12)
    for z, normal in ((0.01, -0.5e-4), (2.0, -2.0), (3.0, -4.5)):
        for sign in (1.0, -1.0):
            theta = medians.copy()
            theta[1] += sign * z  # one length scale, z prior scales from its median
            value = log_prior_and_grad(theta)[0]
            if z < 0.1:
                assert value == pytest.approx(normal, rel=1e-3)  # the normal's curvature
            else:
                assert value < 3.0 * normal  # far steeper tails
    # the outputscale and the noise keep their normal priors (scales 1 and 2)
    theta = medians.copy()
    theta[dim] += 2.0
    theta[dim + 1] -= 4.0
    assert log_prior_and_grad(theta)[0] == pytest.approx(-4.0)


def test_a_categorical_length_scale_keeps_the_normal_prior() -> None:
    tying = _Tying(np.array([0, 1, 1, 1, 4]), 5)  # a categorical's columns 1-3
    medians = tying.reduce(Hyperparameters.default(5).to_log_params())
    for index, steep in ((0, True), (1, False), (2, True)):
        free = medians.copy()
        free[index] += 2.0
        value = tying.log_prior_and_grad(free)[0]
        assert value < -6.0 if steep else value == pytest.approx(-2.0)


def test_the_prior_gradient_matches_finite_differences_with_and_without_groups() -> None:
    rng = np.random.default_rng(5)
    theta = Hyperparameters.default(5).to_log_params() + rng.normal(0.0, 1.5, 7)
    tying = _Tying(np.array([0, 1, 1, 1, 4]), 5)
    free = tying.reduce(theta)
    step = 1e-6
    for function, point in ((log_prior_and_grad, theta), (tying.log_prior_and_grad, free)):
        _, grad = function(point)
        numeric = [
            (function(point + step * e)[0] - function(point - step * e)[0]) / (2 * step)
            for e in np.eye(len(point))
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_tying_without_groups_is_the_identity() -> None:
    tying = _Tying(None, 3)
    theta = np.array([-0.3, 0.2, 1.7, -0.5, -6.0])
    assert np.array_equal(tying.expand(theta), theta)
    assert np.array_equal(tying.reduce(theta), theta)
    assert np.array_equal(tying.pull_back(theta), theta)


def test_tying_shares_one_length_scale_per_group() -> None:
    tying = _Tying(np.array([0, 1, 1, 1, 4]), 5)
    free = np.array([0.1, 0.2, 0.3, 0.4, 0.5])  # 3 length scales, outputscale, noise
    np.testing.assert_array_equal(tying.expand(free), [0.1, 0.2, 0.2, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(
        tying.reduce(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])), [1.0, 3.0, 5.0, 6.0, 7.0]
    )
    with pytest.raises(ValueError, match="length_scale_groups has 2 columns, x has D=5"):
        _Tying(np.array([0, 1]), 5)


def test_the_tied_gradient_is_the_derivative_in_the_free_parameters() -> None:
    rng = np.random.default_rng(11)
    x, y = _categorical_data(20, rng)
    tying = _Tying(np.array([0, 1, 1, 1, 1]), 5)
    free = np.array([-1.0, 0.4, 0.2, -5.0])
    _, grad = log_marginal_likelihood_and_grad(tying.expand(free), x, y)
    step = 1e-6
    for i in range(len(free)):
        e = np.zeros(len(free))
        e[i] = step
        up, _ = log_marginal_likelihood_and_grad(tying.expand(free + e), x, y)
        down, _ = log_marginal_likelihood_and_grad(tying.expand(free - e), x, y)
        assert tying.pull_back(grad)[i] == pytest.approx((up - down) / (2 * step), rel=1e-5)


def test_a_fit_with_groups_gives_a_group_one_length_scale() -> None:
    x, y = _categorical_data(24, np.random.default_rng(12))
    groups = np.array([0, 1, 1, 1, 1])
    tied = GaussianProcess(length_scale_groups=groups).fit(x, y).lengthscales
    assert np.all(tied[1:] == tied[1])
    _assert_sane(GaussianProcess(length_scale_groups=groups).fit(x, y), 5)
    # one value matters: per-value length scales tell it from the others
    free = GaussianProcess().fit(x, y).lengthscales
    assert np.ptp(np.log(free[1:])) > 0.1
    # groups of one column each are the fit without groups, to the bit
    alone = GaussianProcess(length_scale_groups=np.arange(5)).fit(x, y)
    assert np.array_equal(alone.lengthscales, free)
    # the believer keeps the groups
    believing = GaussianProcess(length_scale_groups=groups).fit(x, y).believe(x[:2] + 0.01)
    assert believing.length_scale_groups is groups


def test_log_ei_matches_the_closed_form() -> None:
    z = np.linspace(-5.0, 5.0, 1001)
    std = np.full_like(z, 0.7)
    best = 2.0
    mean = best + z * std
    closed = std * (z * stats.norm.cdf(z) + stats.norm.pdf(z))
    np.testing.assert_allclose(log_expected_improvement(mean, std, best), np.log(closed), rtol=1e-9)


def test_log_ei_is_finite_and_increasing_far_below_the_incumbent() -> None:
    z = -np.logspace(4, -3, 20001)  # from -1e4 up to -1e-3
    z = np.concatenate([z, np.linspace(0.0, 50.0, 1001)])
    log_ei = log_expected_improvement(z, 1.0, 0.0)
    assert np.all(np.isfinite(log_ei))
    assert np.all(np.diff(log_ei) > 0)
    # The asymptote h(z) ~ phi(z) / z^2 far from the incumbent.
    far = -1e4
    expected = -0.5 * far**2 - 0.5 * math.log(2 * math.pi) - 2 * math.log(-far)
    assert log_expected_improvement(far, 1.0, 0.0) == pytest.approx(expected, rel=1e-12)


def test_log_ei_with_zero_stddev() -> None:
    log_ei = log_expected_improvement(np.array([3.0, -3.0]), np.array([0.0, 0.0]), 1.0)
    assert log_ei[0] == pytest.approx(math.log(2.0))
    assert np.isfinite(log_ei[1]) and log_ei[1] < -1e6


def test_log_ei_gradient_matches_finite_differences():
    from optserve.optimizers.gp.gradient import log_ei_and_grad

    rng = np.random.default_rng(5)
    x = rng.random((25, 3))
    y = np.sin(5 * x[:, 0]) + x[:, 1] ** 2 - x[:, 2]
    gp = GaussianProcess().fit(x, y)
    incumbent = float(y.max())
    for point in rng.random((5, 3)):
        value, grad = log_ei_and_grad(gp, point, incumbent)
        mean, var = gp.predict(point[None, :])
        assert value == pytest.approx(
            float(log_expected_improvement(mean, np.sqrt(var), incumbent)[0]), rel=1e-9, abs=1e-9
        )
        h = 1e-6
        numeric = [
            (
                log_ei_and_grad(gp, point + h * e, incumbent)[0]
                - log_ei_and_grad(gp, point - h * e, incumbent)[0]
            )
            / (2 * h)
            for e in np.eye(3)
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_believing_points_keeps_the_mean_and_gives_the_joint_posterior() -> None:
    rng = np.random.default_rng(12)
    x = rng.random((30, 3))
    y = np.sin(4.0 * x).sum(axis=1)
    known = rng.random(30) * 0.01
    gp = GaussianProcess(maxiter=30).fit(x, y, known_noise=known, rng=np.random.default_rng(0))
    pending = np.vstack([rng.random((3, 3)), x[:1]])  # one of them on a training point
    believing = gp.believe(pending)
    xc = rng.random((25, 3))

    mean, var = believing.predict(xc)
    np.testing.assert_allclose(mean, gp.predict(xc)[0], rtol=1e-9, atol=1e-9)
    # The posterior of the joint covariance, built directly.
    hyper = gp.hyperparameters
    assert hyper is not None
    both = np.vstack([x, pending])
    k = matern52(both, both, hyper.lengthscales, hyper.outputscale)
    diag = np.concatenate([known / gp.y_std**2, np.zeros(len(pending))])
    k += np.diag(hyper.noise + gp.jitter + diag)
    kc = matern52(both, xc, hyper.lengthscales, hyper.outputscale)
    expected = hyper.outputscale - np.einsum("ij,ij->j", kc, np.linalg.solve(k, kc))
    np.testing.assert_allclose(var, gp.y_std**2 * np.maximum(expected, 1e-12), rtol=1e-6)
    assert np.all(var <= gp.predict(xc)[1] * (1 + 1e-12))
    assert gp.believe(np.empty((0, 3))) is gp


def test_the_mean_alone_is_the_mean_of_predict() -> None:
    rng = np.random.default_rng(13)
    x = rng.random((40, 2))
    gp = GaussianProcess(maxiter=20).fit(x, np.cos(5.0 * x[:, 0]), rng=rng)
    xc = rng.random((17, 2))
    np.testing.assert_allclose(gp.mean(xc), gp.predict(xc)[0], rtol=1e-12, atol=1e-12)
