"""The Python wrapper: centres, feasibility, rounding, lattice starts, designs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from optserve.sampling import EmptyPolytopeError, IntegerPolytope, Polytope, maximin_design

INF = np.inf


def test_chebyshev_center_of_a_box_and_triangle() -> None:
    box = Polytope(np.zeros((0, 2)), np.zeros(0), [0, 0], [2, 4])
    c, r = box.chebyshev_center()
    assert r == pytest.approx(1.0)
    assert c[0] == pytest.approx(1.0)
    tri = Polytope([[1, 1]], [1], [0, 0], [INF, INF])
    c, r = tri.chebyshev_center()
    assert r == pytest.approx(1 / (2 + np.sqrt(2)))
    np.testing.assert_allclose(c, [r, r])


@pytest.mark.parametrize(
    ("a", "b", "lo", "hi"),
    [
        ([[1, 1]], [-1], [0, 0], [1, 1]),  # empty
        ([[1, 1], [-1, -1]], [1, -1], [0, 0], [1, 1]),  # flat: x + y = 1
        ([[1, -1], [-1, 1]], [1, 1], [-INF, -INF], [INF, INF]),  # unbounded strip
        ([[1, 0]], [1], [0, 0], [INF, INF]),  # unbounded in y
    ],
)
def test_empty_flat_or_unbounded_is_rejected(a, b, lo, hi) -> None:
    with pytest.raises(EmptyPolytopeError):
        Polytope(a, b, lo, hi).chebyshev_center()


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="b:"):
        Polytope([[1, 1]], [1, 2], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="a:"):
        Polytope([[1, 1, 1]], [1], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="a:"):
        Polytope([[np.nan, 1]], [1], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="lo:"):
        IntegerPolytope([[1, 1]], [1], [0.5, 0], [1, 1])


def test_is_feasible() -> None:
    p = Polytope([[1, 1]], [1], [0, 0], [1, 1])
    assert p.is_feasible([0.5, 0.5])
    assert not p.is_feasible([0.5, 0.6])
    np.testing.assert_array_equal(p.is_feasible([[0.1, 0.1], [-0.1, 0.1]]), [True, False])


THIN_SLAB = ([[1, -1], [-1, 1]], [1e-4, 0.0], [0, 0], [1, 1])


def test_thin_slab_needs_rounding_and_gets_it() -> None:
    """0 <= x - y <= 1e-4 in the unit square: x is uniform on [0, 1] (up to 1e-4)."""
    p = Polytope(*THIN_SLAB)
    plain = p.sample(2000, seed=1, rounding="never")
    rounded = p.sample(2000, seed=1)  # "auto" picks rounding here
    for x in (plain, rounded):
        assert p.is_feasible(x).all()
    # Plain coordinate hit-and-run moves 1e-4 per step: it never leaves the start.
    assert np.ptp(plain[:, 0]) < 0.05
    assert stats.kstest(rounded[:, 0], stats.uniform(0, 1).cdf).pvalue > 1e-3


def test_skewed_simplex_with_tiny_side() -> None:
    """A long thin triangle along the diagonal: x <= y <= (1 + 1e-3) x, x + y <= 2."""
    a = [[1, -1], [-(1 + 1e-3), 1], [1, 1]]
    p = Polytope(a, [0, 0, 2], [0, 0], [INF, INF])
    for method in ("coordinate", "random"):
        x = p.sample(3000, seed=2, method=method)
        assert p.is_feasible(x).all()
        # The x marginal of this triangle has density proportional to x on [0, ~1].
        top = 2 / (2 + 1e-3)
        assert stats.kstest(x[:, 0], lambda t, top=top: np.clip(t / top, 0, 1) ** 2).pvalue > 1e-3


def test_wrapper_simplex_spread() -> None:
    """P4 in small: coordinate spreads of the d-simplex within 5 % of exact."""
    d = 10
    p = Polytope(np.ones((1, d)), [1], np.zeros(d), np.full(d, INF))
    x = p.sample(10000, seed=3)
    exact = np.sqrt(d / ((d + 1) ** 2 * (d + 2)))
    assert np.max(np.abs(x.std(axis=0) / exact - 1)) < 0.05


def test_sample_reproducible() -> None:
    p = Polytope(*THIN_SLAB)
    np.testing.assert_array_equal(p.sample(50, seed=4), p.sample(50, seed=4))
    assert not np.array_equal(p.sample(50, seed=4), p.sample(50, seed=5))


def test_a_polytope_used_before_samples_as_a_fresh_one() -> None:
    """Its rows and roundings are kept between calls: reuse changes no point."""
    used = Polytope(*THIN_SLAB)
    for method in ("coordinate", "random", "coordinate"):
        used.sample(20, seed=7, method=method)
    for method in ("coordinate", "random"):
        np.testing.assert_array_equal(
            used.sample(30, seed=8, method=method),
            Polytope(*THIN_SLAB).sample(30, seed=8, method=method),
        )
    g, _ = used.rows()
    with pytest.raises(ValueError, match="read-only"):
        g[0, 0] = 2.0


def test_integer_polytope_start_and_sample() -> None:
    ip = IntegerPolytope([[1, 1]], [4], [0, 0], [10, 10])
    z0 = ip.start_point()
    assert z0.dtype == np.int64 and ip.is_feasible(z0)
    z = ip.sample(6000, seed=1, thin=4)
    assert ip.is_feasible(z).all()
    _, counts = np.unique(z, axis=0, return_counts=True)
    assert len(counts) == 15
    assert stats.chisquare(counts).pvalue > 1e-3


def test_integer_polytope_without_interior_still_has_points() -> None:
    # x + y = 3 on the integers: no interior, four lattice points, coordinate moves stuck.
    ip = IntegerPolytope([[1, 1], [-1, -1]], [3, -3], [0, 0], [3, 3])
    z = ip.sample(10, seed=0)
    assert ip.is_feasible(z).all()


def test_integer_polytope_empty() -> None:
    # 2 z1 = 1 has no integer solution.
    ip = IntegerPolytope([[2, 0], [-2, 0]], [1, -1], [0, 0], [3, 3])
    with pytest.raises(EmptyPolytopeError):
        ip.start_point()


def test_maximin_design_spreads_points() -> None:
    p = Polytope(np.zeros((0, 2)), np.zeros(0), [0, 0], [10, 1])
    cand = p.sample(2000, seed=0)
    design = maximin_design(cand, 4, rng=0, lo=[0, 0], hi=[10, 1])
    assert design.shape == (4, 2)
    scaled = design / [10, 1]
    dmin = min(np.linalg.norm(scaled[i] - scaled[j]) for i in range(4) for j in range(i))
    assert dmin > 0.5
    # Existing points are avoided.
    more = maximin_design(cand, 1, existing=design, rng=0, lo=[0, 0], hi=[10, 1])
    assert np.min(np.linalg.norm((design - more) / [10, 1], axis=1)) > 0.3
    with pytest.raises(ValueError, match="k:"):
        maximin_design(cand, 5000)


def test_integer_start_point_survives_a_solver_failure():
    """HiGHS reports "Solve error" on the L1 start-point problem of this tiny
    system (found by the service's property test); a feasible start must still come back."""
    from optserve.sampling import IntegerPolytope

    poly = IntegerPolytope(
        np.array([[-0.5, 3.0], [0.5, 0.5]]),
        np.array([1.0, -1.0]),
        np.array([-4, -2]),
        np.array([0, 0]),
    )
    z = poly.sample(400, seed=1)
    assert poly.is_feasible(z).all()
    grid = np.array([(i, j) for i in range(-4, 1) for j in range(-2, 1)])
    feasible = {tuple(p) for p in grid[poly.is_feasible(grid)]}
    assert {tuple(int(v) for v in p) for p in z} == feasible


@pytest.mark.parametrize("rounding", ["auto", "always", "never"])
def test_no_points_is_an_empty_sample(rounding) -> None:
    p = Polytope([[1, 1]], [1], [0, 0], [1, 1])
    assert p.sample(0, rounding=rounding).shape == (0, 2)
    with pytest.raises(ValueError, match="rounding"):
        p.sample(0, rounding="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rounding"):
        p.sample(3, rounding="sometimes")  # type: ignore[arg-type]
