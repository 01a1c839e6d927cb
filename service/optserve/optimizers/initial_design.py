"""Space-filling initial design: maximin picks among uniform feasible draws."""

from __future__ import annotations

import numpy as np

from ..domain.model import Assignments, Experiment
from ..sampling import maximin_design
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
    out: list[Assignments] = []
    for k in range(request.count):
        rng = request.rng(k)
        candidates = space.draw_rows(CANDIDATES, rng)
        (pick,) = maximin_design(
            candidates,
            1,
            existing if len(existing) else None,
            rng,
            lo=np.zeros(encoder.dim),
            hi=np.ones(encoder.dim),
        )
        out += encoder.decode(pick[None, :])
        existing = np.vstack([existing, pick[None, :]])
    return out
