"""SigOpt's "core module" call chains on a Connection, e.g.
``conn.experiments(EXPERIMENT_ID).suggestions().create()``.

A thin layer over :class:`~optserve_client.Connection`'s methods, so that code
written against SigOpt's ``Connection`` runs with only the import changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optserve_client.objects import BestAssignments, Experiment, Observation, Page, Suggestion

if TYPE_CHECKING:
    from optserve_client.connection import Connection


class ExperimentsResource:
    """``conn.experiments()`` / ``conn.experiments(id)``."""

    def __init__(self, conn: Connection, experiment_id: str | None) -> None:
        self._conn, self._id = conn, experiment_id

    def _need_id(self) -> str:
        if not self._id:
            raise ValueError("this call needs an experiment id: conn.experiments(ID)")
        return self._id

    def create(self, **fields: Any) -> Experiment:
        return self._conn.create_experiment(fields)

    def fetch(self, **filters: Any) -> Experiment | Page[Experiment]:
        """The experiment, or (without an id) a page of experiments."""
        if self._id:
            return self._conn.get_experiment(self._id)
        return self._conn.list_experiments(**filters)

    def update(self, **fields: Any) -> Experiment:
        return self._conn.update_experiment(self._need_id(), **fields)

    def delete(self) -> None:
        self._conn.delete_experiment(self._need_id())

    def suggestions(self, suggestion_id: str | None = None) -> SuggestionsResource:
        return SuggestionsResource(self._conn, self._need_id(), suggestion_id)

    def observations(self, observation_id: str | None = None) -> ObservationsResource:
        return ObservationsResource(self._conn, self._need_id(), observation_id)

    def best_assignments(self) -> BestAssignmentsResource:
        return BestAssignmentsResource(self._conn, self._need_id())


class SuggestionsResource:
    """``conn.experiments(id).suggestions()`` / ``.suggestions(suggestion_id)``."""

    def __init__(self, conn: Connection, experiment_id: str, suggestion_id: str | None) -> None:
        self._conn, self._experiment_id, self._id = conn, experiment_id, suggestion_id

    def create(
        self, metadata: dict[str, Any] | None = None, lease_seconds: int | None = None
    ) -> Suggestion:
        return self._conn.create_suggestion(
            self._experiment_id, metadata, lease_seconds=lease_seconds
        )

    def renew_lease(self, lease_seconds: int | None = None) -> Suggestion:
        """Extends this open suggestion's lease (see Connection.renew_lease)."""
        if not self._id:
            raise ValueError("renew_lease needs a suggestion id: suggestions(ID)")
        return self._conn.renew_lease(self._experiment_id, self._id, lease_seconds)

    def fetch(self, **filters: Any) -> Suggestion | Page[Suggestion]:
        if self._id:
            return self._conn.get_suggestion(self._experiment_id, self._id)
        return self._conn.list_suggestions(self._experiment_id, **filters)

    def delete(self, state: str | None = None) -> None:
        """Deletes this suggestion, or (without an id, with ``state="open"``)
        every open suggestion."""
        if self._id:
            self._conn.delete_suggestion(self._experiment_id, self._id)
            return
        if state != "open":
            raise ValueError('without a suggestion id, pass state="open"')
        for suggestion in list(self._conn.iter_suggestions(self._experiment_id, state="open")):
            self._conn.delete_suggestion(self._experiment_id, suggestion.id)


class ObservationsResource:
    """``conn.experiments(id).observations()`` / ``.observations(observation_id)``."""

    def __init__(self, conn: Connection, experiment_id: str, observation_id: str | None) -> None:
        self._conn, self._experiment_id, self._id = conn, experiment_id, observation_id

    def create(self, **fields: Any) -> Observation:
        return self._conn.create_observation(self._experiment_id, **fields)

    def fetch(self, **filters: Any) -> Observation | Page[Observation]:
        if self._id:
            return self._conn.get_observation(self._experiment_id, self._id)
        return self._conn.list_observations(self._experiment_id, **filters)

    def update(self, **fields: Any) -> Observation:
        if not self._id:
            raise ValueError("update needs an observation id: observations(ID)")
        return self._conn.update_observation(self._experiment_id, self._id, **fields)

    def delete(self) -> None:
        if not self._id:
            raise ValueError("delete needs an observation id: observations(ID)")
        self._conn.delete_observation(self._experiment_id, self._id)


class BestAssignmentsResource:
    """``conn.experiments(id).best_assignments()``."""

    def __init__(self, conn: Connection, experiment_id: str) -> None:
        self._conn, self._experiment_id = conn, experiment_id

    def fetch(self) -> BestAssignments:
        return self._conn.get_best_assignments(self._experiment_id)
