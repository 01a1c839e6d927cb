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

def gp_posterior(
    candidates: NDArray[np.float64],
    x_train: NDArray[np.float64],
    alpha: NDArray[np.float64],
    chol: NDArray[np.float64],
    lengthscales: NDArray[np.float64],
    outputscale: float,
    y_mean: float,
    y_std: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Posterior mean and variance of a fitted Matérn-5/2 GP, in original units.

    With ``k = matern52(x_train, candidates, lengthscales, outputscale)`` and
    ``v = solve_triangular(chol, k, lower=True)``: ``mean = y_mean + y_std *
    k.T @ alpha`` and ``var = y_std**2 * max(outputscale - sum(v * v, 0), 1e-12)``
    (the factors of ``optserve.optimizers.gp.GaussianProcess``). Runs without
    the GIL.

    Args:
        candidates: Points, shape ``(k, D)``.
        x_train: Training inputs, shape ``(n, D)``.
        alpha: ``K^-1 y_s``, shape ``(n,)``.
        chol: Lower Cholesky factor of ``K``, shape ``(n, n)``; the upper
            triangle is not read.
        lengthscales: Length scales, shape ``(D,)``, all ``> 0``.
        outputscale: Prior variance in standardized units, ``> 0``.
        y_mean: Constant mean, original units.
        y_std: Standardization scale, original units, ``> 0``.

    Returns:
        ``(mean, var)``, each of shape ``(k,)``.

    Raises:
        ValueError: Shapes that disagree, NaN or infinity in any input, a
            non-positive scale or diagonal entry of ``chol``.
    """

def score_log_ei(
    candidates: NDArray[np.float64],
    x_train: NDArray[np.float64],
    alpha: NDArray[np.float64],
    chol: NDArray[np.float64],
    lengthscales: NDArray[np.float64],
    outputscale: float,
    y_mean: float,
    y_std: float,
    incumbent: float,
) -> NDArray[np.float64]:
    """Log expected improvement over ``incumbent`` (maximization) at ``candidates``.

    The posterior of :func:`gp_posterior` followed by the stable log EI of
    Ament et al. (2023); finite however far a candidate lies from the data.
    Runs without the GIL.

    Args:
        candidates: Points, shape ``(k, D)``.
        x_train: Training inputs, shape ``(n, D)``.
        alpha: ``K^-1 y_s``, shape ``(n,)``.
        chol: Lower Cholesky factor of ``K``, shape ``(n, n)``.
        lengthscales: Length scales, shape ``(D,)``.
        outputscale: Prior variance in standardized units.
        y_mean: Constant mean, original units.
        y_std: Standardization scale, original units.
        incumbent: The value to improve on, original units, finite.

    Returns:
        ``log EI``, shape ``(k,)``.

    Raises:
        ValueError: As :func:`gp_posterior`, or a non-finite ``incumbent``.
    """

class GpScorer:
    """A fitted GP's factors, validated and copied once, scoring many batches of
    candidates without the GIL (:func:`gp_posterior` and :func:`score_log_ei`
    re-validate and copy the factors on every call).

    Args:
        x_train: Training inputs, shape ``(n, D)``.
        alpha: ``K^-1 y_s``, shape ``(n,)``.
        chol: Lower Cholesky factor of ``K``, shape ``(n, n)``.
        lengthscales: Length scales, shape ``(D,)``, all ``> 0``.
        outputscale: Prior variance in standardized units, ``> 0``.
        y_mean: Constant mean, original units.
        y_std: Standardization scale, original units, ``> 0``.

    Raises:
        ValueError: As :func:`gp_posterior`.
    """

    def __new__(
        cls,
        x_train: NDArray[np.float64],
        alpha: NDArray[np.float64],
        chol: NDArray[np.float64],
        lengthscales: NDArray[np.float64],
        outputscale: float,
        y_mean: float,
        y_std: float,
    ) -> GpScorer: ...
    @property
    def dim(self) -> int:
        """The input dimension ``D``."""

    def posterior(
        self, candidates: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Posterior mean and variance at ``candidates`` (shape ``(k, D)``), as
        :func:`gp_posterior`.

        Raises:
            ValueError: Wrong number of columns, NaN or infinity.
        """

    def log_ei(self, candidates: NDArray[np.float64], incumbent: float) -> NDArray[np.float64]:
        """Log expected improvement over ``incumbent`` at ``candidates``, as
        :func:`score_log_ei`.

        Raises:
            ValueError: Wrong number of columns, NaN or infinity, a non-finite
                ``incumbent``.
        """
