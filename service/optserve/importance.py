"""Parameter importance: the inverse length scales of the optimizer's Gaussian process.

The GP (Matérn-5/2, one length scale per input, MAP hyperparameters) is fitted to
the values of one metric on the unit-cube encoding of the assignments (log scale
for log-scaled parameters, one-hot categoricals and conditionals), with one length
scale per categorical parameter as in the optimizer's fit. A short length scale
means the metric changes quickly along that input; a conditional counts its
largest one-hot column. The scores are normalized to sum to 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .domain.encoding import Encoder
from .domain.model import Assignments, Experiment
from .optimizers.gp.model import GaussianProcess
from .optimizers.models import length_scale_groups

MIN_POINTS = 3


def points_key(points: Sequence[tuple[Assignments, float]]) -> bytes:
    """Identifies the data importances are computed from (a cache key that changes
    with any value, added, updated or deleted)."""
    text = repr([(sorted(a.items()), float(v)) for a, v in points])
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def importances(
    experiment: Experiment, assignments: Sequence[Assignments], values: Sequence[float]
) -> list[tuple[str, float]]:
    """(parameter or conditional, importance) pairs, largest first.

    Raises:
        ValueError: with fewer than MIN_POINTS values, or lengths that differ.
    """
    if len(assignments) != len(values):
        raise ValueError("one value per assignment")
    if len(values) < MIN_POINTS:
        raise ValueError(f"importance needs at least {MIN_POINTS} values")
    encoder = Encoder(experiment)
    x = encoder.encode(list(assignments))
    # the sign of the metric does not change the length scales
    groups = length_scale_groups(experiment)
    gp = GaussianProcess(length_scale_groups=groups).fit(x, np.asarray(values, dtype=float))
    inverse = 1.0 / gp.lengthscales
    names = [p.name for p in experiment.parameters] + [c.name for c in experiment.conditionals]
    scores = {name: float(inverse[encoder.slices[name]].max()) for name in names}
    total = sum(scores.values()) or 1.0
    return sorted(((k, v / total) for k, v in scores.items()), key=lambda kv: -kv[1])
