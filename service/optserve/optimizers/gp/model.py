"""A Gaussian process on the unit cube: Matérn-5/2 ARD kernel, MAP hyperparameters.

Inputs are points of ``[0, 1]^D`` (the optimizer's encoding); outputs are
"larger is better" values in any units. Outputs are standardized internally
(``y_s = (y - y_mean) / y_std``) and the GP on ``y_s`` has a zero mean, so the
model's constant mean is ``y_mean``: the outputs' average, or with
``worst_mean`` their smallest value.

The kernel on standardized outputs, with ``r^2 = sum_d (x_d - x'_d)^2 / l_d^2``
and ``u = sqrt(5) r``::

    k(x, x') = outputscale * (1 + u + u^2 / 3) * exp(-u)

The observation model adds a homoscedastic ``noise`` variance (fitted) and,
optionally, a known variance per point. Hyperparameters are fitted by maximum
a posteriori: log marginal likelihood plus priors on the log-parameters
(``log_prior_and_grad``), optimized by L-BFGS-B over log-parameters with
analytic gradients and a few restarts.

The log-parameter vector used throughout is
``[log l_1, ..., log l_D, log outputscale, log noise]`` (length ``D + 2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize
from scipy.linalg import lapack, solve_triangular

from .inputs import InputMap

__all__ = [
    "NOISE_PRIOR_MEDIAN",
    "GaussianProcess",
    "Hyperparameters",
    "covariance",
    "covariance_and_grad",
    "log_marginal_likelihood_and_grad",
    "log_posterior_and_grad",
    "log_prior_and_grad",
    "matern52",
]

FloatArray = NDArray[np.float64]

_SQRT5 = math.sqrt(5.0)
_LOG_2PI = math.log(2.0 * math.pi)

# Priors, on [0, 1] inputs and standardized outputs: on each log-parameter a
# median and a scale; a normal distribution for the outputscale and the noise,
# and for a length scale a density with the normal's curvature at the median and
# exponential tails (``log_prior_and_grad``).
_LENGTHSCALE_LOG_MEDIAN = math.log(0.5)  # at D = 1; grows like D ** (1/4)
_LENGTHSCALE_LOG_SIGMA = 1.0
_LENGTHSCALE_DIM_POWER = 0.25
_OUTPUTSCALE_LOG_MEDIAN = 0.0
_OUTPUTSCALE_LOG_SIGMA = 1.0
NOISE_PRIOR_MEDIAN = 1e-3
_NOISE_LOG_MEDIAN = math.log(NOISE_PRIOR_MEDIAN)
_NOISE_LOG_SIGMA = 2.0
_NOISY_START_LOG_NOISE = math.log(0.1)

# Box bounds of the parameters (not of their logs).
_LENGTHSCALE_BOUNDS = (1e-2, 1e2)
_OUTPUTSCALE_BOUNDS = (1e-3, 1e2)
_NOISE_BOUNDS = (1e-6, 4.0)

# Diagonal jitters tried in turn when a Cholesky factorization fails.
_JITTERS = (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# Floor of the posterior variance, in standardized units.
_VAR_FLOOR = 1e-12
# Largest (n, k) block of cross-covariances built at once in ``predict``.
_BLOCK_ELEMENTS = 1 << 22
# L-BFGS-B stopping rules: hyperparameters need a few digits, not nine.
_FTOL = 1e-6
_GTOL = 1e-3
# Warm-started fits on at most this many points also start from the priors' medians.
_WARM_SECOND_START_MAX_POINTS = 200
# Largest (pairs, D) array of squared differences built by a fit (128 MiB).
_MAX_PAIR_ELEMENTS = 1 << 24
# Returned by the MAP objective where the kernel matrix cannot be factored.
_BAD_OBJECTIVE = 1e25


@dataclass(frozen=True, eq=False)
class Hyperparameters:
    """Kernel hyperparameters, in standardized output units.

    Attributes:
        lengthscales: (D,) one length scale per input dimension, in the units
            of the ``[0, 1]`` encoding.
        outputscale: prior variance of the latent function (standardized units).
        noise: homoscedastic observation noise variance (standardized units).
    """

    lengthscales: FloatArray
    outputscale: float
    noise: float

    def __post_init__(self) -> None:
        lengthscales = np.array(self.lengthscales, dtype=np.float64).reshape(-1)
        lengthscales.setflags(write=False)
        object.__setattr__(self, "lengthscales", lengthscales)
        object.__setattr__(self, "outputscale", float(self.outputscale))
        object.__setattr__(self, "noise", float(self.noise))

    @property
    def dim(self) -> int:
        """The input dimension ``D``."""
        return int(self.lengthscales.shape[0])

    def to_log_params(self) -> FloatArray:
        """The (D + 2,) vector ``[log l_1..l_D, log outputscale, log noise]``."""
        return np.log(np.concatenate([self.lengthscales, [self.outputscale, self.noise]]))

    @classmethod
    def from_log_params(cls, log_params: ArrayLike) -> Hyperparameters:
        """Inverse of :meth:`to_log_params`.

        Args:
            log_params: (D + 2,) log-parameters.
        """
        theta = np.asarray(log_params, dtype=np.float64)
        return cls(np.exp(theta[:-2]), float(np.exp(theta[-2])), float(np.exp(theta[-1])))

    @classmethod
    def default(cls, dim: int) -> Hyperparameters:
        """The priors' medians: the starting point of a cold fit.

        Args:
            dim: the input dimension ``D``.
        """
        return cls.from_log_params(_prior_medians(dim))

    def is_finite(self) -> bool:
        """Whether every value is finite and positive."""
        values = np.concatenate([self.lengthscales, [self.outputscale, self.noise]])
        return bool(np.all(np.isfinite(values)) and np.all(values > 0))


def matern52(
    x1: FloatArray, x2: FloatArray, lengthscales: FloatArray, outputscale: float
) -> FloatArray:
    """The Matérn-5/2 ARD covariance between two sets of points.

    Args:
        x1: (n1, D) points.
        x2: (n2, D) points.
        lengthscales: (D,) length scales.
        outputscale: the kernel's variance at distance zero.

    Returns:
        (n1, n2) covariances ``k(x1[i], x2[j])``.
    """
    a = x1 / lengthscales
    b = x2 / lengthscales
    # In place on one (n1, n2) buffer: this is the cost of scoring candidates.
    u = a @ b.T
    u *= -2.0
    u += np.einsum("ij,ij->i", a, a)[:, None]
    u += np.einsum("ij,ij->i", b, b)[None, :]
    np.maximum(u, 0.0, out=u)
    u *= 5.0
    np.sqrt(u, out=u)  # u = sqrt(5) r
    k = np.negative(u)
    np.exp(k, out=k)
    poly = u * u
    poly *= 1.0 / 3.0
    poly += u
    poly += 1.0
    k *= poly
    k *= outputscale
    return k


def covariance(
    x1: FloatArray,
    x2: FloatArray,
    lengthscales: FloatArray,
    outputscale: float,
    input_map: InputMap | None = None,
) -> FloatArray:
    """The GP's covariance between two sets of its inputs: the Matérn kernel,
    or on a conditional space the mixture of ``input_map``'s product and
    additive kernels (``inputs``).

    Args:
        x1: (n1, F) inputs (mapped by ``input_map`` where there is one).
        x2: (n2, F) inputs.
        lengthscales: (F,) length scales of the inputs.
        outputscale: the kernel's variance at distance zero.
        input_map: the map the inputs come from, or None.

    Returns:
        (n1, n2) covariances.
    """
    k = matern52(x1, x2, lengthscales, outputscale)
    if input_map is None:
        return k
    s1, s2 = input_map.scales(x1), input_map.scales(x2)
    k *= np.outer(s1[:, 0], s2[:, 0])
    for g, cols in enumerate(input_map.group_inputs, start=1):
        part = matern52(x1[:, cols], x2[:, cols], lengthscales[cols], outputscale)
        k += np.outer(s1[:, g], s2[:, g]) * part
    return k


def _matern52_and_grad(
    diff: FloatArray, lengthscales: FloatArray, outputscale: float
) -> tuple[FloatArray, FloatArray]:
    """Matérn-5/2 at differences ``diff`` (n, F) from a point, and its gradient in the point."""
    r = np.sqrt(np.maximum(((diff / lengthscales) ** 2).sum(axis=1), 0.0))
    e = np.exp(-_SQRT5 * r)
    k = outputscale * (1.0 + _SQRT5 * r + 5.0 / 3.0 * r * r) * e
    # the r in dr/dx cancels against the r in dk/dr, so it is smooth at r = 0
    dk = (-outputscale * 5.0 / 3.0 * (1.0 + _SQRT5 * r) * e)[:, None]
    dk = dk * diff / (lengthscales * lengthscales)
    return k, dk


def covariance_and_grad(
    x: FloatArray,
    x_train: FloatArray,
    lengthscales: FloatArray,
    outputscale: float,
    input_map: InputMap | None = None,
) -> tuple[FloatArray, FloatArray]:
    """The covariances ``(n,)`` of one input ``x`` (F,) with ``x_train`` (n, F),
    and their gradient ``(n, F)`` in ``x`` (the mixture's per-point scales are
    constant within a branch, so only the Matérn terms vary)."""
    k, dk = _matern52_and_grad(x[None, :] - x_train, lengthscales, outputscale)
    if input_map is None:
        return k, dk
    sx, st = input_map.scales(x[None, :])[0], input_map.scales(x_train)
    weight = sx[0] * st[:, 0]
    k, dk = k * weight, dk * weight[:, None]
    for g, cols in enumerate(input_map.group_inputs, start=1):
        if sx[g] == 0.0:
            continue
        diff = x[None, cols] - x_train[:, cols]
        kg, dkg = _matern52_and_grad(diff, lengthscales[cols], outputscale)
        weight = sx[g] * st[:, g]
        k += weight * kg
        dk[:, cols] += weight[:, None] * dkg
    return k, dk


def _prior_medians(dim: int) -> FloatArray:
    log_l = _LENGTHSCALE_LOG_MEDIAN + _LENGTHSCALE_DIM_POWER * math.log(max(dim, 1))
    return np.concatenate([np.full(dim, log_l), [_OUTPUTSCALE_LOG_MEDIAN, _NOISE_LOG_MEDIAN]])


def _noisy_start(dim: int) -> FloatArray:
    """A start explaining the data as smoother and noisier than the priors' medians:
    from the medians alone, the fit tends to stay in the low-noise, short length
    scale optimum even when the outcomes are noisy."""
    start = _prior_medians(dim)
    start[:dim] += math.log(2.0)
    start[-1] = _NOISY_START_LOG_NOISE
    return start


def _prior_sigmas(dim: int) -> FloatArray:
    return np.concatenate(
        [np.full(dim, _LENGTHSCALE_LOG_SIGMA), [_OUTPUTSCALE_LOG_SIGMA, _NOISE_LOG_SIGMA]]
    )


def _log_bounds(dim: int) -> tuple[FloatArray, FloatArray]:
    lo = np.log([*([_LENGTHSCALE_BOUNDS[0]] * dim), _OUTPUTSCALE_BOUNDS[0], _NOISE_BOUNDS[0]])
    hi = np.log([*([_LENGTHSCALE_BOUNDS[1]] * dim), _OUTPUTSCALE_BOUNDS[1], _NOISE_BOUNDS[1]])
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


class _Tying:
    """Length scales shared by groups of columns (a categorical parameter's
    one-hot columns): the fit's free log-parameters are one length scale per
    group, the outputscale and the noise; the kernel's are one per column.

    Without groups every column is its own group and the maps are exact
    identities (indexing, and sums and means of single values).
    """

    def __init__(self, groups: NDArray[np.intp] | None, dim: int) -> None:
        columns = np.arange(dim) if groups is None else np.asarray(groups).reshape(-1)
        if columns.shape[0] != dim:
            raise ValueError(f"length_scale_groups has {columns.shape[0]} columns, x has D={dim}")
        _, index = np.unique(columns, return_inverse=True)
        free = int(index.max()) + 1 if dim else 0
        self.index = np.concatenate([index, [free, free + 1]]).astype(np.intp)
        self.counts = np.bincount(self.index).astype(np.float64)
        # the prior of each free log-parameter: that of one length scale, with a
        # group's (a categorical parameter's) normal (``log_prior_and_grad``)
        self.medians = self.reduce(_prior_medians(dim))
        self.sigmas = self.reduce(_prior_sigmas(dim))
        # the free log-parameters with exponential tails: ungrouped length scales
        self.tails = np.concatenate([self.counts[:-2] == 1, [False, False]])

    def expand(self, free: FloatArray) -> FloatArray:
        """The kernel's (D + 2,) log-parameters of the free ones."""
        return free[self.index]

    def reduce(self, log_params: FloatArray) -> FloatArray:
        """The free log-parameters nearest to ``log_params``: each group's mean."""
        return np.bincount(self.index, weights=log_params) / self.counts

    def pull_back(self, grad: FloatArray) -> FloatArray:
        """A gradient in the kernel's log-parameters, in the free ones."""
        return np.bincount(self.index, weights=grad, minlength=len(self.counts)).astype(np.float64)

    def log_prior_and_grad(self, free: FloatArray) -> tuple[float, FloatArray]:
        """Log prior density of the free log-parameters (up to a constant) and its
        gradient: ``log_prior_and_grad`` without groups."""
        z = (free - self.medians) / self.sigmas
        tails = self.tails
        log_density = -0.25 * float(np.sum(np.cosh(2.0 * z[tails]) - 1.0)) - 0.5 * float(
            np.dot(z[~tails], z[~tails])
        )
        dz = np.where(tails, -0.5 * np.sinh(2.0 * z), -z)
        return log_density, dz / self.sigmas


