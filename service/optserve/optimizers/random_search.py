"""Uniform random search over the feasible set."""

from __future__ import annotations

from ..domain.errors import Unimplemented
from ..domain.model import Assignments
from ..domain.space import draw_unconstrained
from .base import SuggestRequest


def suggest(request: SuggestRequest) -> list[Assignments]:
    exp = request.experiment
    if exp.linear_constraints:
        raise Unimplemented("suggestions under linear constraints are not available yet")
    return [draw_unconstrained(exp, request.rng(k)) for k in range(request.count)]
