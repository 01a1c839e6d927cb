"""Compiled polytope samplers (Rust, built by maturin from ``sampler_rs/``).

The service calls :mod:`optserve.sampling`, not these functions directly.
"""

from collections.abc import Sequence
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
        groups: Under a mixture kernel (a conditional space,
            ``optserve.optimizers.gp.inputs``): each additive group's inputs;
            the kernel is then ``outputscale * sum_g c_g(x) c_g(x') matern(x_g,
            x'_g)`` over the product term (every input) and the groups.
        train_scales: With ``groups``: the training points' scales ``c``, shape
            ``(n, 1 + G)``, finite and ``>= 0``.

    Raises:
        ValueError: As :func:`gp_posterior`; a group empty, out of range or
            listing an input twice; ``train_scales`` of the wrong shape or
            negative; one of ``groups`` and ``train_scales`` without the other.
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
        groups: list[list[int]] | None = None,
        train_scales: NDArray[np.float64] | None = None,
    ) -> GpScorer: ...
    @property
    def dim(self) -> int:
        """The input dimension ``D``."""

    @property
    def means(self) -> int:
        """How many posterior means share the variance (1 unless :meth:`with_means`)."""

    def with_means(self, weights: NDArray[np.float64]) -> GpScorer:
        """This GP with ``S`` posterior means sharing its variance: ``weights``,
        shape ``(n, S)``, in place of ``alpha`` (mean ``j`` is ``y_mean + y_std *
        k^T weights[:, j]``), as the GP conditioned on ``S`` draws of outcomes at
        some of its training rows has them.

        Raises:
            ValueError: ``weights`` not of shape ``(n, S)`` with ``S >= 1``, or
                not finite.
        """

    def posterior(
        self, candidates: NDArray[np.float64], scales: NDArray[np.float64] | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Posterior mean and variance at ``candidates`` (shape ``(k, D)``), as
        :func:`gp_posterior`; under a mixture kernel ``scales`` are the
        candidates' scales, shape ``(k, 1 + G)`` (required there, refused elsewhere).
        With several means (:meth:`with_means`) the means have shape ``(k, S)``.

        Raises:
            ValueError: Wrong number of columns, NaN or infinity, ``scales``
                missing, of the wrong shape or negative.
        """

    def log_ei(
        self,
        candidates: NDArray[np.float64],
        incumbent: float | Sequence[float] | NDArray[np.float64],
        scales: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """Log expected improvement over ``incumbent`` at ``candidates``, as
        :func:`score_log_ei`; ``scales`` as in :meth:`posterior`. With several
        means, ``incumbent`` holds one per mean and EI is averaged over them:
        ``log((1/S) sum_j EI_j)``.

        Raises:
            ValueError: As :meth:`posterior`, a non-finite ``incumbent``, or not
                one incumbent per mean.
        """

class SearchSpace:
    """An experiment's encoded search space (``optserve.domain.encoding``),
    validated once, for :func:`maximize_log_ei`.

    Args:
        columns: Per encoded column: None for a continuous column (a double
            without a grid) or a one-hot member (see ``groups``), else
            ``(lo_t, hi_t, min, max, log, int, grid)``: the encoded value
            ``e`` stands for ``t^-1(lo_t + e (hi_t - lo_t))`` (``t = log`` when
            ``log``), snapped to ``grid`` (may be empty), clipped to
            ``[min, max]`` and rounded when ``int``.
        groups: One-hot groups as ``(first column, width)``.
        double_cols: The encoded columns of the constrained doubles.
        double_a: Their constraint rows over the unit cube, shape ``(m, k)``.
        double_b: Right-hand sides, shape ``(m,)``.
        double_x0: A strictly interior point, shape ``(k,)``.
        int_cols: The encoded columns of the constrained ints (linear scale).
        int_a: Their constraint rows over the values, shape ``(m, k)``.
        int_b: Right-hand sides, shape ``(m,)``.
        int_lo: Integer lower bounds (the columns' own), shape ``(k,)``.
        int_hi: Integer upper bounds, shape ``(k,)``.
        int_z0: A feasible integer point, shape ``(k,)``.

    Raises:
        ValueError: Pieces that disagree, a start point that is not feasible
            (strictly interior for the doubles), a block given in part.
    """

    def __new__(
        cls,
        columns: list[tuple[float, float, float, float, bool, bool, list[float]] | None],
        groups: list[tuple[int, int]],
        *,
        double_cols: list[int] | None = None,
        double_a: NDArray[np.float64] | None = None,
        double_b: NDArray[np.float64] | None = None,
        double_x0: NDArray[np.float64] | None = None,
        int_cols: list[int] | None = None,
        int_a: NDArray[np.float64] | None = None,
        int_b: NDArray[np.float64] | None = None,
        int_lo: NDArray[np.int64] | None = None,
        int_hi: NDArray[np.int64] | None = None,
        int_z0: NDArray[np.int64] | None = None,
    ) -> SearchSpace: ...
    @property
    def dim(self) -> int:
        """The encoded dimension ``D``."""

    def feasible(self, rows: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Whether each canonical row (shape ``(k, D)``) meets every linear
        constraint: the doubles' unit rows within ``1e-9``, the ints' rows as
        :func:`hit_and_run_int` checks them.

        Raises:
            ValueError: Wrong number of columns.
        """

class LocalPenalty:
    """The local penalty of pending points (Gonzalez et al. 2016), a log term
    :func:`maximize_log_ei` adds to log EI: at ``x``, the sum over the points
    ``x_j`` of ``log Phi((lipschitz |x - x_j| - incumbent + mean_j) / std_j)``,
    distances in length scales (the compiled
    ``optserve.optimizers.acquisition.LocalPenalty``).

    Args:
        points: The pending rows, shape ``(P, D)``.
        lengthscales: The GP's length scales, shape ``(D,)``, finite and > 0.
        means: The posterior mean at each point, original units, shape ``(P,)``.
        stds: The posterior standard deviation at each, finite and > 0.
        lipschitz: A Lipschitz constant of the objective in length scales, > 0.
        incumbent: The best value, original units.

    Raises:
        ValueError: Dimensions that disagree, non-finite values, a bound broken.
    """

    def __new__(
        cls,
        points: NDArray[np.float64],
        lengthscales: NDArray[np.float64],
        means: NDArray[np.float64],
        stds: NDArray[np.float64],
        lipschitz: float,
        incumbent: float,
    ) -> LocalPenalty: ...
    @property
    def dim(self) -> int:
        """The encoded dimension ``D``."""

    def values(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """The penalty of each row (shape ``(n, D)``).

        Raises:
            ValueError: Wrong number of columns.
        """

def maximize_log_ei(
    scorer: GpScorer,
    incumbent: float | Sequence[float] | NDArray[np.float64],
    space: SearchSpace,
    best_rows: NDArray[np.float64],
    *,
    seed: int,
    penalty: LocalPenalty | None = None,
    global_candidates: int = 768,
    local_candidates: int = 96,
    refine_steps: list[float] = ...,
    refine_candidates: int = 48,
    refine_starts: int = 5,
    polish_starts: int = 5,
    polish_iterations: int = 40,
    threads: int = 0,
) -> tuple[NDArray[np.float64], float, float] | None:
    """The best feasible point of log EI over ``incumbent`` under ``scorer``'s
    GP (averaged over its means, one incumbent each, where it has several),
    plus ``penalty`` where given (scored, bounded and polished with it),
    observed points (the GP's training inputs) excluded. Runs without the
    GIL; equal seeds give equal points.

    Stages: ``global_candidates`` uniform feasible draws and
    ``local_candidates`` feasible perturbations of each row of
    ``best_rows``, scored; a local search from the best ``refine_starts``
    (``refine_candidates`` perturbations per start at each of
    ``refine_steps``, default 0.1 down to 0.001; skipped where every column
    is continuous); a gradient polish of the best ``polish_starts`` over the
    continuous columns, under the bounds and linear constraints (projected
    BFGS, at most ``polish_iterations`` steps, every iterate feasible); the
    best point that passes the final feasibility check. Large batches of
    candidates are scored on ``threads`` threads (0: the available cores, at
    most 4); the result does not depend on it.

    Args:
        scorer: The fitted GP.
        incumbent: The value to improve on, original units, finite (one per
            mean of ``scorer``).
        space: The search space, ``space.dim == scorer.dim``.
        best_rows: The best observations, shape ``(k, D)``.
        seed: Seed in ``[0, 2**64)``.
        penalty: The points in flight, ``penalty.dim == space.dim``.

    Returns:
        ``(point (D,), its log EI (plus the penalty), the best candidate's log EI before the local
        search)``, or None when every scored point is an observed one.

    Raises:
        ValueError: Dimensions that disagree, non-finite values, bad counts.
    """