def log_prior_and_grad(log_params: ArrayLike) -> tuple[float, FloatArray]:
    """Log prior density of the log-parameters and its gradient.

    With ``z`` a log-parameter less its median, over its scale (length scales:
    median ``log(0.5) + log(D) / 4``, scale 1; outputscale: median 0, scale 1;
    noise: median ``log 1e-3``, scale 2):

    - outputscale and noise: normal, ``-z^2 / 2``;
    - each length scale: ``-(cosh(2 z) - 1) / 4``, the normal's curvature at the
      median with exponential tails. A log-normal lets a fit on a few points call
      a numeric parameter irrelevant (length scales of 5-7 on the unit interval)
      where the data show no more than a trend; the GP then extrapolates the
      trend and EI pins the parameter to a bound. The steeper tails keep the
      length scale within what the data support; Optuna's GPSampler's prior on
      the inverse squared length scale, ``-0.1 (lambda + 1 / lambda)``, has this
      shape. A categorical parameter (a group of one-hot columns, ``_Tying``)
      has no bound to be pinned to, and values that act alike are a belief a
      fit may reach: its length scale keeps the normal.

    Args:
        log_params: (D + 2,) log-parameters.

    Returns:
        The log density (up to a constant) and its (D + 2,) gradient.
    """
    theta = np.asarray(log_params, dtype=np.float64)
    return _Tying(None, theta.shape[0] - 2).log_prior_and_grad(theta)


