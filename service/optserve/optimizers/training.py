"""The Bayesian optimizer's training data: the history as arrays, and the
(inputs, outputs, noise) a Gaussian process is fitted on.

Failed observations take the worst observed value, which makes their region
unattractive. Two optimized metrics are scalarized by a random augmented
Chebyshev weight (ParEGO), drawn from the suggestion's generator. Long bad
tails are warped away (Yeo-Johnson) unless the noise is known. A metric whose
values come near the largest double is scaled down by a power of two
(``outcome_scale``), exactly and in order, so that the models' sums, squares
and predictions stay finite; one whose values come near the smallest is
scaled up, so that their differences do not vanish.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

from ..domain.best import satisfies_constraints
from ..domain.encoding import Encoder
from ..domain.model import Assignments, Experiment, Metric, Objective, Observation

WARP_OUTPUTS = True
# warp only when the bad tail is long (skewness below this)
WARP_SKEW = -1.0
CHEBYSHEV_RHO = 0.05
# A metric's values are scaled so that the largest magnitude is at most
# 2 ** OUTCOME_EXPONENT (about 1e77), where squares and sums of them stay finite,
# and, unless every value is 0, at least 2 ** -OUTCOME_EXPONENT, where squares of
# their differences stay above the smallest double.
OUTCOME_EXPONENT = 256


def sign(metric: Metric) -> float:
    """+1 for a maximized metric, -1 for a minimized one: larger is better after it."""
    return 1.0 if metric.objective is Objective.MAXIMIZE else -1.0


@dataclass(frozen=True)
class TrainingData:
    """What a model of the objective is fitted on.

    Attributes:
        x: (n, D) encoded inputs, the successful observations first, then the failed ones.
        y: (n,) outputs, larger is better (scalarized, warped, failures at the worst value).
        noise: (n,) known noise variances in the units of ``y``, or None.
        n_done: the number of successful rows (the first ``n_done`` of ``x``).
        feasible: (n_done,) whether each successful row meets every constraint metric.
    """

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    noise: NDArray[np.float64] | None
    n_done: int
    feasible: NDArray[np.bool_]

    @property
    def x_done(self) -> NDArray[np.float64]:
        return self.x[: self.n_done]

    @property
    def y_done(self) -> NDArray[np.float64]:
        return self.y[: self.n_done]

    def key(self) -> bytes:
        """Identifies the data (points of one batch share a fit of the same data)."""
        return self.x.tobytes() + self.y.tobytes()


class History:
    """Every observation of an experiment as arrays, in creation order, encoded once."""

    def __init__(
        self,
        exp: Experiment,
        observations: list[Observation],
        encoder: Encoder,
    ) -> None:
        self.experiment = exp
        self.observations = observations
        metrics = exp.optimized_metrics
        names = [m.name for m in metrics]
        self.failed = np.array([o.failed for o in observations], dtype=bool)
        self.usable = np.array(
            [not o.failed and all(o.value_of(n) is not None for n in names) for o in observations],
            dtype=bool,
        )
        self.x = encoder.encode([with_defaults(exp, o.assignments) for o in observations])
        # signed optimized values of the successful rows (NaN elsewhere)
        self.values = np.full((len(observations), len(metrics)), np.nan)
        for row in np.flatnonzero(self.usable):
            o = observations[row]
            self.values[row] = [sign(m) * float(o.value_of(m.name) or 0.0) for m in metrics]
        # per metric, the power of two its values (and thresholds) are scaled by
        self.scales = np.array([outcome_scale(self.values[:, j]) for j in range(len(metrics))])
        self.values *= self.scales
        # stddev of the single optimized metric, where reported
        self.stddev = np.full(len(observations), np.nan)
        self.has_stddev = np.zeros(len(observations), dtype=bool)
        if len(metrics) == 1:
            for i, o in enumerate(observations):
                s = next((v.stddev for v in o.values if v.name == names[0]), None)
                if s is not None:
                    self.stddev[i], self.has_stddev[i] = s * self.scales[0], True
        self.feasible = np.array(
            [
                bool(u) and satisfies_constraints(exp, o)
                for u, o in zip(self.usable, observations, strict=True)
            ],
            dtype=bool,
        )
        self._single: TrainingData | None = None

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def done(self) -> list[Observation]:
        """The successful observations, in order."""
        return [o for o, u in zip(self.observations, self.usable, strict=True) if u]

    def prefix(self, size: int) -> History:
        """The history of the first ``size`` observations."""
        if size == len(self):
            return self
        out = object.__new__(History)
        out.experiment = self.experiment
        out.observations = self.observations[:size]
        for name in ("failed", "usable", "x", "values", "stddev", "has_stddev", "feasible"):
            setattr(out, name, getattr(self, name)[:size])
        out.scales = self.scales
        out._single = None
        return out

    def records(self) -> NDArray[np.float64]:
        """(N, width) one row of everything the training data depends on per observation."""
        return np.ascontiguousarray(
            np.column_stack(
                [
                    self.x,
                    self.values,
                    np.where(self.has_stddev, self.stddev, np.nan),
                    self.failed,
                    self.usable,
                    self.feasible,
                ]
            ),
            dtype=np.float64,
        )

    def training(self, rng: np.random.Generator) -> TrainingData:
        """The model's training data; ``rng`` draws the scalarization of two metrics
        (with one, the data does not depend on it and is computed once)."""
        single = len(self.experiment.optimized_metrics) == 1
        if single and self._single is not None:
            return self._single
        data = self._training(rng)
        if single:
            self._single = data
        return data

    def _training(self, rng: np.random.Generator) -> TrainingData:
        exp = self.experiment
        done = self.usable
        y_done = objective(exp, self.values[done], rng, self.scales)
        noise = self._known_noise()
        if WARP_OUTPUTS and noise is None:
            y_done = warp(y_done)
        n_failed = int(self.failed.sum())
        x = np.vstack([self.x[done], self.x[self.failed]])
        y = np.concatenate([y_done, np.full(n_failed, y_done.min())])
        return TrainingData(x, y, noise, int(done.sum()), self.feasible[done])

    def _known_noise(self) -> NDArray[np.float64] | None:
        if len(self.experiment.optimized_metrics) != 1:
            return None
        has = self.has_stddev[self.usable]
        if not has.any():
            return None
        s = self.stddev[self.usable]
        noise = np.where(has, s * s, 0.0)
        return np.concatenate([noise, np.zeros(int(self.failed.sum()))])


def objective(
    exp: Experiment,
    values: NDArray[np.float64],
    rng: np.random.Generator,
    scales: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """The scalar to maximize for each row of signed optimized values (scaled by
    ``scales``, per metric, as ``History.values`` are)."""
    metrics = exp.optimized_metrics
    if len(metrics) == 1:
        return values[:, 0]
    scales = np.ones(len(metrics)) if scales is None else scales
    lo, hi = values.min(axis=0), values.max(axis=0)
    # A threshold bounds the region of interest: values short of it score below zero.
    for j, m in enumerate(metrics):
        threshold = scaled_threshold(m, scales[j])
        if threshold is None:
            continue
        if threshold < hi[j]:
            lo[j] = max(lo[j], threshold)
    scaled = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    weights = rng.dirichlet(np.ones(len(metrics)))
    weighted = scaled * weights
    return weighted.min(axis=1) + CHEBYSHEV_RHO * weighted.sum(axis=1)


def scaled_threshold(metric: Metric, scale: float) -> float | None:
    """The metric's threshold signed (larger is better) and scaled as its values
    are (``outcome_scale``); infinite, quietly, where that puts it beyond every
    double (values near 1e-300 against a threshold of 1e100: never or always met)."""
    if metric.threshold is None:
        return None
    return sign(metric) * metric.threshold * float(scale)


def outcome_scale(values: NDArray[np.float64]) -> float:
    """The power of two that brings the largest finite magnitude of ``values``
    between ``2 ** -OUTCOME_EXPONENT`` and ``2 ** OUTCOME_EXPONENT`` (1.0 when it
    is there already, or every value is 0): scaling by it is exact and keeps the
    order, and the models standardize anyway. Above, squares and sums would
    overflow; below, the squares of the differences would vanish, and values
    measured in tiny units would read as constant."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 0.0
    exponent = math.frexp(top)[1]  # top = m * 2 ** exponent, 0.5 <= m < 1
    if top > 2.0**OUTCOME_EXPONENT:
        return math.ldexp(1.0, OUTCOME_EXPONENT - exponent)
    if 0.0 < top < 2.0**-OUTCOME_EXPONENT:
        return math.ldexp(1.0, 1 - OUTCOME_EXPONENT - exponent)
    return 1.0


