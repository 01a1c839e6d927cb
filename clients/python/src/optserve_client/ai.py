"""SigOpt's "AI module" shape: ``create_experiment``, ``experiment.loop()``, runs.

Example::

    import optserve_client as sigopt

    experiment = sigopt.create_experiment(
        name="demo",
        parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
        metrics=[dict(name="score", objective="maximize")],
        budget=20,
    )
    for run in experiment.loop():
        with run:
            run.log_metric("score", 1 - (run.params.x - 0.3) ** 2)
    print(experiment.get_best_assignments())

A run of an experiment created with ``runs_only=True`` (SigOpt's AI
experiment) is a training run stored on the server: ``create_run()`` asks
the server for one (it carries its suggestion's assignments), ``log_metric``
and friends update it as they are called, and ending it sets its state, upon
which the server reports its observation. ``get_runs()`` and
``get_best_runs()`` then return training runs. Module-level
:func:`create_run` makes a run in a project, without experiment, and
:func:`get_run` fetches any run.

Otherwise a run is one suggestion; leaving its ``with`` block reports one observation:
the logged metrics, or a failed observation when the block raised (the
exception still propagates), ``log_failure()`` was called, or nothing was
logged at all (a run that measured nothing is treated as a failed evaluation,
which closes the suggestion and uses one unit of budget; a warning is logged).

Suggestions have leases: one that is neither observed nor renewed for its
lease (``lease_seconds``, else the experiment's ``suggestion_lease_seconds``,
else a day) expires and stops counting as pending, so the work of a worker
that died is handed out again. While a run's ``with`` block runs (and while
``loop()`` waits for a run's body), a heartbeat thread renews the lease every
third of it, so a long evaluation does not expire while its process lives;
``heartbeat=False`` turns it off, a number sets the interval in seconds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import grpc

from optserve_client._errors import ApiError
from optserve_client._retry import new_request_id
from optserve_client.connection import Connection
from optserve_client.objects import (
    Assignments,
    BestAssignments,
    BestRuns,
    Checkpoint,
    Experiment,
    MetricValue,
    Observation,
    Suggestion,
    TrainingRun,
)

__all__ = [
    "PROJECT_ENV",
    "ExperimentContext",
    "RunContext",
    "TrainingRunContext",
    "create_experiment",
    "create_run",
    "get_connection",
    "get_experiment",
    "get_run",
    "get_runs",
    "set_connection",
]

PROJECT_ENV = "OPTSERVE_PROJECT"

_log = logging.getLogger("optserve_client")

_lock = threading.Lock()
_default: tuple[int, Connection] | None = None


def set_connection(connection: Connection | None) -> None:
    """Sets the Connection used by the module-level functions (None: rebuild
    one from the environment on next use)."""
    global _default
    with _lock:
        _default = None if connection is None else (os.getpid(), connection)


def get_connection() -> Connection:
    """The Connection of the module-level functions, built from
    ``OPTSERVE_TARGET`` / ``OPTSERVE_TOKEN`` on first use (and again in a
    forked child, since a gRPC channel must not be shared across fork)."""
    global _default
    with _lock:
        if _default is None or _default[0] != os.getpid():
            _default = (os.getpid(), Connection())
        return _default[1]


def create_experiment(
    name: str,
    parameters: list[Any],
    metrics: list[Any] | None = None,
    *,
    conditionals: list[Any] | None = None,
    linear_constraints: list[Any] | None = None,
    budget: int | None = None,
    observation_budget: int | None = None,
    parallel_bandwidth: int | None = None,
    type: str | None = None,
    num_solutions: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    project: str | None = None,
    seed: int | None = None,
    suggestion_lease_seconds: int | None = None,
    runs_only: bool = False,
    connection: Connection | None = None,
) -> ExperimentContext:
    """Creates an experiment (SigOpt's ``sigopt.create_experiment``).

    Takes the dicts of SigOpt's documents (parameters may carry a ``prior``
    and a ``default_value``); ``budget`` and ``observation_budget`` are
    synonyms; ``suggestion_lease_seconds`` is the default lease of its
    suggestions. ``runs_only=True`` makes SigOpt's AI experiment, driven by
    training runs only (its runs are :class:`TrainingRunContext`). Raises
    ApiError (INVALID_ARGUMENT, with field violations) for an invalid experiment.
    """
    conn = connection or get_connection()
    spec = dict(
        name=name,
        parameters=parameters,
        metrics=metrics,
        conditionals=conditionals,
        linear_constraints=linear_constraints,
        budget=budget,
        observation_budget=observation_budget,
        parallel_bandwidth=parallel_bandwidth,
        type=type,
        num_solutions=num_solutions,
        metadata=metadata,
        project=project,
        seed=seed,
        suggestion_lease_seconds=suggestion_lease_seconds,
        runs_only=runs_only or None,
    )
    data = conn.create_experiment({k: v for k, v in spec.items() if v is not None})
    return ExperimentContext(data, conn)


def get_experiment(
    experiment_id: str, *, connection: Connection | None = None
) -> ExperimentContext:
    """Fetches an existing experiment (SigOpt's ``sigopt.get_experiment``)."""
    conn = connection or get_connection()
    return ExperimentContext(conn.get_experiment(experiment_id), conn)


def _project(project: str | None) -> str:
    project = project or os.environ.get(PROJECT_ENV)
    if not project:
        raise ValueError(f"name a project: project=... or ${PROJECT_ENV}")
    return project


def create_run(
    name: str | None = None,
    *,
    project: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    connection: Connection | None = None,
) -> TrainingRunContext:
    """Creates a training run in a project, without experiment (SigOpt's
    ``sigopt.create_run``); ``project`` defaults to ``$OPTSERVE_PROJECT`` and is
    created when it does not exist. Use it in a ``with`` block, or call ``end()``."""
    conn = connection or get_connection()
    project = _project(project)
    try:
        data = conn.create_training_run(project=project, name=name, metadata=metadata)
    except ApiError as exc:
        if exc.code is not grpc.StatusCode.NOT_FOUND:
            raise
        try:
            conn.create_project(project)
        except ApiError as again:  # made meanwhile by another process
            if again.code is not grpc.StatusCode.ALREADY_EXISTS:
                raise
        data = conn.create_training_run(project=project, name=name, metadata=metadata)
    return TrainingRunContext(data, conn)


def get_run(run_id: str, *, connection: Connection | None = None) -> TrainingRunContext:
    """Fetches a training run (SigOpt's ``sigopt.get_run``); an active one may
    still be logged to and ended."""
    conn = connection or get_connection()
    data = conn.get_training_run(run_id)
    experiment = (
        ExperimentContext(conn.get_experiment(data.experiment_id), conn)
        if data.experiment_id
        else None
    )
    return TrainingRunContext(data, conn, experiment)


def get_runs(
    project: str | None = None, *, deleted: bool = False, connection: Connection | None = None
) -> Iterator[TrainingRun]:
    """Every training run of a project (``$OPTSERVE_PROJECT`` by default),
    oldest first; ``deleted=True``: the soft-deleted ones."""
    conn = connection or get_connection()
    return conn.iter_training_runs(project=_project(project), deleted=deleted)


class ExperimentContext:
    """An experiment with SigOpt's AI-module methods.

    Attribute reads (``id``, ``name``, ``budget``, ``progress``, ``parameters``,
    ...) come from the last fetched :class:`~optserve_client.objects.Experiment`;
    :meth:`refresh` fetches it again.
    """

    def __init__(self, data: Experiment, connection: Connection) -> None:
        self._data = data
        self._conn = connection

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._data, name)

    def __repr__(self) -> str:
        return f"<Experiment {self._data.id} {self._data.name!r}>"

    @property
    def data(self) -> Experiment:
        """The experiment as last fetched."""
        return self._data

    @property
    def connection(self) -> Connection:
        return self._conn

    def refresh(self) -> ExperimentContext:
        """Fetches the experiment again (progress, state, ...); returns self."""
        self._data = self._conn.get_experiment(self._data.id)
        return self

    def is_finished(self) -> bool:
        """Whether the budget is used up (observations, failed ones included,
        >= budget) or the experiment is archived or deleted; refreshes first. Without a
        budget an active experiment is never finished."""
        self.refresh()
        if self._data.state in ("archived", "deleted"):
            return True
        budget = self._data.observation_budget
        return budget is not None and self._data.progress.observation_count >= budget

    def create_run(
        self,
        metadata: Mapping[str, Any] | None = None,
        *,
        lease_seconds: int | None = None,
        heartbeat: bool | float = True,
        name: str | None = None,
    ) -> RunContext | TrainingRunContext:
        """Creates a suggestion and returns its run (use it in a ``with`` block);
        for a runs-only experiment, a training run on the server (``name`` is
        its name; ``metadata`` is the run's).

        ``lease_seconds`` is the suggestion's lease (the experiment's default
        when None); ``heartbeat`` renews it while the ``with`` block runs (see
        :class:`RunContext`).
        """
        if self._data.runs_only:
            data = self._conn.create_training_run(
                experiment_id=self._data.id, name=name, metadata=metadata
            )
            run = TrainingRunContext(
                data, self._conn, self, lease_seconds=lease_seconds, heartbeat=heartbeat
            )
            if lease_seconds is not None:
                run.renew_lease(lease_seconds)
            return run
        suggestion = self._conn.create_suggestion(
            self._data.id, metadata, lease_seconds=lease_seconds
        )
        return RunContext(self, suggestion, lease_seconds=lease_seconds, heartbeat=heartbeat)

    def loop(
        self, *, lease_seconds: int | None = None, heartbeat: bool | float = True
    ) -> Iterator[RunContext | TrainingRunContext]:
        """Yields runs until :meth:`is_finished`.

        Several processes may loop over the same experiment, each with its own
        suggestions; as each checks the budget before asking for a suggestion,
        N workers may overshoot the budget by up to N - 1 observations. A run
        not ended by its ``with`` block is ended when the next one is asked for.
        Each run's lease (``lease_seconds``, else the experiment's default) is
        renewed by a heartbeat until the run ends (``heartbeat``: see
        :class:`RunContext`).
        """
        if self._data.observation_budget is None:
            raise ValueError("loop() needs an experiment with a budget; use create_run()")
        while not self.is_finished():
            run = self.create_run(lease_seconds=lease_seconds, heartbeat=heartbeat)
            run.start_heartbeat()
            try:
                yield run
            finally:
                run.stop_heartbeat()
            if not run.ended:
                run.end()

    def get_runs(self) -> Iterator[Observation] | Iterator[TrainingRun]:
        """Every training run of a runs-only experiment, else every
        observation of the experiment; oldest first."""
        if self._data.runs_only:
            return self._conn.iter_training_runs(experiment_id=self._data.id)
        return self._conn.iter_observations(self._data.id)

    def get_best_runs(self) -> BestAssignments | BestRuns:
        """The best runs: one for a single optimized metric, the whole Pareto
        front for two, up to ``num_solutions`` separated solutions otherwise;
        only successful runs satisfying every constraint metric count.

        Iterate over it as over a list of observations; when it is empty its
        ``explanation`` says why (no successful run yet, no run satisfying
        the constraint metrics, none within the optimized metrics' thresholds).
        A runs-only experiment's are its :class:`TrainingRun` objects (BestRuns).
        """
        if self._data.runs_only:
            runs = self._conn.get_best_training_runs(self._data.id)
            explanation = "" if runs else self._conn.get_best_assignments(self._data.id).explanation
            return BestRuns(runs, explanation)
        return self._conn.get_best_assignments(self._data.id)

    def get_best_assignments(self) -> list[Assignments]:
        """The assignments of :meth:`get_best_runs`."""
        return self.get_best_runs().assignments

    def archive(self) -> ExperimentContext:
        """Archives the experiment (no new suggestions or observations)."""
        self._data = self._conn.update_experiment(self._data.id, state="archived")
        return self

    def unarchive(self) -> ExperimentContext:
        """Makes an archived or soft-deleted experiment active again."""
        self._data = self._conn.update_experiment(self._data.id, state="active")
        return self

    def delete(self) -> ExperimentContext:
        """Soft-deletes the experiment (state ``"deleted"``: still readable,
        accepts no new data; :meth:`unarchive` restores it).
        ``Connection.delete_experiment`` removes it for good."""
        self._data = self._conn.update_experiment(self._data.id, state="deleted")
        return self


