"""The single entry point of every optimizer, and the registry of optimizers by experiment type."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..domain.model import Assignments, Experiment, ExperimentType, Observation, Suggestion
from .feasible import feasible_space

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


Propose = Callable[[SuggestRequest], list[Assignments]]

# What a model may raise on bad numbers: the call falls back rather than fails.
# Anything else is a bug and propagates.
NUMERICAL_ERRORS: tuple[type[Exception], ...] = (np.linalg.LinAlgError, ArithmeticError)


@dataclass(frozen=True)
class Optimizer:
    """How experiments of one type get their points.

    Attributes:
        propose: proposes ``request.count`` assignments.
        fallback: proposes instead when ``propose`` raises a numerical error
            (None: the error propagates).
        exact: whether double constraints are then made to hold in plain
            floating-point arithmetic (``FeasibleSpace.exact``).
    """

    propose: Propose
    fallback: Propose | None = None
    exact: bool = True


_REGISTRY: dict[ExperimentType, Optimizer] = {}


def register(kind: ExperimentType, optimizer: Optimizer) -> None:
    """Makes ``optimizer`` the one of experiments of type ``kind``."""
    _REGISTRY[kind] = optimizer


def suggest(request: SuggestRequest) -> list[Assignments]:
    """Proposes ``request.count`` assignments with the optimizer of the experiment's type.

    Raises:
        FailedPrecondition: when a grid experiment has no point left.
    """
    exp = request.experiment
    optimizer = _REGISTRY[exp.type]
    try:
        points = optimizer.propose(request)
    except NUMERICAL_ERRORS:
        if optimizer.fallback is None:
            raise
        # A numerical failure must not fail the call.
        log.exception("Suggestion of experiment %s failed; falling back", exp.id)
        request.chosen.clear()
        points = optimizer.fallback(request)
    return feasible_space(exp).exact(points) if optimizer.exact else points