def with_defaults(exp: Experiment, assignments: Assignments) -> Assignments:
    """``assignments`` with every active parameter it lacks at its ``default_value``:
    the value SigOpt assumes for observations made before a parameter existed."""
    missing = [
        p
        for p in exp.parameters
        if p.default_value is not None and p.name not in assignments and p.is_active(assignments)
    ]
    if not missing:
        return assignments
    return {
        **assignments,
        **{p.name: p.default_value for p in missing if p.default_value is not None},
    }


def warp(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """A Yeo-Johnson power transform (MLE) when the bad values have a long tail.

    Outcomes like Rosenbrock's span orders of magnitude; a GP on them is ruled
    by the worst points and goes flat where the optimum is. Skewed the other
    way (a few good values above a plateau, like Ackley's) they are left alone:
    compressing the good tail would hide the signal.
    """
    return warp_map(y)[0]


def warp_map(y: NDArray[np.float64]) -> tuple[NDArray[np.float64], Callable[[float], float]]:
    """``warp(y)`` and the same map for other values (thresholds): ``y`` itself
    and the identity when the values are left alone."""
    with np.errstate(over="ignore", invalid="ignore"):  # spreads beyond 1e308: inf
        spread, scale = float(np.ptp(y)), float(np.std(y))
    if len(y) < 4 or spread <= 0:
        return y, _identity
    # skewness is scale-free: measured on centred, scaled values it cannot overflow
    centred = y - np.median(y)
    if stats.skew(centred / np.max(np.abs(centred))) > WARP_SKEW:
        return y, _identity
    median = float(np.median(y))
    if not 0.0 < scale < np.inf:  # the spread overflows: scaled, every value would read 0
        return y, _identity
    z = (y - median) / scale
    try:
        lmbda = yeo_johnson_lambda(z)
        warped = stats.yeojohnson(z, lmbda)
    except (ValueError, FloatingPointError):
        return y, _identity
    if not np.all(np.isfinite(warped)):
        return y, _identity
    return warped, lambda v: float(stats.yeojohnson(np.array([(v - median) / scale]), lmbda)[0])


def yeo_johnson_lambda(z: NDArray[np.float64]) -> float:
    """The maximum-likelihood Yeo-Johnson exponent of ``z`` (as
    ``scipy.stats.yeojohnson_normmax``: Brent's method from the bracket
    (-2, 2)). The log-likelihood is written out because SciPy's evaluates the
    variance in log space, for overflow that standardized outputs cannot
    reach, at about 20 times the cost: 7 ms of a suggestion at 65 points.

    Remembered for the last few outputs: the same outputs are warped for
    every encoding a call compares (``log_scale``) and for the chain's fit.
    """
    return _remembered_lambda(np.ascontiguousarray(z, dtype=np.float64).tobytes())


@functools.lru_cache(maxsize=64)
def _remembered_lambda(z: bytes) -> float:
    return _yeo_johnson_lambda(np.frombuffer(z, dtype=np.float64))


def _yeo_johnson_lambda(z: NDArray[np.float64]) -> float:
    log_jacobian = float(np.sum(np.sign(z) * np.log1p(np.abs(z))))

    def negative_log_likelihood(lmbda: float) -> float:
        variance = float(np.var(stats.yeojohnson(z, lmbda)))
        if not variance > 0.0 or not np.isfinite(variance):
            return np.inf
        return 0.5 * len(z) * np.log(variance) - (lmbda - 1.0) * log_jacobian

    with np.errstate(over="ignore", invalid="ignore"):
        result = optimize.minimize_scalar(negative_log_likelihood, bracket=(-2.0, 2.0))
    if not np.isfinite(result.x):
        raise ValueError("no finite Yeo-Johnson exponent")
    return float(result.x)


def _identity(v: float) -> float:
    return v
