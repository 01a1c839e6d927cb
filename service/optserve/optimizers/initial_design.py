"""Space-filling initial design: maximin picks among uniform feasible draws.

With parameter priors, the draws come from the priors and the picks are spread
in the priors' probability scale (``priors``).
"""

from __future__ import annotations

import numpy as np

from ..domain.model import Assignments, Experiment
from ..sampling import maximin_design
from . import priors
from .base import SuggestRequest
from .feasible import feasible_space

CANDIDATES = 256
INITIAL_MIN, INITIAL_EXTRA, INITIAL_MAX = 4, 2, 10


def initial_design_size(exp: Experiment) -> int:
    """Points of the space-filling design before the model takes over; grows with dimension."""
    size = min(INITIAL_MAX, len(exp.parameters) + INITIAL_EXTRA)
    return max(INITIAL_MIN, size) + exp.parallel_bandwidth - 1


def suggest(request: SuggestRequest) -> list[Assignments]:
    """Points far from every observed and pending point, all feasible."""
    space = feasible_space(request.experiment)
    encoder = space.encoder
    taken = [o.assignments for o in request.observations] + [s.assignments for s in request.pending]
    existing = encoder.encode(taken) if taken else np.empty((0, encoder.dim))
    unit_priors = priors.unit_priors(request.experiment, encoder)
    out: list[Assignments] = []
    for k in range(request.count):
        rng = request.rng(k)
        if unit_priors:
            # Drawn from the priors and spread in their probability scale: the
            # quantile transform of a space-filling design.
            candidates = priors.design_candidates(space, unit_priors, CANDIDATES, rng)
            scaled = priors.to_probability_scale(unit_priors, candidates)
            scaled_existing = priors.to_probability_scale(unit_priors, existing)
        else:
            candidates = space.draw_rows(CANDIDATES, rng)
            scaled, scaled_existing = candidates, existing
        (pick,) = maximin_design(
            scaled,
            1,
            scaled_existing if len(existing) else None,
            rng,
            lo=np.zeros(encoder.dim),
            hi=np.ones(encoder.dim),
        )
        row = candidates[np.flatnonzero((scaled == pick).all(axis=1))[0]]
        out += encoder.decode(row[None, :])
        existing = np.vstack([existing, row[None, :]])
    return out
