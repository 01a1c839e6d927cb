"""The :class:`Connection`: one gRPC channel and the calls of OptimizationService."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from optserve_client import _tls
from optserve_client import converters as conv
from optserve_client._core import ExperimentsResource
from optserve_client._errors import ApiError
from optserve_client._proto.optserve.v1 import service_pb2 as pb
from optserve_client._proto.optserve.v1 import service_pb2_grpc
from optserve_client._retry import RetryPolicy, check_request_id, new_request_id
from optserve_client._targets import ROUND_ROBIN, channel_target
from optserve_client.objects import (
    BestAssignments,
    Checkpoint,
    Experiment,
    Observation,
    Page,
    Project,
    QueuedSuggestion,
    StoppingCriteria,
    Suggestion,
    TrainingRun,
)

__all__ = ["DEFAULT_TARGET", "Connection"]

DEFAULT_TARGET = "localhost:50051"
TARGET_ENV = "OPTSERVE_TARGET"
TOKEN_ENV = "OPTSERVE_TOKEN"

_log = logging.getLogger("optserve_client")

# Experiment fields UpdateExperiment may change, by their Python name.
_UPDATABLE = {
    "name": "name",
    "project": "project",
    "metadata": "metadata",
    "budget": "observation_budget",
    "observation_budget": "observation_budget",
    "parallel_bandwidth": "parallel_bandwidth",
    "state": "state",
    "metrics": "metrics",
}


class Connection:
    """A connection to an optserve server.

    Every call takes and returns plain objects (:mod:`optserve_client.objects`)
    and raises :class:`~optserve_client.ApiError` on failure. Every attempt
    has a deadline, so a server that is down or stuck gives ``UNAVAILABLE`` or
    ``DEADLINE_EXCEEDED`` instead of a hang.

    Calls failing with ``UNAVAILABLE`` or ``DEADLINE_EXCEEDED`` are retried
    with exponential backoff and full jitter (``retry``: by default 5 attempts,
    pauses of up to 0.1 s doubling to at most 5 s); every other code is raised
    at once. Each write (create, update, delete) carries a request id, fresh
    for each call and the same on all its attempts, so a retry of a write the
    server already applied returns the first response instead of applying it
    again. Pass ``request_id=`` to a write to choose the id yourself, e.g. to
    repeat a call that failed after all its attempts.

    Several replicas of the server: give them all, comma-separated
    (``"10.0.0.5:50051,10.0.0.6:50051"``), or a ``dns:///name:port`` whose name
    has an address per replica. Calls are spread over them round-robin, a
    replica that is down is skipped, and a call that fails with ``UNAVAILABLE``
    on one is retried (on the next), with the same request id for a write.

    Args:
        target: ``host:port`` of the server, several of them comma-separated, or
            any gRPC target (``dns:///name:port``, ``ipv4:a:p,b:p``); defaults to
            ``$OPTSERVE_TARGET``, then ``localhost:50051``.
        token: Sent as ``authorization: Bearer <token>`` metadata; defaults to
            ``$OPTSERVE_TOKEN`` (none when unset or empty).
        timeout: Deadline of each attempt in seconds (overridable per call).
        retry: The :class:`~optserve_client.RetryPolicy`;
            ``RetryPolicy.never()`` makes every call once.
        tls: Connect over TLS. None (the default): when ``$OPTSERVE_TLS`` is
            true or any certificate below is given (by argument or environment).
        tls_ca: Root certificates that verify the server (PEM bytes or a
            file's path); default ``$OPTSERVE_TLS_CA``, then the system's roots.
        tls_cert: Client certificate chain for servers that verify clients
            (mutual TLS); default ``$OPTSERVE_TLS_CERT``.
        tls_key: The client certificate's private key; default
            ``$OPTSERVE_TLS_KEY``.
        tls_server_name: Name to verify in the server's certificate when it
            is not the target's host; default ``$OPTSERVE_TLS_SERVER_NAME``.
        credentials: Ready-made ``grpc.ChannelCredentials`` instead of the
            ``tls*`` arguments.
        wait_for_ready: Queue calls while the channel connects instead of
            failing fast (still bounded by the deadline).
        options: Extra gRPC channel options.
    """

    def __init__(
        self,
        target: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        *,
        retry: RetryPolicy | None = None,
        tls: bool | None = None,
        tls_ca: _tls.Pem | None = None,
        tls_cert: _tls.Pem | None = None,
        tls_key: _tls.Pem | None = None,
        tls_server_name: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        wait_for_ready: bool = False,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.timeout = float(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.wait_for_ready = wait_for_ready
        self._rng = random.Random()
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        if credentials is None:
            credentials = _tls.credentials(tls, tls_ca, tls_cert, tls_key)
        elif tls is not None or any(v is not None for v in (tls_ca, tls_cert, tls_key)):
            raise ValueError("give credentials or the tls* arguments, not both")
        self.tls = credentials is not None
        channel_options = dict(self._channel_defaults())
        server_name = tls_server_name or os.environ.get(_tls.SERVER_NAME_ENV)
        if server_name and self.tls:
            channel_options["grpc.ssl_target_name_override"] = server_name
        channel_options.update(dict(options))
        grpc_target = channel_target(self.target)
        if credentials is None:
            self._channel = grpc.insecure_channel(grpc_target, options=[*channel_options.items()])
        else:
            self._channel = grpc.secure_channel(
                grpc_target, credentials, options=[*channel_options.items()]
            )
        self._stub = service_pb2_grpc.OptimizationServiceStub(self._channel)

    def _channel_defaults(self) -> dict[str, Any]:
        # The channel reconnects at least as often as calls are retried, or a
        # retry after a server restart fails fast on a channel still waiting
        # out its own reconnect backoff (gRPC's default grows to 120 s).
        initial_ms = max(100, int(self.retry.initial_backoff * 1000))
        return {
            "grpc.initial_reconnect_backoff_ms": initial_ms,
            "grpc.max_reconnect_backoff_ms": max(initial_ms, int(self.retry.max_backoff * 1000)),
            # every address of the target gets calls, not only the first that answers
            "grpc.service_config": ROUND_ROBIN,
        }

    def __repr__(self) -> str:
        scheme = "tls" if self.tls else "plaintext"
        return f"Connection(target={self.target!r}, {scheme}, timeout={self.timeout})"

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        request: Any,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> Any:
        """Calls ``method``, retrying as :attr:`retry` says.

        A request with a ``request_id`` field (every write) gets ``request_id``,
        or a fresh one, before the first attempt: every attempt sends the same
        bytes.
        """
        if "request_id" in type(request).DESCRIPTOR.fields_by_name:
            request.request_id = (
                check_request_id(request_id) if request_id is not None else new_request_id()
            )
        elif request_id is not None:
            raise ValueError(f"{method} takes no request_id")
        policy = self.retry
        per_attempt = self.timeout if timeout is None else timeout
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            attempt_timeout = per_attempt
            if policy.deadline is not None:
                attempt_timeout = min(per_attempt, policy.deadline - (time.monotonic() - start))
            try:
                return getattr(self._stub, method)(
                    request,
                    timeout=attempt_timeout,
                    metadata=self._metadata,
                    wait_for_ready=self.wait_for_ready,
                )
            except grpc.RpcError as exc:
                error = ApiError.from_rpc_error(exc, attempts=attempt)
                if error.code not in policy.retryable_codes or attempt >= policy.max_attempts:
                    raise error from exc
                pause = policy.backoff(attempt - 1, self._rng)
                if policy.deadline is not None:
                    left = policy.deadline - (time.monotonic() - start)
                    if pause >= left:
                        raise error from exc
                _log.info(
                    "%s failed with %s (attempt %d of %d), retrying in %.2f s",
                    method,
                    error.code.name,
                    attempt,
                    policy.max_attempts,
                    pause,
                )
                time.sleep(pause)

    def experiments(self, experiment_id: str | None = None) -> ExperimentsResource:
        """SigOpt's core-module chains: ``conn.experiments().create(...)``,
        ``conn.experiments(ID).fetch()``, ``.suggestions().create()``,
        ``.observations().create(suggestion=..., value=...)``,
        ``.best_assignments().fetch()``."""
        return ExperimentsResource(self, experiment_id)

    # --- experiments ---------------------------------------------------------

    def create_experiment(
        self,
        experiment: Mapping[str, Any] | Experiment | None = None,
        *,
        request_id: str | None = None,
        **fields: Any,
    ) -> Experiment:
        """Creates an experiment from a SigOpt-style dict and/or keyword arguments.

        Example: ``conn.create_experiment(name="x", parameters=[dict(name="a",
        type="double", bounds=dict(min=0, max=1))], metrics=[dict(name="m")])``.
        """
        spec = (
            dict(conv._fields(experiment, conv.EXPERIMENT_KEYS, "experiment")) if experiment else {}
        )
        spec.update(fields)
        request = pb.CreateExperimentRequest(experiment=conv.experiment_to_proto(spec))
        response = self._call("CreateExperiment", request, request_id=request_id)
        return conv.experiment_from_proto(response.experiment)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Returns one experiment with its progress."""
        response = self._call("GetExperiment", pb.GetExperimentRequest(id=experiment_id))
        return conv.experiment_from_proto(response.experiment)

    def list_experiments(
        self,
        *,
        project: str | None = None,
        state: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        """One page of experiments, newest first."""
        request = pb.ListExperimentsRequest(
            project=project or "",
            state=conv._enum_to_proto(state, conv.EXPERIMENT_STATES, "state"),
            page_size=page_size or 0,
            page_token=page_token or "",
        )
        response = self._call("ListExperiments", request)
        return Page(
            [conv.experiment_from_proto(e) for e in response.experiments], response.next_page_token
        )

    def iter_experiments(self, **filters: Any) -> Iterator[Experiment]:
        """Every experiment (all pages); takes list_experiments' filters."""
        return _pages(self.list_experiments, **filters)

    def update_experiment(
        self, experiment_id: str, *, request_id: str | None = None, **fields: Any
    ) -> Experiment:
        """Changes the given fields (name, project, metadata, budget or
        observation_budget, parallel_bandwidth, state, metrics' thresholds)."""
        unknown = sorted(set(fields) - set(_UPDATABLE))
        if unknown:
            raise ValueError(f"cannot update {', '.join(unknown)} (immutable or unknown)")
        experiment = conv.experiment_to_proto({"id": experiment_id, **fields})
        mask = field_mask_pb2.FieldMask(paths=sorted({_UPDATABLE[k] for k in fields}))
        request = pb.UpdateExperimentRequest(experiment=experiment, update_mask=mask)
        response = self._call("UpdateExperiment", request, request_id=request_id)
        return conv.experiment_from_proto(response.experiment)

    def delete_experiment(self, experiment_id: str, *, request_id: str | None = None) -> None:
        """Deletes an experiment with its suggestions and observations."""
        request = pb.DeleteExperimentRequest(id=experiment_id)
        self._call("DeleteExperiment", request, request_id=request_id)

    # --- suggestions ---------------------------------------------------------

    def create_suggestions(
        self,
        experiment_id: str,
        count: int = 1,
        metadata: Mapping[str, Any] | None = None,
        *,
        lease_seconds: int | None = None,
        assignments: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> list[Suggestion]:
        """Creates ``count`` open suggestions (queued ones are served first).

        With ``assignments`` (and ``count`` 1) the suggestion is the caller's
        own point (SigOpt's manual suggestion), checked as an observation's
        assignments are.

        Each stays open for ``lease_seconds`` (default: the experiment's
        ``suggestion_lease_seconds``) unless observed or renewed with
        :meth:`renew_lease`; then it expires (state ``"expired"``) and no
        longer counts as pending. An observation of an expired suggestion is
        still accepted.
        """
        request = pb.CreateSuggestionsRequest(
            experiment_id=experiment_id, count=count, metadata=conv.metadata_to_proto(metadata)
        )
        if lease_seconds is not None:
            request.lease_seconds = int(lease_seconds)
        for k, v in conv.assignments_to_proto(assignments or {}).items():
            request.assignments[k].CopyFrom(v)
        response = self._call("CreateSuggestions", request, request_id=request_id)
        return [conv.suggestion_from_proto(s) for s in response.suggestions]

    def create_suggestion(
        self,
        experiment_id: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        lease_seconds: int | None = None,
        assignments: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Suggestion:
        """Creates one open suggestion (see :meth:`create_suggestions`)."""
        (suggestion,) = self.create_suggestions(
            experiment_id,
            1,
            metadata,
            lease_seconds=lease_seconds,
            assignments=assignments,
            request_id=request_id,
        )
        return suggestion

    def renew_lease(
        self,
        experiment_id: str,
        suggestion_id: str,
        lease_seconds: int | None = None,
        *,
        request_id: str | None = None,
    ) -> Suggestion:
        """Extends an open suggestion's lease to ``lease_seconds`` from now
        (default: its current lease length); returns it with its new
        ``expire_time``. A worker's heartbeat while it evaluates the suggestion."""
        request = pb.RenewSuggestionLeaseRequest(experiment_id=experiment_id, id=suggestion_id)
        if lease_seconds is not None:
            request.lease_seconds = int(lease_seconds)
        response = self._call("RenewSuggestionLease", request, request_id=request_id)
        return conv.suggestion_from_proto(response.suggestion)

    def get_suggestion(self, experiment_id: str, suggestion_id: str) -> Suggestion:
        request = pb.GetSuggestionRequest(experiment_id=experiment_id, id=suggestion_id)
        return conv.suggestion_from_proto(self._call("GetSuggestion", request).suggestion)

    def list_suggestions(
        self,
        experiment_id: str,
        *,
        state: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Suggestion]:
        """One page of suggestions, oldest first; ``state`` is "open", "closed"
        or "expired" (every state when None)."""
        request = pb.ListSuggestionsRequest(
            experiment_id=experiment_id,
            state=conv._enum_to_proto(state, conv.SUGGESTION_STATES, "state"),
            page_size=page_size or 0,
            page_token=page_token or "",
        )
        response = self._call("ListSuggestions", request)
        return Page(
            [conv.suggestion_from_proto(s) for s in response.suggestions], response.next_page_token
        )

    def iter_suggestions(self, experiment_id: str, **filters: Any) -> Iterator[Suggestion]:
        return _pages(self.list_suggestions, experiment_id, **filters)

    def delete_suggestion(
        self, experiment_id: str, suggestion_id: str, *, request_id: str | None = None
    ) -> None:
        """Deletes an open (or expired) suggestion that will not be evaluated."""
        request = pb.DeleteSuggestionRequest(experiment_id=experiment_id, id=suggestion_id)
        self._call("DeleteSuggestion", request, request_id=request_id)

    def update_suggestion(
        self,
        experiment_id: str,
        suggestion_id: str,
        *,
        metadata: Mapping[str, Any] | None,
        request_id: str | None = None,
    ) -> Suggestion:
        """Replaces a suggestion's metadata."""
        suggestion = conv.suggestion_to_proto({"id": suggestion_id, "metadata": metadata or {}})
        request = pb.UpdateSuggestionRequest(experiment_id=experiment_id, suggestion=suggestion)
        response = self._call("UpdateSuggestion", request, request_id=request_id)
        return conv.suggestion_from_proto(response.suggestion)

    # --- queued suggestions --------------------------------------------------

    def create_queued_suggestion(
        self, experiment_id: str, assignments: Mapping[str, Any], *, request_id: str | None = None
    ) -> QueuedSuggestion:
        """Queues assignments (every parameter): the next suggestion (or run)
        of the experiment serves them before the optimizer's points."""
        request = pb.CreateQueuedSuggestionRequest(experiment_id=experiment_id)
        for k, v in conv.assignments_to_proto(assignments).items():
            request.assignments[k].CopyFrom(v)
        response = self._call("CreateQueuedSuggestion", request, request_id=request_id)
        return conv.queued_suggestion_from_proto(response.queued_suggestion)

    def list_queued_suggestions(self, experiment_id: str) -> list[QueuedSuggestion]:
        """The queue, oldest first."""
        request = pb.ListQueuedSuggestionsRequest(experiment_id=experiment_id)
        response = self._call("ListQueuedSuggestions", request)
        return [conv.queued_suggestion_from_proto(q) for q in response.queued_suggestions]

    def delete_queued_suggestion(
        self, experiment_id: str, queued_id: str, *, request_id: str | None = None
    ) -> None:
        request = pb.DeleteQueuedSuggestionRequest(experiment_id=experiment_id, id=queued_id)
        self._call("DeleteQueuedSuggestion", request, request_id=request_id)

    # --- observations --------------------------------------------------------

    def create_observation(
        self,
        experiment_id: str,
        *,
        suggestion: str | Suggestion | None = None,
        assignments: Mapping[str, Any] | None = None,
        values: Any = None,
        value: float | None = None,
        value_stddev: float | None = None,
        failed: bool = False,
        metadata: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Observation:
        """Reports an observation of a suggestion (or of explicit assignments).

        ``values`` is a list of ``dict(name, value, value_stddev)`` or a mapping
        name -> value; ``value`` (with ``value_stddev``) is a shortcut for an
        experiment with one metric, whose name is then looked up.
        """
        if value is not None:
            if values:
                raise ValueError("give value or values, not both")
            metrics = self.get_experiment(experiment_id).metrics
            if len(metrics) != 1:
                raise ValueError("value= needs an experiment with exactly one metric; use values=")
            values = [dict(name=metrics[0].name, value=value, value_stddev=value_stddev)]
        observation = conv.observation_to_proto(
            dict(
                suggestion=suggestion,
                assignments=assignments,
                values=values,
                failed=failed,
                metadata=metadata,
            )
        )
        request = pb.CreateObservationRequest(experiment_id=experiment_id, observation=observation)
        response = self._call("CreateObservation", request, request_id=request_id)
        return conv.observation_from_proto(response.observation)

    def create_observations(
        self,
        experiment_id: str,
        observations: list[Mapping[str, Any]],
        *,
        request_id: str | None = None,
    ) -> list[Observation]:
        """Reports up to 2,500 observations at once (each a mapping with the
        arguments of ``create_observation`` but ``value``): all are stored or none."""
        request = pb.BatchCreateObservationsRequest(
            experiment_id=experiment_id,
            observations=[
                conv.observation_to_proto(o, f"observations[{i}]")
                for i, o in enumerate(observations)
            ],
        )
        response = self._call("BatchCreateObservations", request, request_id=request_id)
        return [conv.observation_from_proto(o) for o in response.observations]

    def get_observation(self, experiment_id: str, observation_id: str) -> Observation:
        request = pb.GetObservationRequest(experiment_id=experiment_id, id=observation_id)
        return conv.observation_from_proto(self._call("GetObservation", request).observation)

    def list_observations(
        self,
        experiment_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Observation]:
        """One page of observations in creation order."""
        request = pb.ListObservationsRequest(
            experiment_id=experiment_id, page_size=page_size or 0, page_token=page_token or ""
        )
        response = self._call("ListObservations", request)
        return Page(
            [conv.observation_from_proto(o) for o in response.observations],
            response.next_page_token,
        )

    def iter_observations(self, experiment_id: str, **filters: Any) -> Iterator[Observation]:
        return _pages(self.list_observations, experiment_id, **filters)

    def update_observation(
        self,
        experiment_id: str,
        observation_id: str,
        *,
        request_id: str | None = None,
        **fields: Any,
    ) -> Observation:
        """Changes ``values``, ``failed`` and/or ``metadata`` of an observation."""
        unknown = sorted(set(fields) - {"values", "failed", "metadata"})
        if unknown:
            raise ValueError(f"cannot update {', '.join(unknown)}")
        observation = conv.observation_to_proto({"id": observation_id, **fields})
        request = pb.UpdateObservationRequest(
            experiment_id=experiment_id,
            observation=observation,
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
        )
        response = self._call("UpdateObservation", request, request_id=request_id)
        return conv.observation_from_proto(response.observation)

    def delete_observation(
        self, experiment_id: str, observation_id: str, *, request_id: str | None = None
    ) -> None:
        request = pb.DeleteObservationRequest(experiment_id=experiment_id, id=observation_id)
        self._call("DeleteObservation", request, request_id=request_id)

    # --- best assignments ----------------------------------------------------

    def get_best_assignments(self, experiment_id: str) -> BestAssignments:
        """The best observations so far (``.data``), or why there are none."""
        request = pb.GetBestAssignmentsRequest(experiment_id=experiment_id)
        response = self._call("GetBestAssignments", request)
        return BestAssignments(
            [conv.observation_from_proto(o) for o in response.observations], response.explanation
        )

    # --- projects ------------------------------------------------------------

    def create_project(
        self,
        project_id: str,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        request_id: str | None = None,
    ) -> Project:
        """Creates a project (``project_id``: 1 to 100 of ``[a-z0-9._-]``);
        ALREADY_EXISTS when it exists (a retry of this call gets the project)."""
        project = conv.project_to_proto(dict(id=project_id, name=name, metadata=metadata))
        response = self._call(
            "CreateProject", pb.CreateProjectRequest(project=project), request_id=request_id
        )
        return conv.project_from_proto(response.project)

    def get_project(self, project_id: str) -> Project:
        response = self._call("GetProject", pb.GetProjectRequest(id=project_id))
        return conv.project_from_proto(response.project)

    def list_projects(self) -> list[Project]:
        """Every project the token reaches, by id."""
        response = self._call("ListProjects", pb.ListProjectsRequest())
        return [conv.project_from_proto(p) for p in response.projects]

    def update_project(
        self, project_id: str, *, request_id: str | None = None, **fields: Any
    ) -> Project:
        """Changes ``name`` and/or ``metadata``."""
        unknown = sorted(set(fields) - {"name", "metadata"})
        if unknown:
            raise ValueError(f"cannot update {', '.join(unknown)}")
        request = pb.UpdateProjectRequest(
            project=conv.project_to_proto({"id": project_id, **fields}),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
        )
        response = self._call("UpdateProject", request, request_id=request_id)
        return conv.project_from_proto(response.project)

    # --- training runs -------------------------------------------------------

    def create_training_run(
        self,
        *,
        project: str | None = None,
        experiment_id: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> TrainingRun:
        """Creates an active run: of a runs-only experiment (it carries the
        assignments of the suggestion made for it) or, without
        ``experiment_id``, in ``project``."""
        request = pb.CreateTrainingRunRequest(
            project=project or "",
            experiment_id=experiment_id or "",
            name=name or "",
            metadata=conv.metadata_to_proto(metadata),
        )
        response = self._call("CreateTrainingRun", request, request_id=request_id)
        return conv.run_from_proto(response.training_run)

    def get_training_run(self, run_id: str) -> TrainingRun:
        response = self._call("GetTrainingRun", pb.GetTrainingRunRequest(id=run_id))
        return conv.run_from_proto(response.training_run)

    def list_training_runs(
        self,
        *,
        project: str | None = None,
        experiment_id: str | None = None,
        deleted: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[TrainingRun]:
        """One page of the runs of a project or an experiment, oldest first;
        ``deleted=True`` lists the soft-deleted ones instead."""
        request = pb.ListTrainingRunsRequest(
            project=project or "",
            experiment_id=experiment_id or "",
            deleted=deleted,
            page_size=page_size or 0,
            page_token=page_token or "",
        )
        response = self._call("ListTrainingRuns", request)
        return Page(
            [conv.run_from_proto(r) for r in response.training_runs], response.next_page_token
        )

    def iter_training_runs(self, **filters: Any) -> Iterator[TrainingRun]:
        """Every run (all pages); takes list_training_runs' filters."""
        return _pages(self.list_training_runs, **filters)

    def update_training_run(
        self, run_id: str, *, merge: bool = False, request_id: str | None = None, **fields: Any
    ) -> TrainingRun:
        """Changes the given fields (name, state, deleted, assignments, values,
        metadata, extras): replaced, or with ``merge=True`` merged recursively
        into the stored maps (SigOpt's MERGE). ``values`` maps metric names to
        numbers, :class:`RunValue` or ``dict(value, value_stddev)``. A run of an
        experiment set to ``"completed"`` or ``"failed"`` reports its observation."""
        unknown = sorted(set(fields) - set(conv.RUN_UPDATABLE))
        if unknown:
            raise ValueError(f"cannot update {', '.join(unknown)}")
        if not fields:
            raise ValueError("name at least one field to update")
        request = pb.UpdateTrainingRunRequest(
            training_run=conv.run_patch_to_proto(run_id, fields),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
            merge=merge,
        )
        response = self._call("UpdateTrainingRun", request, request_id=request_id)
        return conv.run_from_proto(response.training_run)

    def delete_training_run(self, run_id: str, *, request_id: str | None = None) -> None:
        """Soft-deletes a run (``update_training_run(id, deleted=False)`` restores it)."""
        request = pb.DeleteTrainingRunRequest(id=run_id)
        self._call("DeleteTrainingRun", request, request_id=request_id)

    def create_checkpoint(
        self,
        run_id: str,
        values: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        request_id: str | None = None,
    ) -> Checkpoint:
        """Appends a checkpoint (at most 200 per run)."""
        checkpoint = conv.run_pb.Checkpoint(metadata=conv.metadata_to_proto(metadata))
        for name, value in values.items():
            checkpoint.values[str(name)].CopyFrom(
                conv.run_value_to_proto(value, f"values[{name!r}]")
            )
        request = pb.CreateCheckpointRequest(training_run_id=run_id, checkpoint=checkpoint)
        response = self._call("CreateCheckpoint", request, request_id=request_id)
        return conv.checkpoint_from_proto(response.checkpoint)

    def get_best_training_runs(self, experiment_id: str) -> list[TrainingRun]:
        """The runs of the experiment's best assignments, in their order."""
        request = pb.GetBestTrainingRunsRequest(experiment_id=experiment_id)
        response = self._call("GetBestTrainingRuns", request)
        return [conv.run_from_proto(r) for r in response.training_runs]

    # --- analysis ------------------------------------------------------------

    def get_stopping_criteria(self, experiment_id: str) -> StoppingCriteria:
        """Whether the experiment may stop, and why (SigOpt's stopping criteria)."""
        request = pb.GetStoppingCriteriaRequest(experiment_id=experiment_id)
        response = self._call("GetStoppingCriteria", request)
        return StoppingCriteria(response.should_stop, list(response.reasons))

    def get_parameter_importances(self, experiment_id: str) -> dict[str, dict[str, float]]:
        """Metric name -> parameter name -> importance (summing to 1); a metric
        with fewer than three successful values maps to an empty dict."""
        request = pb.GetParameterImportancesRequest(experiment_id=experiment_id)
        response = self._call("GetParameterImportances", request)
        return {m.metric: dict(m.importances) for m in response.metrics}


def _pages(list_call: Any, *args: Any, **filters: Any) -> Iterator[Any]:
    token = None
    while True:
        page = list_call(*args, page_token=token, **filters)
        yield from page.data
        if not page.next_page_token:
            return
        token = page.next_page_token