class RunContext:
    """One evaluation: a suggestion's parameters in, metrics (or a failure) out.

    While its ``with`` block runs, a heartbeat thread renews the suggestion's
    lease: with ``heartbeat=True`` every third of the lease, with a number
    every that many seconds, with ``False`` never. It stops when the run ends.
    A renewal failing for good (the suggestion already expired or closed)
    stops it with a warning; the run's observation is still accepted.

    Attributes:
        params: The assignments, by key (``run.params["x"]``) or attribute
            (``run.params.x``); absent conditional parameters raise
            KeyError / AttributeError.
        suggestion: The underlying suggestion (as created or last renewed).
        observation: The reported observation once the run has ended.
    """

    def __init__(
        self,
        experiment: ExperimentContext,
        suggestion: Suggestion,
        *,
        lease_seconds: int | None = None,
        heartbeat: bool | float = True,
    ) -> None:
        self.experiment = experiment
        self.suggestion = suggestion
        self.params = Assignments(suggestion.assignments)
        self.observation: Observation | None = None
        self._values: dict[str, MetricValue] = {}
        self._failed = False
        self._metadata: dict[str, Any] = {}
        self._lease_seconds = lease_seconds
        self._heartbeat_setting = heartbeat
        self._heartbeat: _Heartbeat | None = None
        # One id for the run's observation: ending again after a failed end()
        # cannot record it twice.
        self._observation_request_id = new_request_id()

    def __repr__(self) -> str:
        return f"<Run {self.suggestion.id} {dict(self.params)}>"

    @property
    def id(self) -> str:
        """The suggestion id."""
        return self.suggestion.id

    @property
    def ended(self) -> bool:
        return self.observation is not None

    @property
    def heartbeat_interval(self) -> float | None:
        """Seconds between lease renewals, None without a heartbeat."""
        setting = self._heartbeat_setting
        if setting is False or setting is None:
            return None
        if setting is True:
            lease = self._lease_seconds or self.suggestion.lease_seconds
            return lease / 3 if lease else None
        if setting <= 0:
            raise ValueError(f"heartbeat interval must be positive, got {setting}")
        return float(setting)

    def renew_lease(self, lease_seconds: int | None = None) -> Suggestion:
        """Renews the suggestion's lease now (``lease_seconds`` from now, by
        default the run's lease) and returns the renewed suggestion."""
        self._check_open()
        suggestion = self.experiment.connection.renew_lease(
            self.experiment.id, self.id, lease_seconds or self._lease_seconds
        )
        self.suggestion = suggestion
        return suggestion

    def _renew_once(self) -> Suggestion:
        return self.experiment.connection.renew_lease(
            self.experiment.id, self.id, self._lease_seconds
        )

    def start_heartbeat(self) -> None:
        """Starts renewing the lease in the background (idempotent; nothing
        without a heartbeat interval)."""
        interval = self.heartbeat_interval
        if interval is None or self.ended or self._heartbeat is not None:
            return
        self._heartbeat = _Heartbeat(self, interval)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        """Stops renewing the lease, waiting for a renewal in flight."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()

    def log_metric(self, name: str, value: float, stddev: float | None = None) -> None:
        """Records a metric value (the last one per name wins)."""
        self._check_open()
        self._values[name] = MetricValue(
            name, float(value), None if stddev is None else float(stddev)
        )

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Records several metric values at once."""
        for name, value in metrics.items():
            self.log_metric(name, value)

    def log_failure(self) -> None:
        """Marks the evaluation as failed: the run reports a failed observation."""
        self._check_open()
        self._failed = True

    def log_metadata(self, key: str | Mapping[str, Any], value: Any = None) -> None:
        """Records metadata: ``log_metadata("key", value)`` or ``log_metadata({...})``."""
        self._check_open()
        if isinstance(key, Mapping):
            self._metadata.update(key)
        else:
            self._metadata[key] = value

    def end(self) -> Observation:
        """Reports the observation (idempotent) and returns it."""
        self.stop_heartbeat()
        if self.observation is None:
            failed = self._failed or not self._values
            if failed and not self._failed:
                _log.warning(
                    "run %s ended without metrics or log_failure(); reported as failed", self.id
                )
            self.observation = self.experiment.connection.create_observation(
                self.experiment.id,
                suggestion=self.suggestion.id,
                values=[] if failed else [v.to_dict() for v in self._values.values()],
                failed=failed,
                metadata=self._metadata or None,
                request_id=self._observation_request_id,
            )
        return self.observation

    def _check_open(self) -> None:
        if self.observation is not None:
            raise RuntimeError(f"run {self.id} has already ended")

    def __enter__(self) -> RunContext:
        self.start_heartbeat()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_heartbeat()
        if self.observation is not None:
            return
        if exc is None:
            self.end()
            return
        self._failed = True
        try:
            self.end()
        except Exception:  # never hide the user's exception behind ours
            _log.exception("could not report the failure of run %s", self.id)


