"""Parameter priors as distributions of the encoded coordinate.

A double parameter may carry a prior over where its good values lie: normal
(mean, scale) in the parameter's units, or beta (shape_a, shape_b) over its
bounds scaled to [0, 1]. Its encoded coordinate is ``u = (x - lo) / (hi - lo)``
(priors are refused on log-scaled parameters), so each prior is a distribution
on [0, 1]: the normal truncated to the bounds, the beta as it is.

They are used twice: the initial design draws from them (``design_rows``) and
the acquisition is weighted by them, less and less as observations accumulate
(``log_density``, piBO).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from ..domain.encoding import Encoder
from ..domain.model import Experiment, PriorType
from .feasible import FeasibleSpace

# densities below this are taken as this, so that log densities stay finite
DENSITY_FLOOR = 1e-12
# Initial design: uniform feasible draws per candidate, resampled by the prior
# density where a prior's parameter is in a linear constraint.
RESAMPLE_POOL = 4


@dataclass(frozen=True)
class UnitPrior:
    """One parameter's prior on its encoded coordinate.

    Attributes:
        name: the parameter.
        column: its encoded column.
        dist: a frozen scipy distribution supported on [0, 1].
        conditions: per conditional of the parameter's conditions, the encoded
            columns of the values that activate it.
    """

    name: str
    column: int
    dist: Any
    conditions: tuple[tuple[int, ...], ...] = ()

    def active(self, rows: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Rows where the parameter is active (its conditionals take activating values)."""
        mask = np.ones(len(rows), dtype=bool)
        for columns in self.conditions:
            mask &= rows[:, list(columns)].max(axis=1) == 1.0
        return mask

    def cdf(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.dist.cdf(u), dtype=np.float64)

    def ppf(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.clip(np.asarray(self.dist.ppf(q), dtype=np.float64), 0.0, 1.0)

    def logpdf(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.log(np.maximum(np.asarray(self.dist.pdf(u), dtype=np.float64), DENSITY_FLOOR))


def unit_priors(exp: Experiment, encoder: Encoder) -> list[UnitPrior]:
    """The priors of the experiment's parameters, on their encoded coordinates."""
    out = []
    for p in exp.parameters:
        prior = p.prior
        if prior is None or p.bounds is None or p.is_log or p.grid:
            continue
        lo, hi = p.bounds.min, p.bounds.max
        if not hi > lo:
            continue
        if prior.type is PriorType.NORMAL:
            assert prior.mean is not None and prior.scale is not None
            mean, scale = (prior.mean - lo) / (hi - lo), prior.scale / (hi - lo)
            dist = stats.truncnorm((0.0 - mean) / scale, (1.0 - mean) / scale, mean, scale)
        elif prior.type is PriorType.BETA:
            assert prior.shape_a is not None and prior.shape_b is not None
            dist = stats.beta(prior.shape_a, prior.shape_b)
        else:
            continue
        conditions = []
        for name, values in p.conditions.items():
            k = next(k for k in exp.conditionals if k.name == name)
            start = encoder.slices[name].start
            conditions.append(tuple(start + k.values.index(v) for v in values))
        out.append(UnitPrior(p.name, encoder.slices[p.name].start, dist, tuple(conditions)))
    return out


def log_density(priors: list[UnitPrior], rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """The log prior density of each row: the sum over its active parameters' priors."""
    total = np.zeros(len(rows))
    for prior in priors:
        total += np.where(prior.active(rows), prior.logpdf(rows[:, prior.column]), 0.0)
    return total


def to_probability_scale(priors: list[UnitPrior], rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows with each prior's coordinate replaced by its prior CDF: where a design
    spread uniformly in this scale is spread as the priors are in the encoding."""
    out = rows.copy()
    for prior in priors:
        on = prior.active(rows)
        out[on, prior.column] = prior.cdf(rows[on, prior.column])
    return out


def design_candidates(
    space: FeasibleSpace, priors: list[UnitPrior], n: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``n`` feasible encoded rows drawn from the priors (uniformly where there are none).

    A prior's parameter outside every linear constraint takes its prior quantile
    of the uniform coordinate; within one, rows are resampled from a larger
    uniform feasible pool in proportion to the prior density (sampling
    importance resampling), so that every row stays feasible.
    """
    constrained = [p for p in priors if p.name in space.constrained]
    if constrained:
        pool = space.draw_rows(RESAMPLE_POOL * n, rng)
        log_w = log_density(constrained, pool)
        weights = np.exp(log_w - log_w.max())
        rows = pool[rng.choice(len(pool), size=n, p=weights / weights.sum())]
    else:
        rows = space.draw_rows(n, rng)
    for prior in priors:
        if prior.name in space.constrained:
            continue
        on = prior.active(rows)
        rows[on, prior.column] = prior.ppf(rows[on, prior.column])
    return space.vectors.canonical(rows)
