"""Slow plain-NumPy hit-and-run, the reference the Rust sampler is tested against.

Same algorithm as ``sampler_rs/src/hit_and_run.rs`` but written for clarity:
the slack is recomputed from scratch at every step and the random stream is
NumPy's, so the two agree in distribution, not sample by sample.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def chord(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    x: NDArray[np.float64],
    u: NDArray[np.float64],
) -> tuple[float, float]:
    """The interval of ``t`` keeping ``x + t u`` inside the polytope."""
    s = b - a @ x
    au = a @ u
    t_lo, t_hi = -np.inf, np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        up = au > 0
        down = au < 0
        if up.any():
            t_hi = min(t_hi, float(np.min(s[up] / au[up])))
        if down.any():
            t_lo = max(t_lo, float(np.max(s[down] / au[down])))
        pos, neg = u > 0, u < 0
        if pos.any():
            t_hi = min(t_hi, float(np.min((hi[pos] - x[pos]) / u[pos])))
            t_lo = max(t_lo, float(np.max((lo[pos] - x[pos]) / u[pos])))
        if neg.any():
            t_hi = min(t_hi, float(np.min((lo[neg] - x[neg]) / u[neg])))
            t_lo = max(t_lo, float(np.max((hi[neg] - x[neg]) / u[neg])))
    return t_lo, t_hi


def hit_and_run(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    x0: NDArray[np.float64],
    n_samples: int,
    *,
    burn_in: int,
    thin: int,
    method: str = "coordinate",
    seed: int = 0,
) -> NDArray[np.float64]:
    """Uniform samples of ``{x : lo <= x <= hi, a @ x <= b}``, shape ``(n_samples, d)``."""
    rng = np.random.default_rng(seed)
    d = x0.size
    x = np.array(x0, dtype=np.float64)
    out = np.empty((n_samples, d))
    for k in range(burn_in + n_samples * thin):
        if method == "coordinate":
            u = np.zeros(d)
            u[rng.integers(d)] = 1.0
        else:
            u = rng.standard_normal(d)
        t_lo, t_hi = chord(a, b, lo, hi, x, u)
        if not (np.isfinite(t_lo) and np.isfinite(t_hi)):
            raise ValueError("unbounded chord")
        x = np.clip(x + rng.uniform(t_lo, t_hi) * u, lo, hi)
        j = k - burn_in + 1
        if j > 0 and j % thin == 0:
            out[j // thin - 1] = x
    return out
