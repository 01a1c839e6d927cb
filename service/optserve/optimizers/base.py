"""The single entry point of every optimizer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..domain.model import Assignments, Experiment, ExperimentType, Observation, Suggestion

log = logging.getLogger(__name__)


@dataclass
class SuggestRequest:
    """Everything an optimizer may use to propose points.

    Attributes:
        experiment: the validated experiment.
        observations: every observation, in creation order (failed ones included).
        pending: open suggestions, to be treated as points under evaluation.
        count: number of points wanted.
        sequence: sequence number of the first new suggestion; with the
            experiment's seed it fixes all randomness of this call.
    """

    experiment: Experiment
    observations: list[Observation]
    pending: list[Suggestion]
    count: int
    sequence: int
    # points already chosen earlier in this call (batch creates): pending too
    chosen: list[Assignments] = field(default_factory=list)

    def rng(self, offset: int = 0) -> np.random.Generator:
        """The generator of suggestion ``sequence + offset``: reproducible per suggestion."""
        return np.random.default_rng([self.experiment.seed, self.sequence + offset])


def suggest(request: SuggestRequest) -> list[Assignments]:
    """Proposes ``request.count`` assignments for the experiment's type.

    Raises:
        FailedPrecondition: when a grid experiment has no point left.
    """
    from . import bayesian, grid, initial_design, random_search
    from .feasible import feasible_space

    kind = request.experiment.type
    if kind is ExperimentType.GRID:
        return grid.suggest(request)
    if kind is ExperimentType.RANDOM:
        points = random_search.suggest(request)
    else:
        try:
            points = bayesian.suggest(request)
        except Exception:
            # A numerical failure must not fail the call: fall back to the space-filling design.
            log.exception("Bayesian suggestion failed for experiment %s", request.experiment.id)
            request.chosen.clear()
            points = initial_design.suggest(request)
    return feasible_space(request.experiment).exact(points)
