"""The storage interface every backend implements."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..domain.model import (
    Assignments,
    Experiment,
    ExperimentState,
    Observation,
    Suggestion,
    SuggestionState,
)

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of a listing; ``next_token`` is empty on the last page."""

    items: list[T]
    next_token: str


class Storage(abc.ABC):
    """Experiments, suggestions and observations, durably stored.

    Every method that writes commits before it returns. Methods raise
    ``NotFound`` for unknown ids and ``FailedPrecondition`` for state conflicts
    (a closed suggestion); a method that raises has written nothing.
    """

    @abc.abstractmethod
    def create_experiment(self, experiment: Experiment) -> Experiment:
        """Stores a validated experiment; returns it with its id and times."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """Returns the experiment with its progress counters. Raises NotFound."""

    @abc.abstractmethod
    def list_experiments(
        self, project: str, state: ExperimentState | None, page_size: int, page_token: str
    ) -> Page[Experiment]:
        """Experiments, newest first. Raises InvalidArgument for a bad page token."""

    @abc.abstractmethod
    def update_experiment(self, experiment: Experiment) -> Experiment:
        """Replaces the stored definition. Raises NotFound."""

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Deletes the experiment, its suggestions and observations. Raises NotFound."""

    @abc.abstractmethod
    def experiment_lock(self, experiment_id: str) -> AbstractContextManager[None]:
        """Serializes suggestion generation of one experiment, so that each new
        suggestion sees the ones created before it as pending."""

    @abc.abstractmethod
    def load_history(self, experiment_id: str) -> tuple[list[Observation], list[Suggestion]]:
        """All observations (creation order) and open suggestions, in one snapshot."""

    @abc.abstractmethod
    def count_suggestions(self, experiment_id: str) -> int:
        """Number of suggestions ever created in the experiment (deleted ones included)."""

    @abc.abstractmethod
    def create_suggestions(
        self, experiment_id: str, assignments: list[Assignments], metadata: dict[str, Any]
    ) -> list[Suggestion]:
        """Stores open suggestions, numbered in sequence. Raises NotFound."""

    @abc.abstractmethod
    def get_suggestion(self, experiment_id: str, suggestion_id: str) -> Suggestion:
        """Raises NotFound (also when it belongs to another experiment)."""

    @abc.abstractmethod
    def list_suggestions(
        self,
        experiment_id: str,
        state: SuggestionState | None,
        page_size: int,
        page_token: str,
    ) -> Page[Suggestion]:
        """Suggestions, oldest first. Raises NotFound, InvalidArgument (page token)."""

    @abc.abstractmethod
    def delete_suggestion(self, experiment_id: str, suggestion_id: str) -> None:
        """Deletes an open suggestion. Raises NotFound, FailedPrecondition (closed)."""

    @abc.abstractmethod
    def create_observation(self, observation: Observation) -> Observation:
        """Stores an observation and closes its suggestion atomically.

        Raises NotFound (experiment or suggestion), FailedPrecondition (the
        suggestion is already closed).
        """

    @abc.abstractmethod
    def get_observation(self, experiment_id: str, observation_id: str) -> Observation:
        """Raises NotFound (also when it belongs to another experiment)."""

    @abc.abstractmethod
    def list_observations(
        self, experiment_id: str, page_size: int, page_token: str
    ) -> Page[Observation]:
        """Observations, oldest first. Raises NotFound, InvalidArgument (page token)."""

    @abc.abstractmethod
    def update_observation(self, observation: Observation) -> Observation:
        """Replaces values, failed flag and metadata. Raises NotFound."""

    @abc.abstractmethod
    def delete_observation(self, experiment_id: str, observation_id: str) -> None:
        """Deletes an observation (its suggestion stays closed). Raises NotFound."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases connections."""
