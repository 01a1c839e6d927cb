"""Use cases of the service: validation, storage and optimizers put together.

Servicers call one method per RPC; this layer knows nothing of gRPC.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from . import importance
from .domain import best, runs, stopping, tenancy, validation
from .domain.errors import (
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from .domain.limits import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SUGGESTION_LEASE_SECONDS,
    MAX_OBSERVATIONS_PER_BATCH,
    MAX_PAGE_SIZE,
    MAX_PROJECT_LENGTH,
    MAX_QUEUED_SUGGESTIONS,
    MAX_SUGGESTION_LEASE_SECONDS,
    MAX_SUGGESTIONS_PER_CALL,
    MAX_TOKEN_NAME_LENGTH,
    MAX_TOKEN_PROJECTS,
    PROJECT_PATTERN,
    REQUEST_ID_PATTERN,
)
from .domain.model import (
    Assignments,
    Experiment,
    ExperimentState,
    ExperimentType,
    Observation,
    QueuedSuggestion,
    Suggestion,
    SuggestionState,
)
from .domain.runs import Checkpoint, Project, RunValue, TrainingRun
from .domain.tenancy import ANONYMOUS, Principal, Role, Token
from .optimizers import SuggestRequest, suggest
from .optimizers.grid import next_points as next_grid_points
from .storage import Page, Storage
from .storage.base import Draw, DuplicateRequest, RecordedRequest, RequestKey, Result, Write
from .suggest_pool import SuggestPool, in_pool

R = TypeVar("R", bound=Result)

# Fields UpdateExperiment may change; everything else defines the search and is fixed.
MUTABLE_EXPERIMENT_FIELDS = {
    "name",
    "project",
    "metadata",
    "observation_budget",
    "parallel_bandwidth",
    "state",
    "metrics",
}
IMMUTABLE_EXPERIMENT_FIELDS = {
    "parameters",
    "conditionals",
    "linear_constraints",
    "type",
    "num_solutions",
    "seed",
}
MUTABLE_OBSERVATION_FIELDS = {"values", "failed", "metadata"}
# Suggestion leases: an open suggestion neither observed nor renewed this long expires.
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_PROJECT_NAME = re.compile(PROJECT_PATTERN)
IMPORTANCE_CACHE_SIZE = 64


def _alive() -> bool:
    return True


@dataclass(frozen=True)
class Call:
    """What a transport knows about one call: who makes it, its idempotency key,
    and whether it is still wanted (not cancelled, within its deadline, not cut
    off by shutdown); writes check ``alive`` just before they commit."""

    principal: Principal = ANONYMOUS
    request_id: str = ""
    alive: Callable[[], bool] = _alive


SYSTEM = Call()


def lease_seconds(value: int | None, field: str) -> int | None:
    if value is not None and not 1 <= value <= MAX_SUGGESTION_LEASE_SECONDS:
        raise InvalidArgument.single(
            field, f"must be between 1 and {MAX_SUGGESTION_LEASE_SECONDS} seconds"
        )
    return value


def _page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument.single("page_size", "must be >= 0")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class Application:
    """The service's operations over one storage backend."""

    def __init__(self, storage: Storage, pool: SuggestPool | None = None) -> None:
        self.storage = storage
        # importances by (experiment, metric, the points they are computed from): GP
        # fits are costly, and any change of a value makes another key
        self._importances: OrderedDict[tuple[Any, ...], dict[str, float] | None] = OrderedDict()
        self._importances_lock = threading.Lock()
        # model-based suggestions are computed there when given (see suggest_pool.py)
        self.pool = pool

    # -------------------------------------------------------------- experiments

    def create_experiment(
        self, exp: Experiment, seed: int | None, call: Call = SYSTEM
    ) -> Experiment:
        fingerprint = _fingerprint(call, exp, seed)
        replayed = self._replay(call, "CreateExperiment", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        principal = call.principal
        if not exp.project and principal.scoped and len(principal.projects) == 1:
            # a token of one project creates there by default
            exp.project = next(iter(principal.projects))
        self._check_create_in(principal, exp.project, "experiment.project")
        lease_seconds(exp.suggestion_lease_seconds, "experiment.suggestion_lease_seconds")
        exp.seed = secrets.randbits(63) if seed is None else seed
        exp.state = ExperimentState.ACTIVE
        validation.validate_experiment(exp)
        if exp.type is ExperimentType.GRID and exp.observation_budget is None:
            exp.observation_budget = validation.grid_size(exp)
        return self._idempotent(
            call,
            "CreateExperiment",
            fingerprint,
            lambda write: self.storage.create_experiment(exp, write),
        )

    def get_experiment(self, experiment_id: str, call: Call = SYSTEM) -> Experiment:
        exp = self.storage.get_experiment(experiment_id)
        self._check_reach(call.principal, exp.project, experiment_id)
        return exp

    def list_experiments(
        self,
        project: str,
        state: ExperimentState | None,
        page_size: int,
        page_token: str,
        call: Call = SYSTEM,
    ) -> Page[Experiment]:
        principal = call.principal
        projects = principal.projects if principal.scoped else None
        page = self.storage.list_experiments(
            project, state, _page_size(page_size), page_token, projects
        )
        return page

    def update_experiment(
        self, experiment_id: str, patch: Experiment, paths: list[str], call: Call = SYSTEM
    ) -> Experiment:
        if not paths:
            raise InvalidArgument.single("update_mask", "required: name the fields to change")
        fingerprint = _fingerprint(call, experiment_id, patch, sorted(paths))
        replayed = self._replay(call, "UpdateExperiment", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        current = self.storage.get_experiment(experiment_id)
        self._check_write(call.principal, current.project, experiment_id)
        if "project" in paths:
            self._check_create_in(call.principal, patch.project, "experiment.project")
        updated = dataclasses.replace(current)
        for path in paths:
            if path in IMMUTABLE_EXPERIMENT_FIELDS:
                raise InvalidArgument.single(
                    f"experiment.{path}", "cannot change after the experiment is created"
                )
            if path not in MUTABLE_EXPERIMENT_FIELDS:
                raise InvalidArgument.single("update_mask", f"{path!r} is not an updatable field")
            if path == "metrics":
                _check_metrics_update(current, patch)
            if path == "state" and patch.state is None:
                continue
            setattr(updated, path, getattr(patch, path))
        validation.validate_experiment(updated)
        return self._idempotent(
            call,
            "UpdateExperiment",
            fingerprint,
            lambda write: self.storage.update_experiment(updated, write),
        )

    def delete_experiment(self, experiment_id: str, call: Call = SYSTEM) -> None:
        fingerprint = _fingerprint(call, experiment_id)
        if self._replay(call, "DeleteExperiment", fingerprint) is not None:
            return
        self._guard(call, experiment_id, write=True)
        self._idempotent(
            call,
            "DeleteExperiment",
            fingerprint,
            lambda write: self.storage.delete_experiment(experiment_id, write),
        )

    # -------------------------------------------------------------- suggestions

    def create_suggestions(
        self,
        experiment_id: str,
        count: int,
        metadata: dict[str, Any],
        lease: int | None = None,
        call: Call = SYSTEM,
    ) -> list[Suggestion]:
        count = count or 1
        if not 1 <= count <= MAX_SUGGESTIONS_PER_CALL:
            raise InvalidArgument.single(
                "count", f"must be between 1 and {MAX_SUGGESTIONS_PER_CALL}"
            )
        lease_seconds(lease, "lease_seconds")
        fingerprint = _fingerprint(call, experiment_id, count, metadata, lease)
        replayed = self._replay(call, "CreateSuggestions", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        exp = self._active(experiment_id, call.principal)
        if exp.type is ExperimentType.RANDOM and not self.storage.list_queued_suggestions(exp.id):
            # Random points are drawn inside the write at the sequence numbers it
            # assigns: no experiment lock, whose wait would include every holder's
            # commit. (A retry racing its first attempt meets its record in the write.)
            _check_not_runs_only(exp)
            seconds = lease or exp.suggestion_lease_seconds or DEFAULT_SUGGESTION_LEASE_SECONDS
            draw = _random_draw(exp, [], count, call.alive)
            return self._idempotent(
                call,
                "CreateSuggestions",
                fingerprint,
                lambda write: self.storage.create_suggestions(
                    experiment_id, draw, metadata, seconds, write
                ),
            )
        with self.storage.experiment_lock(experiment_id):
            # a retry racing its first attempt waits here, then finds its record
            replayed = self._replay(call, "CreateSuggestions", fingerprint)
            if replayed is not None:
                return replayed.result  # type: ignore[return-value]
            exp = self._active(experiment_id, call.principal)
            _check_not_runs_only(exp)
            if not call.alive():
                raise Cancelled("the call ended before its suggestions were made")
            points, queued = self._next_points(exp, count, call.alive)
            lease = lease or exp.suggestion_lease_seconds or DEFAULT_SUGGESTION_LEASE_SECONDS
            return self._idempotent(
                call,
                "CreateSuggestions",
                fingerprint,
                lambda write: self.storage.create_suggestions(
                    experiment_id, points, metadata, lease, write, queued
                ),
            )

    def _next_points(
        self, exp: Experiment, count: int, alive: Callable[[], bool] = _alive
    ) -> tuple[list[Assignments] | Draw, list[str]]:
        """The next ``count`` points: queued suggestions first (with their ids), then
        the optimizer's; random ones are drawn in the write (see ``_random_draw``).
        Called under the experiment's lock."""
        queued = self.storage.list_queued_suggestions(exp.id)[:count]
        points = [q.assignments for q in queued]
        if exp.type is ExperimentType.RANDOM and len(points) < count:
            return _random_draw(exp, points, count, alive), [q.id for q in queued]
        if exp.type is ExperimentType.GRID and len(points) < count:
            # a grid needs the visited points' indices only, not the observations
            taken = self.storage.taken_grid_points(exp.id)
            points += next_grid_points(exp, taken, count - len(points))
        elif len(points) < count:
            observations, pending = self.storage.load_history(exp.id)
            request = SuggestRequest(
                experiment=exp,
                observations=observations,
                pending=pending,
                count=count - len(points),
                sequence=self.storage.count_suggestions(exp.id) + len(points),
            )
            if self.pool is not None and in_pool(request):
                points += self.pool.suggest(request, alive)
            else:
                points += suggest(request)
        return points, [q.id for q in queued]

    def create_manual_suggestion(
        self,
        experiment_id: str,
        assignments: Assignments,
        metadata: dict[str, Any],
        lease: int | None = None,
        call: Call = SYSTEM,
    ) -> Suggestion:
        """A suggestion of the caller's own assignments (checked as an observation's are)."""
        lease_seconds(lease, "lease_seconds")
        validation.validate_metadata(metadata, "metadata")
        fingerprint = _fingerprint(call, experiment_id, assignments, metadata, lease)
        replayed = self._replay(call, "CreateSuggestions", fingerprint)
        if replayed is not None:
            return replayed.result[0]  # type: ignore[index,return-value]
        with self.storage.experiment_lock(experiment_id):
            exp = self._active(experiment_id, call.principal)
            _check_not_runs_only(exp)
            assignments = validation.validate_assignments(exp, assignments, "assignments")
            lease = lease or exp.suggestion_lease_seconds or DEFAULT_SUGGESTION_LEASE_SECONDS
            made = self._idempotent(
                call,
                "CreateSuggestions",
                fingerprint,
                lambda write: self.storage.create_suggestions(
                    experiment_id, [assignments], metadata, lease, write
                ),
            )
        return made[0]

    def update_suggestion_metadata(
        self,
        experiment_id: str,
        suggestion_id: str,
        metadata: dict[str, Any],
        call: Call = SYSTEM,
    ) -> Suggestion:
        validation.validate_metadata(metadata, "metadata")
        fingerprint = _fingerprint(call, experiment_id, suggestion_id, metadata)
        replayed = self._replay(call, "UpdateSuggestion", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        self._guard(call, experiment_id, write=True)
        return self._idempotent(
            call,
            "UpdateSuggestion",
            fingerprint,
            lambda write: self.storage.update_suggestion_metadata(
                experiment_id, suggestion_id, metadata, write
            ),
        )

    def delete_open_suggestions(self, experiment_id: str, call: Call = SYSTEM) -> int:
        """Deletes every open (or expired) suggestion; returns how many."""
        self._guard(call, experiment_id, write=True)
        deleted = 0
        for state in (SuggestionState.OPEN, SuggestionState.EXPIRED):
            while True:
                page = self.storage.list_suggestions(experiment_id, state, MAX_PAGE_SIZE, "")
                for s in page.items:
                    with contextlib.suppress(NotFound, FailedPrecondition):  # observed meanwhile
                        self.storage.delete_suggestion(experiment_id, s.id)
                        deleted += 1
                if not page.next_token:
                    break
        return deleted

    # -------------------------------------------------------------- queued suggestions

    def create_queued_suggestion(
        self, experiment_id: str, assignments: Assignments, call: Call = SYSTEM
    ) -> QueuedSuggestion:
        fingerprint = _fingerprint(call, experiment_id, assignments)
        replayed = self._replay(call, "CreateQueuedSuggestion", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        exp = self._active(experiment_id, call.principal)
        assignments = validation.validate_assignments(exp, assignments, "assignments")
        with self.storage.experiment_lock(experiment_id):
            if len(self.storage.list_queued_suggestions(experiment_id)) >= MAX_QUEUED_SUGGESTIONS:
                raise InvalidArgument.single(
                    "assignments",
                    f"at most {MAX_QUEUED_SUGGESTIONS} queued suggestions wait in an experiment",
                )
            return self._idempotent(
                call,
                "CreateQueuedSuggestion",
                fingerprint,
                lambda write: self.storage.create_queued_suggestion(
                    experiment_id, assignments, write
                ),
            )

    def list_queued_suggestions(
        self, experiment_id: str, call: Call = SYSTEM
    ) -> list[QueuedSuggestion]:
        self._guard(call, experiment_id)
        return self.storage.list_queued_suggestions(experiment_id)

    def get_queued_suggestion(
        self, experiment_id: str, queued_id: str, call: Call = SYSTEM
    ) -> QueuedSuggestion:
        for q in self.list_queued_suggestions(experiment_id, call):
            if q.id == queued_id:
                return q
        raise NotFound(f"queued suggestion {queued_id!r} not found in experiment {experiment_id!r}")

    def delete_queued_suggestion(
        self, experiment_id: str, queued_id: str, call: Call = SYSTEM
    ) -> None:
        fingerprint = _fingerprint(call, experiment_id, queued_id)
        if self._replay(call, "DeleteQueuedSuggestion", fingerprint) is not None:
            return
        self._guard(call, experiment_id, write=True)
        with self.storage.experiment_lock(experiment_id):
            self._idempotent(
                call,
                "DeleteQueuedSuggestion",
                fingerprint,
                lambda write: self.storage.delete_queued_suggestion(
                    experiment_id, queued_id, write
                ),
            )

    def get_suggestion(
        self, experiment_id: str, suggestion_id: str, call: Call = SYSTEM
    ) -> Suggestion:
        self._guard(call, experiment_id)
        return self.storage.get_suggestion(experiment_id, suggestion_id)

    def list_suggestions(
        self,
        experiment_id: str,
        state: SuggestionState | None,
        page_size: int,
        page_token: str,
        call: Call = SYSTEM,
    ) -> Page[Suggestion]:
        self._guard(call, experiment_id)
        return self.storage.list_suggestions(
            experiment_id, state, _page_size(page_size), page_token
        )

    def delete_suggestion(
        self, experiment_id: str, suggestion_id: str, call: Call = SYSTEM
    ) -> None:
        fingerprint = _fingerprint(call, experiment_id, suggestion_id)
        if self._replay(call, "DeleteSuggestion", fingerprint) is not None:
            return
        self._guard(call, experiment_id, write=True)
        self._idempotent(
            call,
            "DeleteSuggestion",
            fingerprint,
            lambda write: self.storage.delete_suggestion(experiment_id, suggestion_id, write),
        )

    def renew_suggestion_lease(
        self,
        experiment_id: str,
        suggestion_id: str,
        lease: int | None,
        call: Call = SYSTEM,
    ) -> Suggestion:
        lease_seconds(lease, "lease_seconds")
        fingerprint = _fingerprint(call, experiment_id, suggestion_id, lease)
        replayed = self._replay(call, "RenewSuggestionLease", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        self._guard(call, experiment_id, write=True)
        return self._idempotent(
            call,
            "RenewSuggestionLease",
            fingerprint,
            lambda write: self.storage.renew_suggestion(experiment_id, suggestion_id, lease, write),
        )

    # -------------------------------------------------------------- observations

    def create_observation(
        self, experiment_id: str, obs: Observation, call: Call = SYSTEM
    ) -> Observation:
        fingerprint = _fingerprint(call, experiment_id, obs)
        replayed = self._replay(call, "CreateObservation", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        exp = self._active(experiment_id, call.principal)
        _check_not_runs_only(exp)
        self._prepare_observation(exp, obs, "observation")
        # Storage re-checks that the suggestion is open, atomically with the insert.
        return self._idempotent(
            call,
            "CreateObservation",
            fingerprint,
            lambda write: self.storage.create_observation(obs, write),
        )

    def _prepare_observation(self, exp: Experiment, obs: Observation, prefix: str) -> None:
        """Fills a suggestion's assignments in and checks the observation."""
        if obs.suggestion_id is not None and obs.assignments:
            raise InvalidArgument.single(
                f"{prefix}.assignments", "give either a suggestion_id or assignments, not both"
            )
        if obs.suggestion_id is not None:
            suggestion = self.storage.get_suggestion(exp.id, obs.suggestion_id)
            if suggestion.state is SuggestionState.CLOSED:
                raise FailedPrecondition(
                    f"suggestion {obs.suggestion_id!r} is closed: it already has an observation"
                )
            obs.assignments = suggestion.assignments
        validation.validate_observation(exp, obs, prefix)
        obs.experiment_id = exp.id

    def create_observations(
        self, experiment_id: str, observations: list[Observation], call: Call = SYSTEM
    ) -> list[Observation]:
        """A batch: every observation is checked, then all are stored at once or none."""
        if not 1 <= len(observations) <= MAX_OBSERVATIONS_PER_BATCH:
            raise InvalidArgument.single(
                "observations", f"between 1 and {MAX_OBSERVATIONS_PER_BATCH} observations"
            )
        fingerprint = _fingerprint(call, experiment_id, observations)
        replayed = self._replay(call, "BatchCreateObservations", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        exp = self._active(experiment_id, call.principal)
        _check_not_runs_only(exp)
        seen: dict[str, int] = {}
        for i, obs in enumerate(observations):
            prefix = f"observations[{i}]"
            self._prepare_observation(exp, obs, prefix)
            if obs.suggestion_id is not None:
                if obs.suggestion_id in seen:
                    raise InvalidArgument.single(
                        f"{prefix}.suggestion_id",
                        f"observations[{seen[obs.suggestion_id]}] reports the same suggestion",
                    )
                seen[obs.suggestion_id] = i
        return self._idempotent(
            call,
            "BatchCreateObservations",
            fingerprint,
            lambda write: self.storage.create_observations(observations, write),
        )

    def delete_observations(self, experiment_id: str, call: Call = SYSTEM) -> int:
        """Deletes every observation of the experiment; returns how many."""
        self._guard(call, experiment_id, write=True)
        deleted = 0
        while True:
            page = self.storage.list_observations(experiment_id, MAX_PAGE_SIZE, "")
            for o in page.items:
                with contextlib.suppress(NotFound):
                    self.storage.delete_observation(experiment_id, o.id)
                    deleted += 1
            if not page.items:
                return deleted

    def get_observation(
        self, experiment_id: str, observation_id: str, call: Call = SYSTEM
    ) -> Observation:
        self._guard(call, experiment_id)
        return self.storage.get_observation(experiment_id, observation_id)

    def list_observations(
        self, experiment_id: str, page_size: int, page_token: str, call: Call = SYSTEM
    ) -> Page[Observation]:
        self._guard(call, experiment_id)
        return self.storage.list_observations(experiment_id, _page_size(page_size), page_token)

    def update_observation(
        self, experiment_id: str, patch: Observation, paths: list[str], call: Call = SYSTEM
    ) -> Observation:
        if not paths:
            raise InvalidArgument.single("update_mask", "required: name the fields to change")
        for path in paths:
            if path not in MUTABLE_OBSERVATION_FIELDS:
                raise InvalidArgument.single(
                    "update_mask", f"{path!r} is not updatable (values, failed, metadata are)"
                )
        fingerprint = _fingerprint(call, experiment_id, patch, sorted(paths))
        replayed = self._replay(call, "UpdateObservation", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        exp = self._active(experiment_id, call.principal)
        current = self.storage.get_observation(experiment_id, patch.id)
        updated = dataclasses.replace(current)
        for path in paths:
            setattr(updated, path, getattr(patch, path))
        validation.validate_observation_values(exp, updated.failed, updated.values, "observation")
        validation.validate_metadata(updated.metadata, "observation.metadata")
        return self._idempotent(
            call,
            "UpdateObservation",
            fingerprint,
            lambda write: self.storage.update_observation(updated, write),
        )

    def delete_observation(
        self, experiment_id: str, observation_id: str, call: Call = SYSTEM
    ) -> None:
        fingerprint = _fingerprint(call, experiment_id, observation_id)
        if self._replay(call, "DeleteObservation", fingerprint) is not None:
            return
        self._guard(call, experiment_id, write=True)
        self._idempotent(
            call,
            "DeleteObservation",
            fingerprint,
            lambda write: self.storage.delete_observation(experiment_id, observation_id, write),
        )

    def best_assignments(
        self, experiment_id: str, call: Call = SYSTEM
    ) -> tuple[list[Observation], str]:
        exp = self.storage.get_experiment(experiment_id)
        self._check_reach(call.principal, exp.project, experiment_id)
        incumbent = exp.progress.best_observation
        if incumbent is not None and exp.num_solutions == 1:
            # kept by storage with every write: no need to read the history
            return [incumbent], ""
        observations, _ = self.storage.load_history(experiment_id)
        return best.best_observations(exp, observations)

    def stopping_reasons(self, experiment_id: str, call: Call = SYSTEM) -> list[str]:
        """Why the experiment may stop (budget reached, stagnation); empty to go on."""
        exp = self.storage.get_experiment(experiment_id)
        self._check_reach(call.principal, exp.project, experiment_id)
        observations, _ = self.storage.load_history(experiment_id)
        return stopping.stopping_reasons(exp, observations)

    def parameter_importances(
        self, experiment_id: str, call: Call = SYSTEM
    ) -> dict[str, dict[str, float] | None]:
        """Per metric, each parameter's importance (summing to 1), None for a metric
        with fewer than ``importance.MIN_POINTS`` successful values."""
        exp = self.storage.get_experiment(experiment_id)
        self._check_reach(call.principal, exp.project, experiment_id)
        names = [p.name for p in exp.parameters]
        if len(names) == 1:  # the one parameter explains all the model can
            return {m.name: {names[0]: 1.0} for m in exp.metrics}
        observations, _ = self.storage.load_history(experiment_id)
        return {
            metric.name: self._metric_importances(exp, metric.name, names, observations)
            for metric in exp.metrics
        }

    def _metric_importances(
        self, exp: Experiment, metric: str, names: list[str], observations: list[Observation]
    ) -> dict[str, float] | None:
        points = [
            (o.assignments, v)
            for o in observations
            if not o.failed and (v := o.value_of(metric)) is not None
        ]
        if len(points) < importance.MIN_POINTS:
            return None
        key = (exp.id, metric, importance.points_key(points))
        with self._importances_lock:
            if key in self._importances:
                self._importances.move_to_end(key)
                return self._importances[key]
        scores = dict(importance.importances(exp, [a for a, _ in points], [v for _, v in points]))
        out = {n: scores[n] for n in names}
        with self._importances_lock:
            self._importances[key] = out
            while len(self._importances) > IMPORTANCE_CACHE_SIZE:
                self._importances.popitem(last=False)
        return out

    # -------------------------------------------------------------- experiments: soft delete

    def soft_delete_experiment(
        self, experiment_id: str, include_runs: bool = False, call: Call = SYSTEM
    ) -> Experiment:
        """Marks the experiment DELETED (still readable; no new data), and its
        training runs deleted too when ``include_runs``."""
        current = self.storage.get_experiment(experiment_id)
        self._check_write(call.principal, current.project, experiment_id)
        patch = dataclasses.replace(current, state=ExperimentState.DELETED)
        exp = self.update_experiment(experiment_id, patch, ["state"], call)
        if include_runs:
            for run in self._all_runs(None, experiment_id):
                self.storage.update_training_run(
                    run.id, lambda r: (dataclasses.replace(r, deleted=True), None)
                )
        return exp

    # -------------------------------------------------------------- projects

    def create_project(self, project: Project, call: Call = SYSTEM) -> Project:
        fingerprint = _fingerprint(call, project)
        replayed = self._replay(call, "CreateProject", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        runs.validate_project(project)
        self._check_create_in(call.principal, project.id, "project.id")
        return self._idempotent(
            call,
            "CreateProject",
            fingerprint,
            lambda write: self.storage.create_project(project, write),
        )

    def get_project(self, project_id: str, call: Call = SYSTEM) -> Project:
        if not call.principal.reaches(project_id):
            raise NotFound(f"project {project_id[:100]!r} not found")
        return self.storage.get_project(project_id)

    def list_projects(self, call: Call = SYSTEM) -> list[Project]:
        p = call.principal
        return self.storage.list_projects(p.projects if p.scoped else None)

    def update_project(
        self,
        project_id: str,
        name: str | None,
        metadata: dict[str, Any] | None,
        call: Call = SYSTEM,
    ) -> Project:
        fingerprint = _fingerprint(call, project_id, name, metadata)
        replayed = self._replay(call, "UpdateProject", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        current = self.get_project(project_id, call)
        if not call.principal.can_write(project_id):
            raise PermissionDenied("this token is read-only")
        updated = dataclasses.replace(
            current,
            name=current.name if name is None else name,
            metadata=current.metadata if metadata is None else metadata,
        )
        runs.validate_project(updated)
        return self._idempotent(
            call,
            "UpdateProject",
            fingerprint,
            lambda write: self.storage.update_project(updated, write),
        )

    # -------------------------------------------------------------- training runs

    def create_training_run(
        self,
        project: str | None,
        experiment_id: str | None,
        name: str,
        metadata: dict[str, Any],
        call: Call = SYSTEM,
    ) -> TrainingRun:
        """A run in a project, or a run of a runs-only experiment carrying its
        next suggestion's assignments (queued ones first)."""
        run = TrainingRun(id="", project=project or "", name=name, metadata=metadata)
        fingerprint = _fingerprint(call, project, experiment_id, name, metadata)
        replayed = self._replay(call, "CreateTrainingRun", fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        if experiment_id is None:
            self.get_project(run.project, call)
            self._check_create_in(call.principal, run.project, "project")
            runs.validate_run(run)
            return self._idempotent(
                call,
                "CreateTrainingRun",
                fingerprint,
                lambda write: self.storage.create_training_run(run, write=write),
            )
        with self.storage.experiment_lock(experiment_id):
            # a retry racing its first attempt waits here, then finds its record
            replayed = self._replay(call, "CreateTrainingRun", fingerprint)
            if replayed is not None:
                return replayed.result  # type: ignore[return-value]
            exp = self._active(experiment_id, call.principal)
            if not exp.runs_only:
                raise InvalidArgument.single(
                    "experiment",
                    f"experiment {experiment_id!r} is not driven by runs: create suggestions",
                )
            run.project, run.experiment_id = exp.project, exp.id
            runs.validate_run(run)
            if not call.alive():
                raise Cancelled("the call ended before its run was made")
            drawn, queued = self._next_points(exp, 1, call.alive)
            # runs-only experiments take no suggestions: the count is the lock holder's
            points = drawn(self.storage.count_suggestions(exp.id)) if callable(drawn) else drawn
            run.assignments = dict(points[0])
            lease = exp.suggestion_lease_seconds or DEFAULT_SUGGESTION_LEASE_SECONDS
            return self._idempotent(
                call,
                "CreateTrainingRun",
                fingerprint,
                lambda write: self.storage.create_training_run(
                    run, points[0], lease, write, queued
                ),
            )

    def get_training_run(self, run_id: str, call: Call = SYSTEM) -> TrainingRun:
        run = self.storage.get_training_run(run_id)
        if not call.principal.reaches(run.project):
            raise NotFound(f"training run {run_id!r} not found")
        return run

    def list_training_runs(
        self,
        project: str | None,
        experiment_id: str | None,
        page_size: int,
        page_token: str,
        deleted: bool | None = False,
        call: Call = SYSTEM,
    ) -> Page[TrainingRun]:
        if experiment_id is not None:
            self._guard(call, experiment_id)
        elif project is None or not call.principal.reaches(project):
            raise NotFound(f"project {(project or '')[:100]!r} not found")
        return self.storage.list_training_runs(
            project, experiment_id, _page_size(page_size), page_token, deleted
        )

    def _all_runs(self, project: str | None, experiment_id: str | None) -> list[TrainingRun]:
        out: list[TrainingRun] = []
        token = ""
        while True:
            page = self.storage.list_training_runs(
                project, experiment_id, MAX_PAGE_SIZE, token, deleted=None
            )
            out += page.items
            token = page.next_token
            if not token:
                return out

    def update_training_run(
        self, run_id: str, patch: runs.RunPatch, merge: bool, call: Call = SYSTEM
    ) -> TrainingRun:
        """Applies a PUT (replace) or MERGE (recursive merge) to a run; a run of an
        experiment that ends (completed or failed) reports its observation."""
        return self._update_run(run_id, patch, merge, call, "UpdateTrainingRun")

    def _update_run(
        self, run_id: str, patch: runs.RunPatch, merge: bool, call: Call, method: str
    ) -> TrainingRun:
        fingerprint = _fingerprint(call, run_id, patch, merge)
        replayed = self._replay(call, method, fingerprint)
        if replayed is not None:
            return replayed.result  # type: ignore[return-value]
        current = self.get_training_run(run_id, call)
        if not call.principal.can_write(current.project):
            raise PermissionDenied("this token is read-only")
        exp = None
        if current.experiment_id is not None:
            with contextlib.suppress(NotFound):
                exp = self.storage.get_experiment(current.experiment_id)

        names = set()
        if exp is not None:
            names = {p.name for p in exp.parameters} | {k.name for k in exp.conditionals}

        def change(run: TrainingRun) -> runs.RunChange:
            fixed = {k for k in run.assignments if k in names}
            updated = runs.apply_patch(run, patch, merge, fixed)
            observation = None
            if (
                exp is not None
                and exp.state is ExperimentState.ACTIVE
                and updated.finished
                and not run.finished
                and run.observation_id is None
            ):
                observation = runs.observation_of(exp, updated)
            return updated, observation

        return self._idempotent(
            call,
            method,
            fingerprint,
            lambda write: self.storage.update_training_run(run_id, change, write),
        )

    def delete_training_run(self, run_id: str, call: Call = SYSTEM) -> None:
        self._update_run(run_id, runs.RunPatch(deleted=True), True, call, "DeleteTrainingRun")

    def create_checkpoint(
        self,
        run_id: str,
        values: dict[str, RunValue],
        metadata: dict[str, Any],
        call: Call = SYSTEM,
    ) -> Checkpoint:
        # The run as it became is recorded: its last checkpoint is this call's.
        fingerprint = _fingerprint(call, run_id, values, metadata)
        replayed = self._replay(call, "CreateCheckpoint", fingerprint)
        if replayed is not None:
            return replayed.result.checkpoints[-1]  # type: ignore[union-attr]
        current = self.get_training_run(run_id, call)
        if not call.principal.can_write(current.project):
            raise PermissionDenied("this token is read-only")

        def change(run: TrainingRun) -> runs.RunChange:
            checkpoint = runs.new_checkpoint(run, values, metadata)
            return dataclasses.replace(run, checkpoints=[*run.checkpoints, checkpoint]), None

        updated = self._idempotent(
            call,
            "CreateCheckpoint",
            fingerprint,
            lambda write: self.storage.update_training_run(run_id, change, write),
        )
        return updated.checkpoints[-1]

    def best_training_runs(self, experiment_id: str, call: Call = SYSTEM) -> list[TrainingRun]:
        """The runs whose observations are the experiment's best assignments."""
        observations, _ = self.best_assignments(experiment_id, call)
        by_observation = {
            r.observation_id: r
            for r in self._all_runs(None, experiment_id)
            if r.observation_id is not None and not r.deleted
        }
        return [by_observation[o.id] for o in observations if o.id in by_observation]

    # -------------------------------------------------------------- tokens

    def create_token(self, token: Token, call: Call = SYSTEM) -> tuple[Token, str]:
        """Stores a new token; returns it with its secret (shown only here)."""
        self._check_admin(call.principal)
        _validate_token(token)
        secret = tenancy.new_secret()
        return self.storage.create_token(token, tenancy.secret_hash(secret)), secret

    def list_tokens(self, call: Call = SYSTEM) -> list[Token]:
        self._check_admin(call.principal)
        return self.storage.list_tokens()

    def revoke_token(self, token_id: str, call: Call = SYSTEM) -> Token:
        self._check_admin(call.principal)
        return self.storage.revoke_token(token_id)

    def caller_token(self, call: Call = SYSTEM) -> Token:
        p = call.principal
        found = next((t for t in self.storage.list_tokens() if t.id == p.id), None)
        return found or Token(p.id, p.id, p.role, sorted(p.projects))

    # -------------------------------------------------------------- helpers

    def _idempotent(
        self, call: Call, method: str, fingerprint: str, run: Callable[[Write], R]
    ) -> R:
        """Runs a write once per request id: a retry gets the recorded result."""
        if not call.request_id:
            return run(Write(alive=call.alive))
        _check_request_id(call.request_id)
        key = RequestKey(call.principal.id, call.request_id, method, fingerprint)
        try:
            return run(Write(request=key, alive=call.alive))
        except DuplicateRequest:
            # a concurrent call with the same id committed first
            prior = self.storage.find_request(key.principal, key.request_id)
            assert prior is not None
            return _matching(prior, key)  # type: ignore[return-value]

    def _replay(self, call: Call, method: str, fingerprint: str) -> RecordedRequest | None:
        """The record of a retried request (its result is what the first call
        returned), None when the request id is new or absent."""
        if not call.request_id:
            return None
        _check_request_id(call.request_id)
        prior = self.storage.find_request(call.principal.id, call.request_id)
        if prior is not None:
            _matching(prior, RequestKey(call.principal.id, call.request_id, method, fingerprint))
        return prior

    def _guard(self, call: Call, experiment_id: str, write: bool = False) -> None:
        """Access check for calls that do not load the experiment anyway."""
        principal = call.principal
        if principal.scoped or (write and principal.role is Role.READ):
            project = self.storage.experiment_project(experiment_id)
            (self._check_write if write else self._check_reach)(principal, project, experiment_id)

    @staticmethod
    def _check_reach(principal: Principal, project: str, experiment_id: str) -> None:
        # Out of reach reads as absent: a token cannot learn what other projects hold.
        if not principal.reaches(project):
            raise NotFound(f"experiment {experiment_id!r} not found")

    def _check_write(self, principal: Principal, project: str, experiment_id: str) -> None:
        self._check_reach(principal, project, experiment_id)
        if not principal.can_write(project):
            raise PermissionDenied("this token is read-only")

    @staticmethod
    def _check_create_in(principal: Principal, project: str, field: str) -> None:
        if principal.role is Role.READ:
            raise PermissionDenied("this token is read-only")
        if not principal.can_write(project):
            reach = ", ".join(repr(p) for p in sorted(principal.projects))
            raise PermissionDenied(
                f"{field}: this token may create experiments only in the projects {reach}"
            )

    @staticmethod
    def _check_admin(principal: Principal) -> None:
        if principal.role is not Role.ADMIN:
            raise PermissionDenied("managing tokens needs an admin token")

    def _active(self, experiment_id: str, principal: Principal = ANONYMOUS) -> Experiment:
        """The experiment a write goes to (without its progress), checked."""
        exp = self.storage.get_definition(experiment_id)
        self._check_write(principal, exp.project, experiment_id)
        if exp.state is not ExperimentState.ACTIVE:
            raise FailedPrecondition(
                f"experiment {experiment_id!r} is {exp.state.value}: it accepts no new data"
            )
        return exp


def _random_draw(
    exp: Experiment, queued: list[Assignments], count: int, alive: Callable[[], bool]
) -> Draw:
    """``queued`` then random points up to ``count``, drawn at the sequence numbers the
    write assigns (a random point depends on the seed and its number alone)."""

    def draw(first: int) -> list[Assignments]:
        if not alive():
            raise Cancelled("the call ended before its suggestions were made")
        request = SuggestRequest(
            experiment=exp,
            observations=[],
            pending=[],
            count=count - len(queued),
            sequence=first + len(queued),
        )
        return queued + suggest(request)

    return draw


def _check_not_runs_only(exp: Experiment) -> None:
    if exp.runs_only:
        raise PermissionDenied(
            f"experiment {exp.id!r} is driven by training runs: create runs instead"
        )


def _check_metrics_update(current: Experiment, patch: Experiment) -> None:
    """Only metric thresholds may change after create."""
    same_shape = len(current.metrics) == len(patch.metrics) and all(
        (a.name, a.objective, a.strategy) == (b.name, b.objective, b.strategy)
        for a, b in zip(current.metrics, patch.metrics, strict=True)
    )
    if not same_shape:
        raise InvalidArgument.single(
            "experiment.metrics",
            "only thresholds can change after create; names, objectives, strategies are fixed",
        )


def _check_request_id(request_id: str) -> None:
    if not REQUEST_ID.fullmatch(request_id):
        raise InvalidArgument.single(
            "request_id", "at most 64 characters of letters, digits and . _ : -"
        )


def _matching(prior: RecordedRequest, key: RequestKey) -> Result:
    if (prior.key.method, prior.key.fingerprint) != (key.method, key.fingerprint):
        raise FailedPrecondition(
            f"request_id {key.request_id!r} was already used for a different request"
            f" ({prior.key.method}); use a new id for a new request"
        )
    return prior.result


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _fingerprint(call: Call, *args: Any) -> str:
    """A digest of a request's content: the same id with other content is refused.
    Only a call with a request id needs one."""
    if not call.request_id:
        return ""
    text = json.dumps(args, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _validate_token(token: Token) -> None:
    if len(token.name) > MAX_TOKEN_NAME_LENGTH:
        raise InvalidArgument.single("token.name", f"at most {MAX_TOKEN_NAME_LENGTH} characters")
    if validation.has_control(token.name):
        raise InvalidArgument.single("token.name", f"a token name {validation.NO_CONTROL}")
    if token.role is Role.ADMIN:
        if token.projects:
            raise InvalidArgument.single(
                "token.projects", "must be empty for an admin token (it reaches every project)"
            )
        return
    if not token.projects:
        raise InvalidArgument.single(
            "token.projects", 'required for read and write tokens ("*" for every project)'
        )
    if len(token.projects) > MAX_TOKEN_PROJECTS:
        raise InvalidArgument.single("token.projects", f"at most {MAX_TOKEN_PROJECTS} projects")
    for i, project in enumerate(token.projects):
        if project == tenancy.ALL_PROJECTS:
            continue
        if not 0 < len(project) <= MAX_PROJECT_LENGTH or not _PROJECT_NAME.fullmatch(project):
            raise InvalidArgument.single(
                f"token.projects[{i}]",
                f"a project name has 1 to {MAX_PROJECT_LENGTH} characters of "
                f'{PROJECT_PATTERN[:-1]} (or "*" for every project)',
            )
    if len(set(token.projects)) != len(token.projects):
        raise InvalidArgument.single("token.projects", "a project is listed twice")
