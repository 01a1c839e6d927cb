"""Property tests: random feasible constraint systems, every sample feasible."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optserve.sampling import IntegerPolytope, Polytope

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@st.composite
def continuous_systems(draw):
    """A box around a point c plus rows that keep c feasible: random, near-parallel, thin slabs."""
    seed = draw(st.integers(0, 2**32 - 1))
    d = draw(st.integers(1, 8))
    m = draw(st.integers(0, 8))
    kind = draw(st.sampled_from(["random", "near_parallel", "slab", "mixed_scale"]))
    rng = np.random.default_rng(seed)
    c = rng.uniform(-5, 5, size=d)
    width = rng.uniform(0.1, 10, size=d)
    lo, hi = c - width * rng.uniform(0.1, 1, d), c + width * rng.uniform(0.1, 1, d)
    a = rng.normal(size=(m, d))
    margin = rng.uniform(0.01, 1.0, size=m)
    if kind == "near_parallel" and m >= 2:
        a[1:] = a[0] + 1e-6 * rng.normal(size=(m - 1, d))
    if kind == "slab" and m >= 1:
        a = np.vstack([a, -a[:1]])
        margin = np.concatenate([np.full(m, 1e-4), [0.0]])
    if kind == "mixed_scale":
        a *= 10.0 ** rng.integers(-3, 4, size=(a.shape[0], 1))
    b = a @ c + margin * np.maximum(np.abs(a).sum(axis=1), 1e-12)
    if kind == "slab" and m >= 1:
        b[-1] = -(a[0] @ c)  # a0 @ x in [a0 @ c, a0 @ c + 1e-4 |a0|_1]
    return a, b, lo, hi


@SETTINGS
@given(continuous_systems(), st.sampled_from(["coordinate", "random"]))
def test_continuous_samples_always_feasible(system, method) -> None:
    a, b, lo, hi = system
    p = Polytope(a, b, lo, hi)
    x = p.sample(2000, seed=7, method=method, burn_in=50, thin=3)
    assert x.shape == (2000, p.d)
    assert np.all(x >= lo) and np.all(x <= hi)
    if p.m:
        assert np.all(x @ a.T <= b + 1e-9)


@st.composite
def integer_systems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    d = draw(st.integers(1, 6))
    m = draw(st.integers(0, 6))
    rng = np.random.default_rng(seed)
    zc = rng.integers(-20, 20, size=d)
    lo = zc - rng.integers(0, 10, size=d)
    hi = zc + rng.integers(0, 10, size=d)
    a = rng.integers(-5, 6, size=(m, d)).astype(np.float64)
    b = a @ zc + rng.integers(0, 8, size=m)
    return a, b.astype(np.float64), lo, hi


@SETTINGS
@given(integer_systems())
def test_integer_samples_always_feasible(system) -> None:
    a, b, lo, hi = system
    ip = IntegerPolytope(a, b, lo, hi)
    z = ip.sample(2000, seed=3, burn_in=20, thin=2)
    assert z.dtype == np.int64
    assert np.all(z >= lo) and np.all(z <= hi)
    if a.shape[0]:
        assert np.all(z @ a.T.astype(np.int64) <= b.astype(np.int64))
