"""Scoring many candidates under one fitted GP: log expected improvement.

:class:`AcquisitionScorer` holds a fitted :class:`~.model.GaussianProcess`'s
factors and an incumbent, and scores candidate rows by the compiled kernel
(``optserve._sampler.GpScorer``: the factors validated and copied once, then
blocked forward substitution without the GIL) or, with ``backend="numpy"``,
by ``gp.predict`` followed by :func:`~.acquisition.log_expected_improvement`,
the reference the kernel is tested against and the benchmark's baseline.
Candidates are encoded rows. Under a GP with an input map (a conditional
space) they are mapped to the GP's inputs here, and the compiled kernel gets
the mixture's groups and each point's scales.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ... import _sampler
from .acquisition import log_expected_improvement
from .model import GaussianProcess

__all__ = ["AcquisitionScorer", "Backend", "compiled_inputs", "compiled_scorer"]

FloatArray = NDArray[np.float64]
Backend = Literal["rust", "numpy"]


class AcquisitionScorer:
    """Log EI of a fitted GP over an incumbent, for maximization.

    The GP's factors are copied (C-contiguous) once at construction, so a
    scorer can be called many times cheaply; later changes to the GP are not
    seen.
    """

    def __init__(self, gp: GaussianProcess, incumbent: float, *, backend: Backend = "rust") -> None:
        """Captures the factors.

        Args:
            gp: a fitted (or conditioned) GP.
            incumbent: the value to improve on, original units of ``y``.
            backend: ``"rust"`` (the compiled kernel) or ``"numpy"``.

        Raises:
            RuntimeError: if ``gp`` has not been fitted.
            ValueError: a non-finite ``incumbent`` or an unknown backend.
        """
        if gp.hyperparameters is None:
            raise RuntimeError("the GaussianProcess has not been fitted")
        if backend not in ("rust", "numpy"):
            raise ValueError(f"backend must be 'rust' or 'numpy', got {backend!r}")
        if not math.isfinite(incumbent):
            raise ValueError(f"incumbent must be finite, got {incumbent}")
        self.gp = gp
        self.incumbent = float(incumbent)
        self.backend: Backend = backend
        self.dim = gp.hyperparameters.dim
        self._compiled = compiled_scorer(gp) if backend == "rust" else None

    @property
    def compiled(self) -> _sampler.GpScorer | None:
        """The compiled kernel's copy of the factors (None with ``backend="numpy"``),
        for the compiled maximizer: None as well under a mixture kernel, whose
        candidates the maximizer could not map."""
        return None if self.gp.input_map is not None else self._compiled

    def _rows(self, rows: ArrayLike) -> FloatArray:
        xq = np.ascontiguousarray(rows, dtype=np.float64)
        if xq.ndim != 2 or xq.shape[1] != self.dim:
            raise ValueError(f"expected candidates of shape (k, {self.dim}), got {xq.shape}")
        if not np.all(np.isfinite(xq)):
            raise ValueError("candidates contain NaN or infinity")
        return xq

    def predict(self, rows: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Posterior mean and variance, as :meth:`GaussianProcess.predict`.

        Args:
            rows: (k, D) candidates.

        Returns:
            ``(mean, var)``, each (k,), original units.

        Raises:
            ValueError: wrong shape, NaN or infinity in ``rows``.
        """
        xq = self._rows(rows)
        if self._compiled is None:
            return self.gp.predict(xq)
        return self._compiled.posterior(*compiled_inputs(self.gp, xq))

    def log_ei(self, rows: ArrayLike) -> FloatArray:
        """Log expected improvement over the incumbent.

        Args:
            rows: (k, D) candidates.

        Returns:
            (k,) ``log EI``, finite for every finite candidate.

        Raises:
            ValueError: wrong shape, NaN or infinity in ``rows``.
        """
        xq = self._rows(rows)
        if self._compiled is None:
            mean, var = self.gp.predict(xq)
            return log_expected_improvement(mean, np.sqrt(var), self.incumbent)
        inputs, scales = compiled_inputs(self.gp, xq)
        return self._compiled.log_ei(inputs, self.incumbent, scales)


def compiled_scorer(gp: GaussianProcess) -> _sampler.GpScorer:
    """The compiled kernel's copy of a fitted GP's factors (and its mixture's)."""
    mixture: dict[str, object] = {}
    if gp.input_map is not None:
        mixture = {
            "groups": [[int(j) for j in g] for g in gp.input_map.group_inputs],
            "train_scales": np.ascontiguousarray(gp.input_map.scales(gp.x_train)),
        }
    return _sampler.GpScorer(
        np.ascontiguousarray(gp.x_train, dtype=np.float64),
        np.ascontiguousarray(gp.alpha, dtype=np.float64),
        np.ascontiguousarray(gp.chol, dtype=np.float64),
        np.ascontiguousarray(gp.feature_lengthscales, dtype=np.float64),
        float(gp.outputscale),
        float(gp.y_mean),
        float(gp.y_std),
        **mixture,  # type: ignore[arg-type]
    )


def compiled_inputs(gp: GaussianProcess, xq: FloatArray) -> tuple[FloatArray, FloatArray | None]:
    """What the compiled kernel scores for encoded rows: the GP's inputs, and
    their scales under a mixture kernel."""
    m = gp.input_map
    if m is None:
        return xq, None
    inputs = np.ascontiguousarray(m(xq))
    return inputs, np.ascontiguousarray(m.scales(inputs))