def _cholesky(k: FloatArray, diag: FloatArray) -> tuple[FloatArray, float] | None:
    """Lower Cholesky factor of ``k`` with ``diag + jitter`` on its diagonal.

    Only the lower triangle of ``k`` is read. Returns the factor (upper
    triangle zeroed) and the jitter used, or None if every jitter failed.
    """
    if not np.all(np.isfinite(diag)):
        return None
    n = k.shape[0]
    idx = np.arange(n)
    for jitter in _JITTERS:
        k[idx, idx] = diag + jitter
        chol, info = lapack.dpotrf(k, lower=1, clean=1, overwrite_a=0)
        if info == 0 and np.all(np.isfinite(np.diagonal(chol))):
            return chol, jitter
    return None


class _Evidence:
    """Log marginal likelihood of fixed data as a function of log-parameters.

    Precomputes the squared coordinate differences of every pair ``i > j``,
    so that each evaluation costs O(n^2 D) plus one Cholesky factorization
    and one inverse.
    """

    def __init__(
        self,
        x: FloatArray,
        y: FloatArray,
        extra_noise: FloatArray,
        input_map: InputMap | None = None,
    ) -> None:
        n = x.shape[0]
        self.n = n
        self.y = y
        self.extra_noise = extra_noise
        self.rows, self.cols = np.tril_indices(n, -1)
        self.flat = self.rows * n + self.cols
        self.sq = (x[self.rows] - x[self.cols]) ** 2  # (P, D)
        # the kernel's terms: (encoded columns, or None for all; per-pair weight)
        self.terms: list[tuple[NDArray[np.int64] | None, FloatArray | None]] = [(None, None)]
        if input_map is not None:
            # x holds the map's inputs: squares per length scale (the pairs' add up)
            self.sq = input_map.group_squares(self.sq)
            scales = input_map.scales(x)
            pair = scales[self.rows] * scales[self.cols]  # (P, 1 + G)
            self.terms = [(None, pair[:, 0])] + [
                (cols, pair[:, g]) for g, cols in enumerate(input_map.group_columns, start=1)
            ]

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        theta = np.asarray(log_params, dtype=np.float64)
        dim = theta.shape[0] - 2
        inv_l2 = np.exp(-2.0 * theta[:dim])
        s = math.exp(theta[dim])
        noise = math.exp(theta[dim + 1])
        n = self.n

        kf = np.zeros(len(self.rows))
        # per term: dk/d log l_d = a * dx_d^2 / l_d^2 on its columns
        slopes = []
        for cols, weight in self.terms:
            sq = self.sq if cols is None else self.sq[:, cols]
            u = np.sqrt(5.0 * (sq @ (inv_l2 if cols is None else inv_l2[cols])))
            e = np.exp(-u)
            term = s * (1.0 + u + u * u / 3.0) * e
            a = (5.0 / 3.0) * s * (1.0 + u) * e
            if weight is not None:
                term, a = term * weight, a * weight
            kf += term
            slopes.append(a)
        k = np.zeros((n, n))
        k.ravel()[self.flat] = kf
        factored = _cholesky(k, s + noise + self.extra_noise)
        if factored is None:
            return -math.inf, np.zeros_like(theta)
        chol = factored[0]
        alpha = lapack.dpotrs(chol, self.y, lower=1)[0]
        k_inv = lapack.dpotri(chol, lower=1)[0]  # lower triangle only
        lml = -0.5 * float(self.y @ alpha) - float(np.sum(np.log(np.diagonal(chol))))
        lml -= 0.5 * n * _LOG_2PI

        # d lml / d theta = 1/2 tr(W dK/dtheta), W = alpha alpha^T - K^-1.
        w_pairs = alpha[self.rows] * alpha[self.cols] - k_inv.ravel()[self.flat]
        w_diag_sum = float(alpha @ alpha - np.trace(k_inv))
        grad = np.empty_like(theta)
        grad[:dim] = 0.0
        for (cols, _), a in zip(self.terms, slopes, strict=True):
            if cols is None:
                grad[:dim] += (self.sq.T @ (w_pairs * a)) * inv_l2
            else:
                grad[cols] += (self.sq[:, cols].T @ (w_pairs * a)) * inv_l2[cols]
        grad[dim] = float(w_pairs @ kf) + 0.5 * s * w_diag_sum
        grad[dim + 1] = 0.5 * noise * w_diag_sum
        return lml, grad


