"""The compiled sampler: feasibility, uniformity, reproducibility, errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from optserve import _sampler

from .reference import hit_and_run as reference_hit_and_run

INF = np.inf
METHODS = ["coordinate", "random"]
SEEDS = [0, 1, 2]
ALPHA = 1e-3


def triangle() -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """x, y >= 0, x + y <= 1; marginal of x has CDF 1 - (1 - x)^2."""
    return (np.array([[1.0, 1.0]]), np.array([1.0]), np.zeros(2), np.full(2, INF), np.full(2, 0.25))


def simplex(d: int) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """x >= 0, sum x <= 1; each marginal is Beta(1, d)."""
    return (np.ones((1, d)), np.array([1.0]), np.zeros(d), np.full(d, INF), np.full(d, 0.5 / d))


def slab_box() -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """[0, 1]^2 cut by the slab 0.5 <= x + y <= 1."""
    a = np.array([[1.0, 1.0], [-1.0, -1.0]])
    return (a, np.array([1.0, -0.5]), np.zeros(2), np.ones(2), np.array([0.4, 0.35]))


def slab_box_cdf(x: NDArray) -> NDArray:
    x = np.clip(x, 0.0, 1.0)
    low = 0.5 * x / 0.375
    high = (0.25 + x - x**2 / 2 - 0.375) / 0.375
    return np.where(x <= 0.5, low, high)


def run(problem, n, *, thin, method="coordinate", seed=0, burn_in=200, n_chains=1):
    a, b, lo, hi, x0 = problem
    return _sampler.hit_and_run(
        a, b, lo, hi, x0, n, burn_in=burn_in, thin=thin, n_chains=n_chains, method=method, seed=seed
    )


def assert_feasible(problem, x: NDArray) -> None:
    a, b, lo, hi, _ = problem
    assert np.all(np.isfinite(x))
    assert np.all(x >= lo) and np.all(x <= hi)
    assert np.all(x @ a.T <= b + 1e-9)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", SEEDS)
def test_triangle_marginals(method: str, seed: int) -> None:
    x = run(triangle(), 2000, thin=20, method=method, seed=seed)
    assert_feasible(triangle(), x)
    for k in range(2):
        assert stats.kstest(x[:, k], lambda t: 1 - (1 - np.clip(t, 0, 1)) ** 2).pvalue > ALPHA


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", SEEDS)
def test_simplex_marginals(method: str, seed: int) -> None:
    d = 4
    x = run(simplex(d), 2000, thin=10 * d, method=method, seed=seed, n_chains=4)
    assert_feasible(simplex(d), x)
    for k in range(d):
        assert stats.kstest(x[:, k], stats.beta(1, d).cdf).pvalue > ALPHA
    # The slack 1 - sum(x) is one more Beta(1, d) coordinate.
    assert stats.kstest(1 - x.sum(axis=1), stats.beta(1, d).cdf).pvalue > ALPHA


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", SEEDS)
def test_slab_box_marginals(method: str, seed: int) -> None:
    x = run(slab_box(), 2000, thin=20, method=method, seed=seed)
    assert_feasible(slab_box(), x)
    for k in range(2):
        assert stats.kstest(x[:, k], slab_box_cdf).pvalue > ALPHA
    s = x.sum(axis=1)
    assert stats.kstest(s, lambda t: (np.clip(t, 0.5, 1) ** 2 - 0.25) / 0.75).pvalue > ALPHA


@pytest.mark.parametrize("method", METHODS)
def test_agrees_with_numpy_reference(method: str) -> None:
    problem = slab_box()
    a, b, lo, hi, x0 = problem
    ref = reference_hit_and_run(a, b, lo, hi, x0, 1500, burn_in=100, thin=10, method=method, seed=5)
    assert_feasible(problem, ref)
    fast = run(problem, 1500, thin=10, method=method, seed=5, burn_in=100)
    for k in range(2):
        assert stats.ks_2samp(ref[:, k], fast[:, k]).pvalue > ALPHA


@pytest.mark.parametrize("method", METHODS)
def test_reproducible_and_seed_dependent(method: str) -> None:
    x1 = run(simplex(5), 300, thin=3, method=method, seed=11, n_chains=3)
    x2 = run(simplex(5), 300, thin=3, method=method, seed=11, n_chains=3)
    x3 = run(simplex(5), 300, thin=3, method=method, seed=12, n_chains=3)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (300, 5) and x1.dtype == np.float64


def test_zero_samples_and_box_only() -> None:
    x = run(triangle(), 0, thin=1)
    assert x.shape == (0, 2)
    box = (np.zeros((0, 3)), np.zeros(0), -np.ones(3), np.ones(3), np.zeros(3))
    x = run(box, 3000, thin=3)
    assert_feasible(box, x)
    assert stats.kstest(x[:, 0], stats.uniform(-1, 2).cdf).pvalue > ALPHA


def test_many_steps_stay_feasible() -> None:
    """Long chains (many slack resyncs) on a dense, badly scaled system."""
    rng = np.random.default_rng(3)
    d, m = 30, 60
    a = rng.normal(size=(m, d)) * rng.lognormal(0, 2, size=(m, 1))
    b = a @ np.full(d, 0.5) + 1e-3 * np.abs(a).sum(axis=1)
    problem = (a, b, np.zeros(d), np.ones(d), np.full(d, 0.5))
    for method in METHODS:
        x = run(problem, 5000, thin=d, method=method, seed=1)
        assert_feasible(problem, x)


# ---- integer lattice -------------------------------------------------------


def run_int(a, b, lo, hi, z0, n, *, thin=2, burn_in=20, seed=0, n_chains=1):
    return _sampler.hit_and_run_int(
        np.asarray(a, dtype=np.float64),
        np.asarray(b, dtype=np.float64),
        np.asarray(lo, dtype=np.int64),
        np.asarray(hi, dtype=np.int64),
        np.asarray(z0, dtype=np.int64),
        n,
        burn_in=burn_in,
        thin=thin,
        n_chains=n_chains,
        seed=seed,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_int_triangle_visits_every_point_uniformly(seed: int) -> None:
    z = run_int([[1, 1]], [4], [0, 0], [10, 10], [0, 0], 15000, thin=4, seed=seed, n_chains=3)
    assert z.dtype == np.int64
    assert np.all(z >= 0) and np.all(z.sum(axis=1) <= 4)
    points, counts = np.unique(z, axis=0, return_counts=True)
    assert len(points) == 15
    assert stats.chisquare(counts).pvalue > ALPHA


def test_int_general_system_exact() -> None:
    a = [[3, -5, 0], [1, 1, 1], [-2, 0, 1]]
    b = [0, 12, 3]
    z = run_int(a, b, [0, 0, -3], [10, 10, 10], [0, 0, 0], 5000, thin=3, seed=4)
    assert np.all(z @ np.asarray(a).T <= b)
    assert np.all(z >= [0, 0, -3]) and np.all(z <= 10)
    # Brute force: every lattice point is reached.
    grid = np.stack(np.meshgrid(range(11), range(11), range(-3, 11), indexing="ij"), -1).reshape(
        -1, 3
    )
    feasible = grid[np.all(grid @ np.asarray(a).T <= b, axis=1)]
    assert len(np.unique(z, axis=0)) == len(feasible)


def test_int_reproducible() -> None:
    z1 = run_int([[1, 1]], [4], [0, 0], [4, 4], [0, 0], 100, seed=3)
    z2 = run_int([[1, 1]], [4], [0, 0], [4, 4], [0, 0], 100, seed=3)
    z3 = run_int([[1, 1]], [4], [0, 0], [4, 4], [0, 0], 100, seed=4)
    np.testing.assert_array_equal(z1, z2)
    assert not np.array_equal(z1, z3)


# ---- bad input -------------------------------------------------------------

A, B, LO, HI, X0 = triangle()
KW = {"burn_in": 1, "thin": 1}

BAD_CONTINUOUS = [
    ("lo", lambda: _sampler.hit_and_run(np.ones((1, 3)), B, LO, HI, X0, 5, **KW)),
    ("b", lambda: _sampler.hit_and_run(A, np.ones(2), LO, HI, X0, 5, **KW)),
    ("lo", lambda: _sampler.hit_and_run(A, B, np.zeros(3), HI, X0, 5, **KW)),
    ("hi", lambda: _sampler.hit_and_run(A, B, LO, np.ones(1), X0, 5, **KW)),
    ("x0", lambda: _sampler.hit_and_run(A, B, LO, HI, np.ones(3), 5, **KW)),
    ("x0", lambda: _sampler.hit_and_run(A, B, LO, HI, np.array([0.6, 0.6]), 5, **KW)),
    ("x0", lambda: _sampler.hit_and_run(A, B, LO, HI, np.array([0.5, 0.5]), 5, **KW)),
    ("x0", lambda: _sampler.hit_and_run(A, B, LO, HI, np.array([0.0, 0.5]), 5, **KW)),
    ("x0", lambda: _sampler.hit_and_run(A, B, LO, HI, np.array([np.nan, 0.5]), 5, **KW)),
    ("a", lambda: _sampler.hit_and_run(np.array([[np.nan, 1.0]]), B, LO, HI, X0, 5, **KW)),
    ("b", lambda: _sampler.hit_and_run(A, np.array([np.nan]), LO, HI, X0, 5, **KW)),
    ("lo", lambda: _sampler.hit_and_run(A, B, np.array([np.nan, 0]), HI, X0, 5, **KW)),
    ("a", lambda: _sampler.hit_and_run(np.array([[1.0, 0.0]]), B, LO, HI, X0, 5, **KW)),
    ("a", lambda: _sampler.hit_and_run(np.zeros((0, 2)), np.zeros(0), LO, HI, X0, 5, **KW)),
    ("n_chains", lambda: _sampler.hit_and_run(A, B, LO, HI, X0, 5, n_chains=0, **KW)),
    ("method", lambda: _sampler.hit_and_run(A, B, LO, HI, X0, 5, method="gibbs", **KW)),
    ("thin", lambda: _sampler.hit_and_run(A, B, LO, HI, X0, 5, burn_in=1, thin=0)),
    ("burn_in", lambda: _sampler.hit_and_run(A, B, LO, HI, X0, 5, burn_in=-1, thin=1)),
    ("n_samples", lambda: _sampler.hit_and_run(A, B, LO, HI, X0, -5, **KW)),
    ("seed", lambda: _sampler.hit_and_run(A, B, LO, HI, X0, 5, seed=-1, **KW)),
    (
        "a",
        lambda: _sampler.hit_and_run(
            np.zeros((0, 0)), np.zeros(0), LO[:0], HI[:0], X0[:0], 5, **KW
        ),
    ),
]

I64 = np.int64
BAD_INT = [
    ("z0", lambda: run_int([[1, 1]], [4], [0, 0], [4, 4], [3, 3], 5)),
    ("z0", lambda: run_int([[1, 1]], [4], [0, 0], [4, 4], [5, 0], 5)),
    ("z0", lambda: run_int([[1, 1]], [4], [0, 0], [4, 4], [0, 0, 0], 5)),
    ("lo", lambda: run_int([[1, 1]], [4], [0], [4, 4], [0, 0], 5)),
    ("hi", lambda: run_int([[1, 1]], [4], [0, 0], [2**60, 4], [0, 0], 5)),
    ("b", lambda: run_int([[1, 1]], [4, 5], [0, 0], [4, 4], [0, 0], 5)),
    ("a", lambda: run_int([[np.nan, 1]], [4], [0, 0], [4, 4], [0, 0], 5)),
    ("lo", lambda: run_int([[1, 1]], [4], [3, 0], [2, 4], [0, 0], 5)),
    ("n_chains", lambda: run_int([[1, 1]], [4], [0, 0], [4, 4], [0, 0], 5, n_chains=0)),
    ("thin", lambda: run_int([[1, 1]], [4], [0, 0], [4, 4], [0, 0], 5, thin=0)),
]


@pytest.mark.parametrize(("arg", "call"), BAD_CONTINUOUS + BAD_INT)
def test_bad_input_is_value_error(arg: str, call) -> None:
    with pytest.raises(ValueError, match=rf"^{arg}: "):
        call()


def test_gil_released_for_threads() -> None:
    """Two threads sampling at once give the same results as one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    problem = simplex(20)
    with ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(run, problem, 2000, thin=20, seed=s) for s in (1, 2)]
        got = [f.result() for f in futs]
    np.testing.assert_array_equal(got[0], run(problem, 2000, thin=20, seed=1))
