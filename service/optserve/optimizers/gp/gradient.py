"""Log expected improvement with its gradient in the inputs, for a local
gradient-based polish of the acquisition over continuous coordinates."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_solve
from scipy.special import log_ndtr

from .acquisition import log_h
from .model import GaussianProcess, covariance_and_grad


def log_ei_and_grad(
    gp: GaussianProcess, x: NDArray[np.float64], incumbent: float
) -> tuple[float, NDArray[np.float64]]:
    """log EI at one point and its gradient.

    Args:
        gp: a fitted GP (its ``x_train``, ``alpha``, ``chol``, length scales,
            output scale and standardization are used as documented there).
        x: (D,) the point, in the unit cube (an encoded row: the GP's input
            map, if any, is applied and the gradient pulled back through it).
        incumbent: the value to improve on, in original units.

    Returns:
        (log EI, d log EI / dx of shape (D,)).
    """
    if gp.input_map is not None:
        value, grad = _log_ei_and_grad(gp, gp.input_map(x[None, :])[0], incumbent)
        return value, gp.input_map.pull_back(x, grad)
    return _log_ei_and_grad(gp, x, incumbent)


def _log_ei_and_grad(
    gp: GaussianProcess, x: NDArray[np.float64], incumbent: float
) -> tuple[float, NDArray[np.float64]]:
    """``log_ei_and_grad`` in the kernel's inputs (``x`` like a row of ``gp.x_train``)."""
    s = gp.outputscale
    k, dk = covariance_and_grad(x, gp.x_train, gp.feature_lengthscales, s, gp.input_map)
    mean = gp.y_mean + gp.y_std * float(k @ gp.alpha)
    dmean = gp.y_std * (gp.alpha @ dk)
    w = cho_solve((gp.chol, True), k)
    var_std = max(s - float(k @ w), 1e-12)
    var = gp.y_std**2 * var_std
    dvar = gp.y_std**2 * (-2.0 * (w @ dk)) if var_std > 1e-12 else np.zeros_like(x)
    std = math.sqrt(var)
    dstd = dvar / (2.0 * std)
    z = (mean - incumbent) / std
    log_h_z = float(log_h(np.array([z]))[0])
    # d log h / dz = Phi(z) / h(z), computed in logs for stability far below the incumbent
    dlogh = math.exp(float(log_ndtr(z)) - log_h_z)
    dz = (dmean - z * dstd) / std
    return log_h_z + math.log(std), dlogh * dz + dstd / std