def _as_noise(known_noise: ArrayLike | None, n: int) -> FloatArray:
    if known_noise is None:
        return np.zeros(n)
    noise = np.asarray(known_noise, dtype=np.float64).reshape(-1)
    if noise.shape[0] != n:
        raise ValueError(f"known_noise has {noise.shape[0]} values for {n} points")
    return np.where(np.isfinite(noise), np.maximum(noise, 0.0), 0.0)


def log_marginal_likelihood_and_grad(
    log_params: ArrayLike, x: ArrayLike, y: ArrayLike, known_noise: ArrayLike | None = None
) -> tuple[float, FloatArray]:
    """Log marginal likelihood of a zero-mean GP and its analytic gradient.

    Args:
        log_params: (D + 2,) ``[log l_1..l_D, log outputscale, log noise]``.
        x: (n, D) inputs.
        y: (n,) outputs as the GP sees them (already standardized).
        known_noise: (n,) extra noise variances on the diagonal, in the units
            of ``y``, or None.

    Returns:
        ``log p(y | x, theta)`` and its (D + 2,) gradient; ``-inf`` and zeros
        where the covariance cannot be factored.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64).reshape(-1)
    with np.errstate(all="ignore"):
        return _Evidence(xa, ya, _as_noise(known_noise, ya.shape[0]))(
            np.asarray(log_params, dtype=np.float64)
        )


def log_posterior_and_grad(
    log_params: ArrayLike, x: ArrayLike, y: ArrayLike, known_noise: ArrayLike | None = None
) -> tuple[float, FloatArray]:
    """The MAP objective (maximized by ``fit``): log marginal likelihood + log prior.

    Args:
        log_params: (D + 2,) log-parameters.
        x: (n, D) inputs.
        y: (n,) outputs, already standardized.
        known_noise: (n,) extra noise variances in the units of ``y``, or None.

    Returns:
        The objective and its (D + 2,) gradient.
    """
    lml, g_lml = log_marginal_likelihood_and_grad(log_params, x, y, known_noise)
    lp, g_lp = log_prior_and_grad(log_params)
    return lml + lp, g_lml + g_lp


class GaussianProcess:
    """Matérn-5/2 ARD Gaussian process with MAP hyperparameters.

    After :meth:`fit` (or :meth:`condition`), the following attributes let a
    compiled scorer reproduce :meth:`predict` without Python. With
    ``k = matern52(x_train, xc, lengthscales, outputscale)`` of shape (n, k)
    and ``v = solve_triangular(chol, k, lower=True)``::

        mean = y_mean + y_std * (k.T @ alpha)
        var  = y_std**2 * max(outputscale - sum(v * v, axis=0), 1e-12)

    ``var`` is the variance of the latent function (observation noise
    excluded).

    With an ``input_map`` (the arc kernel of a conditional search space,
    ``inputs.InputMap``), every method still takes encoded rows and maps them;
    ``x_train`` holds the mapped inputs, and the kernel is the map's mixture
    (``covariance``) in place of ``matern52`` (the compiled scorer takes its
    groups and each point's scales, ``scoring``).

    Attributes:
        hyperparameters: the fitted :class:`Hyperparameters` (standardized
            units); pass it as ``warm_start`` to the next fit.
        x_train: (n, D) training inputs (rows with non-finite values dropped),
            mapped by the input map when there is one ((n, F), F = ``input_map.features``).
        y_mean: the constant mean, in original units.
        y_std: the standardization scale, in original units (1 when the
            outputs are constant).
        alpha: (n,) ``(K + noise I + diag(known_noise) / y_std^2 + jitter I)^-1 y_s``
            with ``y_s = (y - y_mean) / y_std``.
        chol: (n, n) lower Cholesky factor of that same matrix.
        lengthscales: (D,) alias of ``hyperparameters.lengthscales``.
        outputscale: alias of ``hyperparameters.outputscale``.
        jitter: the diagonal jitter that made the factorization succeed.
    """

    def __init__(
        self,
        *,
        max_fit_points: int = 500,
        maxiter: int = 60,
        n_random_starts: int = 2,
        input_map: InputMap | None = None,
        length_scale_groups: NDArray[np.intp] | None = None,
        worst_mean: bool = False,
    ):
        """Configures the fit.

        Args:
            max_fit_points: above this many points, hyperparameters are fitted
                on a random subset of this size (the posterior always uses
                every point); lowered further in high dimension so that the
                fit's pairwise differences stay under 128 MiB.
            maxiter: L-BFGS-B iterations per start.
            n_random_starts: starts drawn from the priors on a cold fit, in
                addition to the priors' medians (none when warm-started).
                Each start runs L-BFGS-B until the relative decrease falls
                below 1e-6 or the projected gradient below 1e-3.
            input_map: maps encoded rows to the kernel's inputs (None: the
                rows themselves); length scales stay one per encoded column.
            length_scale_groups: (D,) a group label per encoded column; the
                fit gives columns of one group one length scale (None: one
                per column).
            worst_mean: the constant mean is the smallest output rather than
                the average (De Ath, Fieldsend & Everson 2020): far from the
                data the model expects the worst value seen, not a typical one,
                so that an acquisition weighs unexplored corners by their
                variance alone less than the surroundings of good points.
        """
        self.max_fit_points = max_fit_points
        self.maxiter = maxiter
        self.n_random_starts = n_random_starts
        self.input_map = input_map
        self.length_scale_groups = length_scale_groups
        self.worst_mean = worst_mean
        self.hyperparameters: Hyperparameters | None = None
        self.x_train: FloatArray = np.zeros((0, 0))
        self.y_mean = 0.0
        self.y_std = 1.0
        self.alpha: FloatArray = np.zeros(0)
        self.chol: FloatArray = np.zeros((0, 0))
        self.jitter = 0.0

    @property
    def lengthscales(self) -> FloatArray:
        """(D,) fitted length scales."""
        return self._fitted().lengthscales

    @property
    def outputscale(self) -> float:
        """Fitted latent variance, in standardized units."""
        return self._fitted().outputscale

    @property
    def feature_lengthscales(self) -> FloatArray:
        """The length scales of the kernel's inputs (of ``x_train``'s columns)."""
        return self._ell(self._fitted())

    def features(self, x: FloatArray) -> FloatArray:
        """The kernel's inputs of encoded rows (the rows themselves without an input map)."""
        return x if self.input_map is None else self.input_map(x)

    def _ell(self, hyper: Hyperparameters) -> FloatArray:
        m = self.input_map
        return hyper.lengthscales if m is None else m.lengthscales(hyper.lengthscales)

    def _fitted(self) -> Hyperparameters:
        if self.hyperparameters is None:
            raise RuntimeError("the GaussianProcess has not been fitted")
        return self.hyperparameters

    def fit(
        self,
        x: ArrayLike,
        y: ArrayLike,
        known_noise: ArrayLike | None = None,
        warm_start: Hyperparameters | None = None,
        *,
        rng: np.random.Generator | None = None,
    ) -> Self:
        """Fits the hyperparameters by MAP and conditions on the data.

        Never raises on numerically bad data: rows with a non-finite input or
        output are dropped, a start whose optimization fails is skipped, and
        if every start fails the warm start (or the priors' medians) is used.

        Args:
            x: (n, D) inputs in ``[0, 1]^D``.
            y: (n,) outputs, larger is better, in original units.
            known_noise: (n,) known observation noise variances in the original
                units of ``y`` (squared stddev), added on top of the fitted
                noise; None for none.
            warm_start: the previous fit's hyperparameters; with it the
                optimization starts from there, plus from the priors' medians
                when at most 200 points are fitted (no random starts).
            rng: randomness of the random starts and of the subset; a fixed
                seed by default, so that fits are reproducible.

        Returns:
            self.

        Raises:
            ValueError: if the shapes of ``x``, ``y`` and ``known_noise`` disagree.
        """
        xs, ys, noise = self._prepare(x, y, known_noise)
        dim = xs.shape[1]
        if warm_start is not None and (warm_start.dim != dim or not warm_start.is_finite()):
            warm_start = None
        fallback = warm_start if warm_start is not None else Hyperparameters.default(dim)
        hyper = fallback
        xs = self.features(xs)
        if xs.shape[0] > 0:
            rng = rng if rng is not None else np.random.default_rng(0)
            hyper = self._optimize(xs, ys, noise, warm_start, rng, dim) or fallback
        self._set_posterior(xs, ys, noise, hyper, fallback)
        return self

    def condition(
        self,
        x: ArrayLike,
        y: ArrayLike,
        hyperparameters: Hyperparameters,
        known_noise: ArrayLike | None = None,
    ) -> Self:
        """Conditions on the data with fixed hyperparameters (no fitting).

        Args:
            x: (n, D) inputs.
            y: (n,) outputs in original units.
            hyperparameters: the kernel's hyperparameters (standardized units).
            known_noise: (n,) known noise variances in original units, or None.

        Returns:
            self.
        """
        xs, ys, noise = self._prepare(x, y, known_noise)
        dim = xs.shape[1]
        if hyperparameters.dim != dim:
            raise ValueError(f"hyperparameters for D={hyperparameters.dim}, x has D={dim}")
        self._set_posterior(
            self.features(xs), ys, noise, hyperparameters, Hyperparameters.default(dim)
        )
        return self

    def log_posterior_density(self) -> float:
        """What the fit maximizes, at the conditioned hyperparameters: the log
        marginal likelihood of the standardized training outputs plus the log
        prior of the free log-parameters (one length scale per group), up to
        the same constants for any inputs. Comparable between GPs on the same
        outputs with different inputs (model selection)."""
        hyper = self._fitted()
        n = len(self.alpha)
        y = self.chol @ (self.chol.T @ self.alpha)  # the standardized outputs
        lml = -0.5 * float(y @ self.alpha) - float(np.sum(np.log(np.diag(self.chol))))
        lml -= 0.5 * n * math.log(2.0 * math.pi)
        tying = _Tying(self.length_scale_groups, hyper.dim)
        return lml + tying.log_prior_and_grad(tying.reduce(hyper.to_log_params()))[0]

    def believe(self, points: ArrayLike, noiseless: bool = False) -> GaussianProcess:
        """This posterior conditioned on its own mean at ``points`` (kriging believer).

        The mean is unchanged everywhere (the weights gain zeros for the new
        rows) and the variance shrinks near ``points``. The Cholesky factor is
        extended by the Schur complement, O(n^2 k) instead of a new O((n + k)^3)
        factorization; hyperparameters and standardization are kept.

        Args:
            points: (k, D) points under evaluation.
            noiseless: condition on the latent values at ``points`` rather than
                on noisy outcomes there (noisy EI's baseline).

        Returns:
            A new GP (this one when ``points`` is empty or the extension fails).
        """
        hyper = self._fitted()
        xp = np.asarray(points, dtype=np.float64).reshape(-1, hyper.dim)
        n, k = self.x_train.shape[0], xp.shape[0]
        if k == 0 or n == 0:
            return self
        xp = self.features(xp)
        ell = self._ell(hyper)
        with np.errstate(all="ignore"):
            cross = covariance(self.x_train, xp, ell, hyper.outputscale, self.input_map)
            b = solve_triangular(self.chol, cross, lower=True, check_finite=False)
            schur = covariance(xp, xp, ell, hyper.outputscale, self.input_map) - b.T @ b
            factored = _cholesky(
                schur,
                hyper.outputscale
                + (0.0 if noiseless else hyper.noise)
                + self.jitter
                - np.einsum("ij,ij->j", b, b),
            )
        if factored is None or not np.all(np.isfinite(b)):
            return self
        chol = np.zeros((n + k, n + k))
        chol[:n, :n] = self.chol
        chol[n:, :n] = b.T
        chol[n:, n:] = factored[0]
        out = GaussianProcess(
            max_fit_points=self.max_fit_points,
            maxiter=self.maxiter,
            n_random_starts=self.n_random_starts,
            input_map=self.input_map,
            length_scale_groups=self.length_scale_groups,
            worst_mean=self.worst_mean,
        )
        out.hyperparameters = hyper
        out.x_train = np.vstack([self.x_train, xp])
        out.y_mean, out.y_std = self.y_mean, self.y_std
        out.alpha = np.concatenate([self.alpha, np.zeros(k)])
        out.chol = chol
        out.jitter = self.jitter
        return out

    def mean(self, xc: ArrayLike) -> FloatArray:
        """Posterior mean alone (no variance: no triangular solve), original units.

        Args:
            xc: (k, D) points.

        Returns:
            (k,) the mean of :meth:`predict`, up to rounding.
        """
        hyper = self._fitted()
        xq = self.features(np.asarray(xc, dtype=np.float64).reshape(-1, hyper.dim))
        ell = self._ell(hyper)
        mean = np.zeros(xq.shape[0])
        block = max(1, _BLOCK_ELEMENTS // max(self.x_train.shape[0], 1))
        if self.x_train.shape[0] > 0:
            for start in range(0, xq.shape[0], block):
                part = slice(start, start + block)
                kx = covariance(self.x_train, xq[part], ell, hyper.outputscale, self.input_map)
                mean[part] = kx.T @ self.alpha
        return self.y_mean + self.y_std * mean

    def predict(self, xc: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Posterior mean and variance of the latent function.

        Args:
            xc: (k, D) candidate points.

        Returns:
            ``(mean, var)``, each (k,), in original units of ``y`` (``var`` in
            squared units, floored at a tiny positive value).
        """
        hyper = self._fitted()
        xq = np.asarray(xc, dtype=np.float64)
        if xq.ndim != 2 or xq.shape[1] != hyper.dim:
            raise ValueError(f"expected candidates of shape (k, {hyper.dim}), got {xq.shape}")
        xq = self.features(xq)
        ell = self._ell(hyper)
        count = xq.shape[0]
        n = self.x_train.shape[0]
        mean = np.zeros(count)
        var = np.full(count, hyper.outputscale)
        block = max(1, _BLOCK_ELEMENTS // max(n, 1))
        if n > 0:
            for start in range(0, count, block):
                part = slice(start, start + block)
                kx = covariance(self.x_train, xq[part], ell, hyper.outputscale, self.input_map)
                mean[part] = kx.T @ self.alpha
                v = solve_triangular(self.chol, kx, lower=True, check_finite=False)
                var[part] -= np.einsum("ij,ij->j", v, v)
        np.maximum(var, _VAR_FLOOR, out=var)
        return self.y_mean + self.y_std * mean, self.y_std**2 * var

    def _prepare(
        self, x: ArrayLike, y: ArrayLike, known_noise: ArrayLike | None
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Validates shapes, drops non-finite rows, standardizes ``y``."""
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64).reshape(-1)
        if xa.ndim != 2 or xa.shape[0] != ya.shape[0]:
            raise ValueError(f"x must be (n, D) with n = len(y); got {xa.shape} and {ya.shape}")
        noise = _as_noise(known_noise, ya.shape[0])
        keep = np.all(np.isfinite(xa), axis=1) & np.isfinite(ya)
        xa, ya, noise = xa[keep], ya[keep], noise[keep]
        if ya.size:
            self.y_mean = float(np.min(ya) if self.worst_mean else np.mean(ya))
        else:
            self.y_mean = 0.0
        std = float(np.std(ya)) if ya.size else 0.0
        # constant up to rounding, relative to the values' own magnitude (not to 1:
        # values in tiny units are not constant for being small)
        scale = float(np.max(np.abs(ya))) if ya.size else 0.0
        self.y_std = std if math.isfinite(std) and std > 1e-12 * scale else 1.0
        return xa, (ya - self.y_mean) / self.y_std, noise / self.y_std**2

    def _optimize(
        self,
        x: FloatArray,
        y: FloatArray,
        noise: FloatArray,
        warm_start: Hyperparameters | None,
        rng: np.random.Generator,
        dim: int,
    ) -> Hyperparameters | None:
        """Best MAP hyperparameters over the starts, or None if every start failed
        (``x``: the kernel's inputs; ``dim``: the number of length scales)."""
        n, width = x.shape
        # The fit keeps (n^2 / 2, D) pairwise differences: bound their memory too.
        cap = min(self.max_fit_points, max(2, int(math.sqrt(2 * _MAX_PAIR_ELEMENTS / width))))
        if n > cap:
            subset = np.sort(rng.choice(n, size=cap, replace=False))
            x, y, noise = x[subset], y[subset], noise[subset]
        # The optimization runs over the free log-parameters (one length scale
        # per group), each with the prior of one length scale.
        tying = _Tying(self.length_scale_groups, dim)
        lo, hi = (tying.reduce(bound) for bound in _log_bounds(dim))
        medians = tying.medians
        starts = [medians]
        if warm_start is not None:
            # The warm start tracks the optimum as data arrives; the priors'
            # medians guard against a stale local optimum where that is cheap.
            starts = [tying.reduce(warm_start.to_log_params())]
            if x.shape[0] <= _WARM_SECOND_START_MAX_POINTS:
                starts.append(medians)
        else:
            starts.append(tying.reduce(_noisy_start(dim)))
            for _ in range(self.n_random_starts):
                starts.append(rng.normal(medians, tying.sigmas))
        evidence = _Evidence(x, y, noise, self.input_map)

        def objective(free: FloatArray) -> tuple[float, FloatArray]:
            lml, g_lml = evidence(tying.expand(free))
            lp, g_lp = tying.log_prior_and_grad(free)
            value = -(lml + lp)
            if not math.isfinite(value) or not np.all(np.isfinite(g_lml)):
                return _BAD_OBJECTIVE, np.zeros_like(free)
            return value, -(tying.pull_back(g_lml) + g_lp)

        best: FloatArray | None = None
        best_value = math.inf
        with np.errstate(all="ignore"):
            for start in starts:
                theta0 = np.clip(start, lo, hi)
                try:
                    result = optimize.minimize(
                        objective,
                        theta0,
                        jac=True,
                        method="L-BFGS-B",
                        bounds=list(zip(lo, hi, strict=True)),
                        options={"maxiter": self.maxiter, "ftol": _FTOL, "gtol": _GTOL},
                    )
                except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                    continue
                value = float(result.fun)
                if value < _BAD_OBJECTIVE and value < best_value and np.all(np.isfinite(result.x)):
                    best, best_value = np.clip(result.x, lo, hi), value
        return None if best is None else Hyperparameters.from_log_params(tying.expand(best))

    def _set_posterior(
        self,
        x: FloatArray,
        y: FloatArray,
        noise: FloatArray,
        hyper: Hyperparameters,
        fallback: Hyperparameters,
    ) -> None:
        """Factors the covariance and stores the posterior's factors (``x``: the
        kernel's inputs)."""
        n = x.shape[0]
        if n == 0:
            self.hyperparameters = hyper
            self.x_train, self.chol, self.alpha, self.jitter = x, np.zeros((0, 0)), np.zeros(0), 0.0
            return
        with np.errstate(all="ignore"):
            for candidate in (hyper, fallback, Hyperparameters.default(hyper.dim)):
                k = covariance(x, x, self._ell(candidate), candidate.outputscale, self.input_map)
                factored = _cholesky(k, candidate.outputscale + candidate.noise + noise)
                if factored is not None:
                    break
            else:  # only reachable with non-finite hyperparameters everywhere
                candidate = Hyperparameters.default(hyper.dim)
                factored = (np.diag(np.sqrt(candidate.outputscale + 1.0 + noise)), 1.0)
            chol, jitter = factored
            alpha = lapack.dpotrs(chol, y, lower=1)[0]
        self.hyperparameters = candidate
        self.x_train = x
        self.chol = chol
        self.alpha = alpha
        self.jitter = jitter
