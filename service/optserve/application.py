"""Use cases of the service: validation, storage and optimizers put together.

Servicers call one method per RPC; this layer knows nothing of gRPC.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from .domain import best, validation
from .domain.errors import FailedPrecondition, InvalidArgument
from .domain.model import (
    Experiment,
    ExperimentState,
    ExperimentType,
    Observation,
    Suggestion,
    SuggestionState,
)
from .optimizers import SuggestRequest, suggest
from .storage import Page, Storage

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_SUGGESTIONS_PER_CALL = 100
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


def _page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument.single("page_size", "must be >= 0")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class Application:
    """The service's operations over one storage backend."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # -------------------------------------------------------------- experiments

    def create_experiment(self, exp: Experiment, seed: int | None) -> Experiment:
        exp.seed = secrets.randbits(63) if seed is None else seed
        exp.state = ExperimentState.ACTIVE
        validation.validate_experiment(exp)
        if exp.type is ExperimentType.GRID and exp.observation_budget is None:
            exp.observation_budget = validation.grid_size(exp)
        return self._with_best(self.storage.create_experiment(exp))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._with_best(self.storage.get_experiment(experiment_id))

    def list_experiments(
        self, project: str, state: ExperimentState | None, page_size: int, page_token: str
    ) -> Page[Experiment]:
        page = self.storage.list_experiments(project, state, _page_size(page_size), page_token)
        page.items = [self._with_best(e) for e in page.items]
        return page

    def update_experiment(
        self, experiment_id: str, patch: Experiment, paths: list[str]
    ) -> Experiment:
        if not paths:
            raise InvalidArgument.single("update_mask", "required: name the fields to change")
        current = self.storage.get_experiment(experiment_id)
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
        return self._with_best(self.storage.update_experiment(updated))

    def delete_experiment(self, experiment_id: str) -> None:
        self.storage.delete_experiment(experiment_id)

    def _with_best(self, exp: Experiment) -> Experiment:
        if exp.progress.observation_count and len(exp.optimized_metrics) == 1:
            observations, _ = self.storage.load_history(exp.id)
            top, _ = best.best_observations(dataclasses.replace(exp, num_solutions=1), observations)
            exp.progress.best_observation = top[0] if top else None
        return exp

    # -------------------------------------------------------------- suggestions

    def create_suggestions(
        self, experiment_id: str, count: int, metadata: dict[str, Any]
    ) -> list[Suggestion]:
        count = count or 1
        if not 1 <= count <= MAX_SUGGESTIONS_PER_CALL:
            raise InvalidArgument.single(
                "count", f"must be between 1 and {MAX_SUGGESTIONS_PER_CALL}"
            )
        with self.storage.experiment_lock(experiment_id):
            exp = self._active(experiment_id)
            observations, pending = self.storage.load_history(experiment_id)
            request = SuggestRequest(
                experiment=exp,
                observations=observations,
                pending=pending,
                count=count,
                sequence=self.storage.count_suggestions(experiment_id),
            )
            points = suggest(request)
            return self.storage.create_suggestions(experiment_id, points, metadata)

    def get_suggestion(self, experiment_id: str, suggestion_id: str) -> Suggestion:
        return self.storage.get_suggestion(experiment_id, suggestion_id)

    def list_suggestions(
        self, experiment_id: str, state: SuggestionState | None, page_size: int, page_token: str
    ) -> Page[Suggestion]:
        return self.storage.list_suggestions(
            experiment_id, state, _page_size(page_size), page_token
        )

    def delete_suggestion(self, experiment_id: str, suggestion_id: str) -> None:
        self.storage.delete_suggestion(experiment_id, suggestion_id)

    # -------------------------------------------------------------- observations

    def create_observation(self, experiment_id: str, obs: Observation) -> Observation:
        exp = self._active(experiment_id)
        if obs.suggestion_id is not None and obs.assignments:
            raise InvalidArgument.single(
                "observation.assignments", "give either a suggestion_id or assignments, not both"
            )
        if obs.suggestion_id is not None:
            suggestion = self.storage.get_suggestion(experiment_id, obs.suggestion_id)
            if suggestion.state is not SuggestionState.OPEN:
                raise FailedPrecondition(
                    f"suggestion {obs.suggestion_id!r} is closed: it already has an observation"
                )
            obs.assignments = suggestion.assignments
        validation.validate_observation(exp, obs)
        obs.experiment_id = experiment_id
        # Storage re-checks that the suggestion is open, atomically with the insert.
        return self.storage.create_observation(obs)

    def get_observation(self, experiment_id: str, observation_id: str) -> Observation:
        return self.storage.get_observation(experiment_id, observation_id)

    def list_observations(
        self, experiment_id: str, page_size: int, page_token: str
    ) -> Page[Observation]:
        return self.storage.list_observations(experiment_id, _page_size(page_size), page_token)

    def update_observation(
        self, experiment_id: str, patch: Observation, paths: list[str]
    ) -> Observation:
        if not paths:
            raise InvalidArgument.single("update_mask", "required: name the fields to change")
        for path in paths:
            if path not in MUTABLE_OBSERVATION_FIELDS:
                raise InvalidArgument.single(
                    "update_mask", f"{path!r} is not updatable (values, failed, metadata are)"
                )
        exp = self._active(experiment_id)
        current = self.storage.get_observation(experiment_id, patch.id)
        updated = dataclasses.replace(current)
        for path in paths:
            setattr(updated, path, getattr(patch, path))
        validation.validate_observation_values(exp, updated.failed, updated.values, "observation")
        return self.storage.update_observation(updated)

    def delete_observation(self, experiment_id: str, observation_id: str) -> None:
        self.storage.delete_observation(experiment_id, observation_id)

    def best_assignments(self, experiment_id: str) -> tuple[list[Observation], str]:
        exp = self.storage.get_experiment(experiment_id)
        observations, _ = self.storage.load_history(experiment_id)
        return best.best_observations(exp, observations)

    # -------------------------------------------------------------- helpers

    def _active(self, experiment_id: str) -> Experiment:
        exp = self.storage.get_experiment(experiment_id)
        if exp.state is not ExperimentState.ACTIVE:
            raise FailedPrecondition(
                f"experiment {experiment_id!r} is {exp.state.value}: it accepts no new data"
            )
        return exp


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
