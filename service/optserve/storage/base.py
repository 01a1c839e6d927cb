"""The storage interface every backend implements."""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..domain.grid import TakenPoints
from ..domain.model import (
    Assignments,
    Experiment,
    ExperimentState,
    Observation,
    QueuedSuggestion,
    Suggestion,
    SuggestionState,
)
from ..domain.runs import Project, RunChange, TrainingRun
from ..domain.tenancy import Token

T = TypeVar("T")

# A write's result as recorded for its request id: an experiment, a suggestion or
# a list of them, an observation or a list of them (a batch), a queued
# suggestion, a project, a training run, or None (deletes).
Result = (
    Experiment
    | Suggestion
    | list[Suggestion]
    | Observation
    | list[Observation]
    | QueuedSuggestion
    | Project
    | TrainingRun
    | None
)


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


# The points of new suggestions drawn inside their write, from the sequence number
# the write assigns to the first: a random point is a function of the experiment's
# seed and its number alone, so concurrent writers need no experiment lock.
Draw = Callable[[int], list[Assignments]]


class KeyedLocks:
    """Process-local locks by key, each forgotten once no thread holds or awaits it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users = self._locks[key][1] - 1
                if users:
                    self._locks[key] = (lock, users)
                else:
                    del self._locks[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


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
        """Returns the experiment with its progress counters. Raises NotFound.
        A backend may answer from a cache: replace the nested values of the answer
        (parameters, metrics, progress), never change them in place."""

    def get_definition(self, experiment_id: str) -> Experiment:
        """The experiment without its progress (left empty): what writes check
        against. Raises NotFound. A backend may answer it more cheaply."""
        return self.get_experiment(experiment_id)

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
        """Serializes suggestion generation of one experiment among every server that
        shares the storage, so that each new suggestion sees the ones created before it
        as pending and gets the next sequence number. Held around the reads, the
        optimizer's work and the write of one CreateSuggestions call."""

    @abc.abstractmethod
    def load_history(self, experiment_id: str) -> tuple[list[Observation], list[Suggestion]]:
        """All observations (creation order) and open suggestions, in one snapshot."""

    def taken_grid_points(self, experiment_id: str) -> TakenPoints:
        """The points of a grid experiment its observations and open suggestions have
        taken, in one snapshot: the grid indices stored with them (sorted, distinct,
        without OFF_GRID) and the assignments of the rows stored without one. Raises
        NotFound.

        Observations and suggestions of a GRID experiment are stored with their point's
        index in the grid (``domain.grid``), OFF_GRID when they are not a point of it;
        those of other types, and rows of before, without. This default reads every
        row's assignments; backends read the indices."""
        observations, pending = self.load_history(experiment_id)
        taken = [o.assignments for o in observations] + [s.assignments for s in pending]
        return TakenPoints(unindexed=taken)

    @abc.abstractmethod
    def count_suggestions(self, experiment_id: str) -> int:
        """Number of suggestions ever created in the experiment (deleted ones included)."""

    @abc.abstractmethod
    def create_suggestions(
        self,
        experiment_id: str,
        assignments: list[Assignments] | Draw,
        metadata: dict[str, Any],
        lease_seconds: int,
        write: Write = PLAIN,
        queued: Sequence[str] = (),
    ) -> list[Suggestion]:
        """Stores open suggestions, numbered in sequence, expiring after
        ``lease_seconds``; deletes the queued suggestions ``queued`` (ids) they
        were made from in the same transaction. ``assignments`` may be a ``Draw``,
        called inside the write with the sequence number of the first suggestion.
        Raises NotFound (also for a queued id already gone: nothing is written
        then) and what the draw raises (nothing is written then either)."""

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
    def update_suggestion_metadata(
        self,
        experiment_id: str,
        suggestion_id: str,
        metadata: dict[str, Any],
        write: Write = PLAIN,
    ) -> Suggestion:
        """Replaces a suggestion's metadata (its only mutable field). Raises NotFound."""

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
    def create_observations(
        self, observations: list[Observation], write: Write = PLAIN
    ) -> list[Observation]:
        """Stores observations of one experiment all at once or not at all, each
        as ``create_observation`` does (a batch). Raises as it does."""

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
        self,
        experiment_id: str,
        suggestion_id: str,
        lease_seconds: int | None,
        write: Write = PLAIN,
    ) -> Suggestion:
        """Moves an open suggestion's expire_time to now + lease (its own lease
        when None). Raises NotFound, FailedPrecondition (closed or expired)."""

    @abc.abstractmethod
    def experiment_project(self, experiment_id: str) -> str:
        """The project of an experiment (cheap; for access checks). Raises NotFound."""

    # -------------------------------------------------------------- queued suggestions

    @abc.abstractmethod
    def create_queued_suggestion(
        self, experiment_id: str, assignments: Assignments, write: Write = PLAIN
    ) -> QueuedSuggestion:
        """Queues validated assignments. Raises NotFound."""

    @abc.abstractmethod
    def list_queued_suggestions(self, experiment_id: str) -> list[QueuedSuggestion]:
        """The experiment's queue, oldest first (at most ``limits.MAX_QUEUED_SUGGESTIONS``,
        which the application keeps). Raises NotFound."""

    @abc.abstractmethod
    def delete_queued_suggestion(
        self, experiment_id: str, queued_id: str, write: Write = PLAIN
    ) -> None:
        """Raises NotFound (also when it belongs to another experiment)."""

    # -------------------------------------------------------------- projects
    # A project exists once created, or once an experiment or run names it
    # (create_experiment, update_experiment and create_training_run register it).

    @abc.abstractmethod
    def create_project(self, project: Project, write: Write = PLAIN) -> Project:
        """Stores a new project with its times. Raises AlreadyExists."""

    @abc.abstractmethod
    def get_project(self, project_id: str) -> Project:
        """Raises NotFound."""

    @abc.abstractmethod
    def list_projects(self, projects: frozenset[str] | None = None) -> list[Project]:
        """Every project (only those in ``projects`` when given), by id."""

    @abc.abstractmethod
    def update_project(self, project: Project, write: Write = PLAIN) -> Project:
        """Replaces name and metadata. Raises NotFound."""

    # -------------------------------------------------------------- training runs

    @abc.abstractmethod
    def create_training_run(
        self,
        run: TrainingRun,
        suggestion: Assignments | None = None,
        lease_seconds: int = 0,
        write: Write = PLAIN,
        queued: Sequence[str] = (),
    ) -> TrainingRun:
        """Stores a run (registering its project). With ``suggestion``, also
        stores an open suggestion of ``run.experiment_id`` with those
        assignments (as ``create_suggestions`` does) and links the run to it,
        and deletes the queued suggestions ``queued`` (ids) it was made from, in
        the same transaction. Raises NotFound (experiment, or a queued id
        already gone: nothing is written then)."""

    @abc.abstractmethod
    def get_training_run(self, run_id: str) -> TrainingRun:
        """The run with its checkpoints. Raises NotFound."""

    @abc.abstractmethod
    def list_training_runs(
        self,
        project: str | None,
        experiment_id: str | None,
        page_size: int,
        page_token: str,
        deleted: bool | None = False,
    ) -> Page[TrainingRun]:
        """Runs of a project and/or an experiment, oldest first; ``deleted``
        False: live runs only, True: deleted ones only, None: both. Raises
        InvalidArgument (page token)."""

    @abc.abstractmethod
    def update_training_run(
        self, run_id: str, change: Callable[[TrainingRun], RunChange], write: Write = PLAIN
    ) -> TrainingRun:
        """Read-modify-write of one run in one transaction: ``change`` gets the
        stored run and returns it as it becomes, with an observation to store
        when the run ends (which closes the run's suggestion, as
        ``create_observation`` does, and is linked as ``observation_id``).
        Whatever ``change`` raises rolls back. Raises NotFound."""

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
