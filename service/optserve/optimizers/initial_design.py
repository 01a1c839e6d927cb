"""Space-filling initial design: maximin picks among uniform feasible draws."""

from __future__ import annotations

import numpy as np

from ..domain.encoding import Encoder
from ..domain.model import Assignments
from ..sampling import maximin_design
from .base import SuggestRequest
from .feasible import feasible_space

CANDIDATES = 256


def suggest(request: SuggestRequest, encoder: Encoder | None = None) -> list[Assignments]:
    """Points far from every observed and pending point, all feasible."""
    exp = request.experiment
    encoder = encoder or Encoder(exp)
    space = feasible_space(exp)
    taken = [o.assignments for o in request.observations] + [s.assignments for s in request.pending]
    existing = encoder.encode(taken) if taken else np.empty((0, encoder.dim))
    out: list[Assignments] = []
    for k in range(request.count):
        rng = request.rng(k)
        candidates = space.draw(CANDIDATES, rng)
        encoded = encoder.encode(candidates)
        pick = maximin_design(
            encoded,
            1,
            existing if len(existing) else None,
            rng,
            lo=np.zeros(encoder.dim),
            hi=np.ones(encoder.dim),
        )
        index = int(np.argmin(np.abs(encoded - pick[0]).sum(axis=1)))
        out.append(candidates[index])
        existing = np.vstack([existing, encoded[index : index + 1]])
    return out
