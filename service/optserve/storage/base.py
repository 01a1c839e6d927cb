"""The storage interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..domain.model import (
    Assignments,
    Experiment,
    ExperimentState,
    Observation,
    Suggestion,
    SuggestionState,
)
from ..domain.tenancy import Token

T = TypeVar("T")

# A write's result as recorded for its request id: an experiment, a list of
# suggestions, an observation, or None (deletes).
Result = Experiment | list[Suggestion] | Observation | None


@dataclass(frozen=True)
class RequestKey:
    """Identifies a mutating request for safe retries: who sent it, its id, and what it was."""

    principal: str
    request_id: str
    method: str
    fingerprint: str


@dataclass
class RecordedRequest:
    key: RequestKey
    result: Result


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Write:
    """How a write commits: the request to record with its result in the same
    transaction, and a check made just before COMMIT (a call that was cancelled,
    ran past its deadline or outlived the server's grace period rolls back)."""

    request: RequestKey | None = None
    alive: Callable[[], bool] = field(default=_always)


PLAIN = Write()


class DuplicateRequest(Exception):
    """Another call recorded the same request id first; nothing was written."""


@dataclass
class Page(Generic[T]):
    """One page of a listing; ``next_token`` is empty on the last page."""

    items: list[T]
    next_token: str


class Storage(abc.ABC):
    """Experiments, suggestions and observations, durably stored.

    Every method that writes commits before it returns. Methods raise
    ``NotFound`` for unknown ids and ``FailedPrecondition`` for state conflicts
    (a closed suggestion); a method that raises has written nothing. A write
    given a ``Write`` with a request records its result with the request in the
    same transaction and raises ``DuplicateRequest`` when the request id is
    already recorded; it raises ``Cancelled`` (rolling back) when ``alive()`` is
    false just before COMMIT.

    Suggestion states are computed at read time: an open suggestion whose
    expire_time has passed reads as EXPIRED and is not pending.
    """

    @abc.abstractmethod
    def create_experiment(self, experiment: Experiment, write: Write = PLAIN) -> Experiment:
        """Stores a validated experiment; returns it with its id and times."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """Returns the experiment with its progress counters. Raises NotFound."""

    @abc.abstractmethod
    def list_experiments(
        self,
        project: str,
        state: ExperimentState | None,
        page_size: int,
        page_token: str,
        projects: frozenset[str] | None = None,
    ) -> Page[Experiment]:
        """Experiments, newest first, only of ``projects`` when given. Raises
        InvalidArgument for a bad page token."""

    @abc.abstractmethod
    def update_experiment(self, experiment: Experiment, write: Write = PLAIN) -> Experiment:
        """Replaces the stored definition. Raises NotFound."""

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str, write: Write = PLAIN) -> None:
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
        self,
        experiment_id: str,
        assignments: list[Assignments],
        metadata: dict[str, Any],
        lease_seconds: int,
        write: Write = PLAIN,
    ) -> list[Suggestion]:
        """Stores open suggestions, numbered in sequence, expiring after
        ``lease_seconds``. Raises NotFound."""

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
    def delete_suggestion(
        self, experiment_id: str, suggestion_id: str, write: Write = PLAIN
    ) -> None:
        """Deletes an open or expired suggestion. Raises NotFound, FailedPrecondition (closed)."""

    @abc.abstractmethod
    def create_observation(self, observation: Observation, write: Write = PLAIN) -> Observation:
        """Stores an observation and closes its suggestion (open or expired) atomically.

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
    def update_observation(self, observation: Observation, write: Write = PLAIN) -> Observation:
        """Replaces values, failed flag and metadata. Raises NotFound."""

    @abc.abstractmethod
    def delete_observation(
        self, experiment_id: str, observation_id: str, write: Write = PLAIN
    ) -> None:
        """Deletes an observation (its suggestion stays closed). Raises NotFound."""

    @abc.abstractmethod
    def renew_suggestion(
        self, experiment_id: str, suggestion_id: str, lease_seconds: int | None
    ) -> Suggestion:
        """Moves an open suggestion's expire_time to now + lease (its own lease
        when None). Raises NotFound, FailedPrecondition (closed or expired)."""

    @abc.abstractmethod
    def experiment_project(self, experiment_id: str) -> str:
        """The project of an experiment (cheap; for access checks). Raises NotFound."""

    # -------------------------------------------------------------- requests

    @abc.abstractmethod
    def find_request(self, principal: str, request_id: str) -> RecordedRequest | None:
        """The recorded request with this id from this principal, if any."""

    # -------------------------------------------------------------- tokens

    @abc.abstractmethod
    def create_token(self, token: Token, secret_hash: str) -> Token:
        """Stores a token by the hash of its secret; returns it with id and time."""

    @abc.abstractmethod
    def list_tokens(self) -> list[Token]:
        """Every token, oldest first."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> Token:
        """Marks a token revoked (idempotent). Raises NotFound."""

    @abc.abstractmethod
    def token_by_hash(self, secret_hash: str) -> Token | None:
        """The valid (not revoked) token with this secret hash."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases connections."""