class TrainingRunContext:
    """A training run stored on the server (SigOpt's ``RunContext``).

    Every ``log_*`` call updates the run at once (a MERGE); ``end()`` (or
    leaving a ``with`` block) sets its state: ``"failed"`` when the block
    raised, ``log_failure()`` was called, or a run of an experiment logged no
    metric at all, else ``"completed"``. The server then reports the
    observation of a run of an experiment (a failed one when a required
    metric is missing), and :attr:`observation` holds it.

    A run of an experiment has its suggestion's lease renewed by a heartbeat
    while its ``with`` block runs, as :class:`RunContext` has.

    Attributes:
        data: The run as last returned by the server.
        params: Its assignments (``run.params.x`` / ``run.params["x"]``).
        experiment: The runs-only experiment, None for a project run.
        observation: The observation reported when a run of an experiment ended.
    """

    def __init__(
        self,
        data: TrainingRun,
        connection: Connection,
        experiment: ExperimentContext | None = None,
        *,
        lease_seconds: int | None = None,
        heartbeat: bool | float = True,
    ) -> None:
        self.data = data
        self.connection = connection
        self.experiment = experiment
        self.observation: Observation | None = None
        self.suggestion: Suggestion | None = None
        self._failed = False
        self._lease_seconds = lease_seconds
        self._heartbeat_setting = heartbeat
        self._heartbeat: _Heartbeat | None = None

    def __repr__(self) -> str:
        return f"<TrainingRun {self.data.id} {self.data.state} {dict(self.params)}>"

    @property
    def id(self) -> str:
        """The training run id."""
        return self.data.id

    @property
    def params(self) -> Assignments:
        return self.data.assignments

    @property
    def ended(self) -> bool:
        return self.data.state != "active"

    def refresh(self) -> TrainingRun:
        """Fetches the run again."""
        self.data = self.connection.get_training_run(self.id)
        return self.data

    def _merge(self, **fields: Any) -> None:
        self._check_open()
        self.data = self.connection.update_training_run(self.id, merge=True, **fields)

    def log_parameter(self, name: str, value: int | float | str) -> None:
        """Records a parameter value (those of the run's suggestion cannot change)."""
        self._merge(assignments={name: value})

    def log_parameters(self, parameters: Mapping[str, int | float | str]) -> None:
        self._merge(assignments=dict(parameters))

    def log_metric(self, name: str, value: float, stddev: float | None = None) -> None:
        """Records a metric value (the last one per name wins)."""
        self._merge(values={name: dict(value=float(value), value_stddev=stddev)})

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        self._merge(values={k: float(v) for k, v in metrics.items()})

    def log_metadata(self, key: str | Mapping[str, Any], value: Any = None) -> None:
        """Records metadata: ``log_metadata("key", value)`` or ``log_metadata({...})``."""
        self._merge(metadata=dict(key) if isinstance(key, Mapping) else {key: value})

    def log_dataset(self, name: str) -> None:
        self._merge(extras={"datasets": {name: {}}})

    def log_model(self, type: str) -> None:
        self._merge(extras={"model": {"type": type}})

    def log_checkpoint(
        self, values: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> Checkpoint:
        """Appends a checkpoint of metric values (at most 200 per run)."""
        self._check_open()
        return self.connection.create_checkpoint(self.id, values, metadata)

    def log_failure(self) -> None:
        """Marks the run as failed: ending it sets state ``"failed"``."""
        self._check_open()
        self._failed = True

    def end(self) -> TrainingRun:
        """Sets the run's final state (idempotent) and returns the run."""
        self.stop_heartbeat()
        if not self.ended:
            failed = self._failed or (self.experiment is not None and not self.data.values)
            if failed and not self._failed:
                _log.warning(
                    "run %s ended without metrics or log_failure(); reported as failed", self.id
                )
            # Setting the same final state again changes nothing: safe to retry.
            self.data = self.connection.update_training_run(
                self.id, state="failed" if failed else "completed"
            )
        if self.observation is None and self.data.observation_id and self.experiment is not None:
            self.observation = self.connection.get_observation(
                self.experiment.id, self.data.observation_id
            )
        return self.data

    def archive(self) -> None:
        """Soft-deletes the run (still readable; listed with ``deleted=True``)."""
        self.connection.delete_training_run(self.id)
        self.data.deleted = True

    # --- leases ---------------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float | None:
        setting = self._heartbeat_setting
        if self.experiment is None or not self.data.suggestion_id:
            return None
        if setting is False or setting is None:
            return None
        if setting is True:
            lease = self._lease_seconds or (self.suggestion and self.suggestion.lease_seconds)
            lease = lease or self.experiment.suggestion_lease_seconds or 86400
            return lease / 3
        if setting <= 0:
            raise ValueError(f"heartbeat interval must be positive, got {setting}")
        return float(setting)

    def _renew_once(self) -> Suggestion:
        assert self.experiment is not None and self.data.suggestion_id
        return self.connection.renew_lease(
            self.experiment.id, self.data.suggestion_id, self._lease_seconds
        )

    def renew_lease(self, lease_seconds: int | None = None) -> Suggestion:
        """Renews the lease of the run's suggestion now."""
        self._check_open()
        if self.experiment is None or not self.data.suggestion_id:
            raise ValueError("only a run of an experiment has a suggestion to renew")
        self.suggestion = self.connection.renew_lease(
            self.experiment.id, self.data.suggestion_id, lease_seconds or self._lease_seconds
        )
        return self.suggestion

    def start_heartbeat(self) -> None:
        interval = self.heartbeat_interval
        if interval is None or self.ended or self._heartbeat is not None:
            return
        self._heartbeat = _Heartbeat(self, interval)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()

    def _check_open(self) -> None:
        if self.ended:
            raise RuntimeError(f"run {self.id} has already ended")

    def __enter__(self) -> TrainingRunContext:
        self.start_heartbeat()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_heartbeat()
        if self.ended:
            return
        if exc is None:
            self.end()
            return
        self._failed = True
        try:
            self.end()
        except Exception:  # never hide the user's exception behind ours
            _log.exception("could not report the failure of run %s", self.id)


# Renewal failures that another attempt will not fix: the suggestion was
# observed, deleted or expired, or the server has no leases.
_FINAL = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


class _Heartbeat:
    """Renews a run's lease every ``interval`` seconds on a daemon thread."""

    def __init__(self, run: RunContext | TrainingRunContext, interval: float) -> None:
        self._run = run
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"optserve-heartbeat-{run.id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self) -> None:
        run = self._run
        while not self._stopped.wait(self._interval):
            try:
                suggestion = run._renew_once()
            except ApiError as exc:
                if exc.code in _FINAL:
                    _log.warning("stopped renewing the lease of run %s: %s", run.id, exc)
                    return
                _log.warning("could not renew the lease of run %s: %s", run.id, exc)
                continue
            except Exception:
                _log.exception("stopped renewing the lease of run %s", run.id)
                return
            if not self._stopped.is_set():
                run.suggestion = suggestion
