"""Compiled polytope samplers (Rust, built by maturin from ``sampler_rs/``).

The service calls :mod:`optserve.sampling`, not these functions directly.
"""

from typing import Literal

import numpy as np
from numpy.typing import NDArray

def version() -> str:
    """Version of the compiled extension."""

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
    n_chains: int = 1,
    method: Literal["coordinate", "random"] | str = "coordinate",
    seed: int = 0,
) -> NDArray[np.float64]:
    """Uniform samples of ``{x : lo <= x <= hi, a @ x <= b}`` by hit-and-run.

    Args:
        a: Constraint matrix, shape ``(m, d)``.
        b: Right-hand sides, shape ``(m,)``.
        lo: Lower bounds, shape ``(d,)``; may hold ``-inf``.
        hi: Upper bounds, shape ``(d,)``; may hold ``+inf``.
        x0: Strictly interior start point of every chain, shape ``(d,)``.
        n_samples: Number of points returned, split across the chains.
        burn_in: Steps discarded at the start of each chain.
        thin: Steps between two recorded samples (``>= 1``).
        n_chains: Independent chains (``>= 1``).
        method: ``"coordinate"`` (O(m) per step) or ``"random"`` (O(m d)).
        seed: Seed in ``[0, 2**64)``; equal seeds give equal output.

    Returns:
        Samples, shape ``(n_samples, d)``, chain by chain.

    Raises:
        ValueError: Bad shapes, NaN, a start point that is not strictly
            interior, an unbounded polytope, or a bad count or method.
    """

def hit_and_run_int(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    z0: NDArray[np.int64],
    n_samples: int,
    *,
    burn_in: int,
    thin: int,
    n_chains: int = 1,
    seed: int = 0,
) -> NDArray[np.int64]:
    """Uniform samples of the integer points ``{z : lo <= z <= hi, a @ z <= b}``.

    Args:
        a: Constraint matrix, shape ``(m, d)``.
        b: Right-hand sides, shape ``(m,)``.
        lo: Integer lower bounds, shape ``(d,)``, ``|lo| <= 2**52``.
        hi: Integer upper bounds, shape ``(d,)``, ``|hi| <= 2**52``.
        z0: Feasible integer start point of every chain, shape ``(d,)``.
        n_samples: Number of points returned, split across the chains.
        burn_in: Steps discarded at the start of each chain.
        thin: Steps between two recorded samples (``>= 1``).
        n_chains: Independent chains (``>= 1``).
        seed: Seed in ``[0, 2**64)``.

    Returns:
        Integer samples, shape ``(n_samples, d)``; each satisfies the bounds
        exactly and every row within ``1e-9 * max(1, |b|)``.

    Raises:
        ValueError: Bad shapes, NaN, an infeasible start point, bounds
            beyond ``2**52``, or a bad count.
    """
