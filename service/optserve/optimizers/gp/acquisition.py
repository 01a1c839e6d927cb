"""Acquisition functions for maximization, on the GP's posterior mean and stddev.

Log expected improvement follows Ament et al., "Unexpected Improvements to
Expected Improvement for Bayesian Optimization" (NeurIPS 2023): with
``z = (mean - best) / std``, ``EI = std * h(z)`` and ``h(z) = phi(z) + z Phi(z)``,
and ``log h`` is evaluated in three regimes so that it stays finite, accurate
and increasing for every finite ``z``:

- ``z > -1``: ``log(phi(z) + z Phi(z))`` directly (no cancellation there);
- ``-100 < z <= -1``: ``-z^2/2 - log(2 pi)/2 + log1mexp(log(erfcx(-z/sqrt 2) |z|) + log(pi/2)/2)``,
  the scaled complementary error function removing the underflow of
  ``phi`` and ``Phi``;
- ``z <= -100``: the asymptotic series
  ``h(z) = phi(z) / z^2 * (1 - 3/z^2 + 15/z^4 - 105/z^6 + 945/z^8 - ...)``, more
  accurate there than the erfcx form (whose ``1 - x`` loses ``eps z^2`` of
  relative precision) and needing no cut-off at ``1/sqrt(eps)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfcx, ndtr

__all__ = ["log_expected_improvement"]

FloatArray = NDArray[np.float64]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_HALF_LOG_PI_OVER_2 = 0.5 * math.log(math.pi / 2.0)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_ASYMPTOTIC_BELOW = -100.0
# Floor of the posterior stddev, so that a zero stddev gives a finite z.
_STD_FLOOR = 1e-100


def _log1mexp(x: FloatArray) -> FloatArray:
    """``log(1 - exp(x))`` for ``x < 0``, accurate on both sides of ``-log 2``."""
    return np.where(
        x > -math.log(2.0),
        np.log(-np.expm1(np.minimum(x, 0.0))),
        np.log1p(-np.exp(np.minimum(x, -math.log(2.0)))),
    )


def log_h(z: ArrayLike) -> FloatArray:
    """``log(phi(z) + z Phi(z))``, stable for every finite ``z``.

    Args:
        z: standardized improvements, any shape.

    Returns:
        ``log h(z)`` with the shape of ``z``; NaN where ``z`` is NaN.
    """
    za = np.asarray(z, dtype=np.float64)
    out = np.full(za.shape, np.nan)
    with np.errstate(all="ignore"):
        direct = za > -1.0
        zz = za[direct]
        out[direct] = np.log(np.exp(-0.5 * zz * zz - _HALF_LOG_2PI) + zz * ndtr(zz))

        middle = (za <= -1.0) & (za > _ASYMPTOTIC_BELOW)
        zz = za[middle]
        scaled = np.log(erfcx(-zz * _INV_SQRT2) * -zz) + _HALF_LOG_PI_OVER_2
        out[middle] = -0.5 * zz * zz - _HALF_LOG_2PI + _log1mexp(scaled)

        tail = za <= _ASYMPTOTIC_BELOW
        zz = za[tail]
        w = 1.0 / (zz * zz)
        series = w * (-3.0 + w * (15.0 + w * (-105.0 + w * 945.0)))
        out[tail] = -0.5 * zz * zz - _HALF_LOG_2PI - 2.0 * np.log(-zz) + np.log1p(series)
    return out


def log_expected_improvement(mean: ArrayLike, std: ArrayLike, best: ArrayLike) -> FloatArray:
    """Log expected improvement over ``best`` for maximization.

    ``EI = E[max(f - best, 0)]`` for ``f ~ N(mean, std^2)``; the log is finite
    and increasing in ``mean`` however far below ``best`` the mean lies.

    Args:
        mean: posterior means, any shape (e.g. (k,)).
        std: posterior stddevs (not variances), broadcastable to ``mean``;
            floored at 1e-100.
        best: the incumbent value, broadcastable (usually a scalar), in the
            units of ``mean``.

    Returns:
        ``log EI`` with the broadcast shape of the inputs.
    """
    sd = np.maximum(np.asarray(std, dtype=np.float64), _STD_FLOOR)
    z = (np.asarray(mean, dtype=np.float64) - np.asarray(best, dtype=np.float64)) / sd
    return log_h(z) + np.log(sd)
