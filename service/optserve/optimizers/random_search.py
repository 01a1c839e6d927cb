"""Uniform random search over the feasible set."""

from __future__ import annotations

from ..domain.model import Assignments, ExperimentType
from .base import Optimizer, SuggestRequest, register
from .feasible import feasible_space


def suggest(request: SuggestRequest) -> list[Assignments]:
    space = feasible_space(request.experiment)
    return [space.draw(1, request.rng(k))[0] for k in range(request.count)]


register(ExperimentType.RANDOM, Optimizer(suggest))
