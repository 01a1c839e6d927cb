"""Expected improvement integrated over the unknown outcomes of pending points.

Snoek, Larochelle & Adams (2012), "Practical Bayesian Optimization of Machine
Learning Algorithms", section 3.3: while points are under evaluation, the
acquisition of a candidate is its expected improvement averaged over the
pending outcomes, estimated by Monte Carlo over S joint draws ("fantasies")
of those outcomes from the GP's predictive distribution, the GP conditioned on
each draw with the same hyperparameters.

Only the targets differ between fantasies, so they share one factor: with
``L`` the Cholesky factor of the GP extended by the pending rows (``believe``,
whose lower-right block ``L_S`` factors the pending outcomes' predictive
covariance, noise included) and the pending outcomes drawn as
``y_P = mu_P + L_S z`` (``z ~ N(0, I)``), the whitened targets are ``[w; z]``,
so the posterior of fantasy ``j`` at ``x`` has the believer's variance and the
mean ``mu(x) + v_P(x) . z_j`` with ``v = L^-1 k(X, x)`` (``v_P`` its pending
rows), that is ``k(X, x) . (alpha + L^-T [0; z_j])``: S weight vectors
solved once, so that scoring candidates costs one variance and S dot products
of length n, and the compiled kernel scores them as a GP with S means
(``_sampler.GpScorer.with_means``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_solve, solve_triangular
from scipy.special import log_ndtr

from ... import _sampler
from .acquisition import log_expected_improvement, log_h
from .model import GaussianProcess, covariance, covariance_and_grad
from .scoring import Backend, compiled_inputs, compiled_scorer

__all__ = ["Fantasies"]

FloatArray = NDArray[np.float64]

# Candidates scored at once (bounds the (n + k, block) buffers).
_BLOCK = 2048
_VAR_FLOOR = 1e-12


def _logsumexp(values: FloatArray, axis: int = -1) -> FloatArray:
    """``log(sum(exp(values)))`` along ``axis`` (scipy's costs ~1 ms a call in overhead)."""
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis)


class Fantasies:
    """A GP conditioned on S joint draws of its pending points' outcomes.

    Args:
        believing: the GP extended by the pending rows (``GaussianProcess.believe``):
            its last ``len(believing.x_train) - observed`` training rows are pending.
        observed: how many training rows are observations.
        draws: (k, S) standard normal draws, one column per fantasy.
        backend: ``"rust"`` scores candidates by the compiled kernel, ``"numpy"``
            by NumPy (the reference).

    Raises:
        numpy.linalg.LinAlgError: where the factor is too ill-conditioned for
            finite weights.
    """

    def __init__(
        self,
        believing: GaussianProcess,
        observed: int,
        draws: FloatArray,
        backend: Backend = "rust",
    ) -> None:
        hyper = believing.hyperparameters
        if hyper is None:
            raise RuntimeError("the GaussianProcess has not been fitted")
        pending = len(believing.x_train) - observed
        if draws.ndim != 2 or draws.shape[0] != pending:
            raise ValueError(f"expected draws of shape ({pending}, S), got {draws.shape}")
        self.gp = believing
        self.observed = observed
        self.draws = np.ascontiguousarray(draws, dtype=np.float64)
        self.incumbents = np.zeros(draws.shape[1])
        # fantasy j's mean is k(X, x) . weights[:, j] (standardized units)
        whitened = np.zeros((len(believing.x_train), self.samples))
        whitened[observed:] = self.draws
        self.weights = believing.alpha[:, None] + solve_triangular(
            believing.chol, whitened, lower=True, trans="T", check_finite=False
        )
        if not np.all(np.isfinite(self.weights)):
            raise np.linalg.LinAlgError("the fantasies' weights are not finite")
        self._compiled = (
            compiled_scorer(believing).with_means(np.ascontiguousarray(self.weights))
            if backend == "rust"
            else None
        )

    @property
    def compiled(self) -> _sampler.GpScorer | None:
        """The compiled kernel's GP with the fantasies' means, for the compiled
        maximizer (None with the NumPy backend or under a mixture kernel)."""
        return None if self.gp.input_map is not None else self._compiled

    @property
    def samples(self) -> int:
        return int(self.draws.shape[1])

    def _rows(self, rows: FloatArray) -> FloatArray:
        """Encoded rows as a C-contiguous (m, D) array."""
        hyper = self.gp.hyperparameters
        assert hyper is not None
        return np.ascontiguousarray(rows, dtype=np.float64).reshape(-1, hyper.dim)

    def posterior(self, rows: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Each fantasy's posterior mean, (m, S), and the shared variance, (m,),
        in original units."""
        gp = self.gp
        hyper = gp.hyperparameters
        assert hyper is not None
        rows = self._rows(rows)
        if self._compiled is not None:
            means, var = self._compiled.posterior(*compiled_inputs(gp, rows))
            return means.reshape(len(rows), self.samples), var
        xq = gp.features(rows)
        ell = gp.feature_lengthscales
        means = np.empty((len(xq), self.samples))
        var = np.empty(len(xq))
        for start in range(0, len(xq), _BLOCK):
            part = slice(start, start + _BLOCK)
            kx = covariance(gp.x_train, xq[part], ell, hyper.outputscale, gp.input_map)
            v = solve_triangular(gp.chol, kx, lower=True, check_finite=False)
            means[part] = kx.T @ self.weights
            var[part] = hyper.outputscale - np.einsum("ij,ij->j", v, v)
        np.maximum(var, _VAR_FLOOR, out=var)
        return gp.y_mean + gp.y_std * means, gp.y_std**2 * var

    def set_incumbents(self, incumbent: float, eligible: FloatArray) -> None:
        """Each fantasy's incumbent: the best of ``incumbent`` and that fantasy's
        posterior mean at the ``eligible`` pending rows."""
        self.incumbents = np.full(self.samples, float(incumbent))
        if len(eligible):
            means, _ = self.posterior(eligible)
            self.incumbents = np.maximum(self.incumbents, means.max(axis=0))

    def log_ei(self, rows: FloatArray) -> FloatArray:
        """``log((1/S) sum_j EI_j(x))``, each fantasy over its own incumbent."""
        if self._compiled is not None:
            inputs, scales = compiled_inputs(self.gp, self._rows(rows))
            return self._compiled.log_ei(inputs, self.incumbents, scales)
        means, var = self.posterior(rows)
        per = log_expected_improvement(means, np.sqrt(var)[:, None], self.incumbents[None, :])
        return _logsumexp(per, axis=1) - math.log(self.samples)

    def log_ei_and_grad(self, x: FloatArray) -> tuple[float, FloatArray]:
        """:meth:`log_ei` at one point (D,) and its gradient in ``x``."""
        m = self.gp.input_map
        if m is not None:  # in the kernel's inputs, then back through the map
            value, grad = self._log_ei_and_grad(m(x[None, :])[0])
            return value, m.pull_back(x, grad)
        return self._log_ei_and_grad(x)

    def _log_ei_and_grad(self, x: FloatArray) -> tuple[float, FloatArray]:
        gp = self.gp
        hyper = gp.hyperparameters
        assert hyper is not None
        s = hyper.outputscale
        k, dk = covariance_and_grad(x, gp.x_train, gp.feature_lengthscales, s, gp.input_map)
        mean = gp.y_mean + gp.y_std * (k @ self.weights)  # (S,)
        dmean = gp.y_std * (self.weights.T @ dk)  # (S, D)
        w = cho_solve((gp.chol, True), k, check_finite=False)  # K^-1 k
        var_std = s - float(k @ w)
        if var_std > _VAR_FLOOR:
            dvar = gp.y_std**2 * (-2.0 * (w @ dk))
        else:
            var_std, dvar = _VAR_FLOOR, np.zeros_like(x)
        std = math.sqrt(gp.y_std**2 * var_std)
        dstd = dvar / (2.0 * std)
        z = (mean - self.incumbents) / std
        lh = log_h(z)
        # d log h / dz = Phi(z) / h(z), in logs for stability far below the incumbent
        dlogh = np.exp(log_ndtr(z) - lh)
        dz = (dmean - z[:, None] * dstd[None, :]) / std
        per = lh + math.log(std)
        per_grad = dlogh[:, None] * dz + (dstd / std)[None, :]
        norm = float(_logsumexp(per))
        total = norm - math.log(self.samples)
        weights = np.exp(per - norm)
        return total, weights @ per_grad
