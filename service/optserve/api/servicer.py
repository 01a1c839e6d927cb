"""The OptimizationService servicer: request shape -> one application call -> response."""

from __future__ import annotations

import threading
from typing import Any

import grpc

from ..application import Application, Call
from ..domain import limits
from ..domain.errors import InvalidArgument
from ..domain.ids import require_id as _require_id
from ..v1 import experiment_pb2, observation_pb2, service_pb2_grpc
from ..v1 import service_pb2 as pb
from . import converters as conv
from .auth import CALLER
from .errors import handle_errors
from .paging import bounded_list, bounded_page


def _check_mask(paths: list[str], message: Any) -> list[str]:
    """Update mask paths must name fields of ``message`` (checked further by the application)."""
    fields = message.DESCRIPTOR.fields_by_name
    for i, path in enumerate(paths):
        if path not in fields:
            raise InvalidArgument.single(
                f"update_mask.paths[{i}]", f"not a field of {message.DESCRIPTOR.name}"
            )
    return paths


def call_of(context: grpc.ServicerContext, stopping: threading.Event, request_id: str = "") -> Call:
    """The application's view of a call: its caller, request id and liveness."""

    def alive() -> bool:
        remaining = context.time_remaining()
        return (
            context.is_active() and (remaining is None or remaining > 0) and not stopping.is_set()
        )

    return Call(principal=CALLER.get(), request_id=request_id, alive=alive)


class OptimizationServicer(service_pb2_grpc.OptimizationServiceServicer):
    def __init__(self, app: Application, stopping: threading.Event | None = None) -> None:
        self.app = app
        # set when the grace period of a shutdown is over: writes still running roll back
        self.stopping = stopping or threading.Event()

    def _call(self, context: grpc.ServicerContext, request_id: str = "") -> Call:
        return call_of(context, self.stopping, request_id)

    # -------------------------------------------------------------- experiments

    @handle_errors
    def CreateExperiment(self, request, context: grpc.ServicerContext):
        proto = request.experiment
        seed = proto.seed if proto.HasField("seed") else None
        exp = self.app.create_experiment(
            conv.experiment_from_proto(proto), seed, self._call(context, request.request_id)
        )
        return pb.CreateExperimentResponse(experiment=conv.experiment_to_proto(exp))

    @handle_errors
    def GetExperiment(self, request, context):
        exp = self.app.get_experiment(_require_id(request.id, "id"), self._call(context))
        return pb.GetExperimentResponse(experiment=conv.experiment_to_proto(exp))

    @handle_errors
    def ListExperiments(self, request, context):
        if len(request.project) > limits.MAX_PROJECT_LENGTH:
            raise InvalidArgument.single(
                "project", f"a project name has at most {limits.MAX_PROJECT_LENGTH} characters"
            )
        state = conv.experiment_state_from_proto(request.state, "state")
        call = self._call(context)
        experiments, token = bounded_page(
            lambda size, token: self.app.list_experiments(
                request.project, state, size, token, call
            ),
            conv.experiment_to_proto,
            request.page_size,
            request.page_token,
        )
        return pb.ListExperimentsResponse(experiments=experiments, next_page_token=token)

    @handle_errors
    def UpdateExperiment(self, request, context):
        experiment_id = _require_id(request.experiment.id, "experiment.id")
        paths = _check_mask(list(request.update_mask.paths), experiment_pb2.Experiment)
        patch = conv.experiment_from_proto(request.experiment)
        state = conv.experiment_state_from_proto(request.experiment.state, "experiment.state")
        patch.state = state  # type: ignore[assignment]
        exp = self.app.update_experiment(
            experiment_id, patch, paths, self._call(context, request.request_id)
        )
        return pb.UpdateExperimentResponse(experiment=conv.experiment_to_proto(exp))

    @handle_errors
    def DeleteExperiment(self, request, context):
        self.app.delete_experiment(
            _require_id(request.id, "id"), self._call(context, request.request_id)
        )
        return pb.DeleteExperimentResponse()

    # -------------------------------------------------------------- suggestions

    @handle_errors
    def CreateSuggestions(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        metadata = conv.struct_from_proto(request.metadata, "metadata")
        # Every suggestion stores and returns the metadata: bound it times count.
        size = request.metadata.ByteSize() * max(1, request.count)
        if size > limits.MAX_SUGGESTIONS_METADATA_BYTES:
            raise InvalidArgument.single(
                "metadata",
                f"metadata times count takes at most {limits.MAX_SUGGESTIONS_METADATA_BYTES} "
                f"bytes (got {size}): ask for fewer suggestions or send less metadata",
            )
        lease = request.lease_seconds if request.HasField("lease_seconds") else None
        call = self._call(context, request.request_id)
        if request.assignments:
            if request.count > 1:
                raise InvalidArgument.single("count", "a manual suggestion is one suggestion")
            assignments = conv.assignments_from_proto(request.assignments, "assignments")
            suggestions = [
                self.app.create_manual_suggestion(experiment_id, assignments, metadata, lease, call)
            ]
        else:
            suggestions = self.app.create_suggestions(
                experiment_id, request.count, metadata, lease, call
            )
        return pb.CreateSuggestionsResponse(
            suggestions=[conv.suggestion_to_proto(s) for s in suggestions]
        )

    @handle_errors
    def GetSuggestion(self, request, context):
        s = self.app.get_suggestion(
            _require_id(request.experiment_id, "experiment_id"),
            _require_id(request.id, "id"),
            self._call(context),
        )
        return pb.GetSuggestionResponse(suggestion=conv.suggestion_to_proto(s))

    @handle_errors
    def ListSuggestions(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        state = conv.suggestion_state_from_proto(request.state, "state")
        call = self._call(context)
        suggestions, token = bounded_page(
            lambda size, token: self.app.list_suggestions(experiment_id, state, size, token, call),
            conv.suggestion_to_proto,
            request.page_size,
            request.page_token,
        )
        return pb.ListSuggestionsResponse(suggestions=suggestions, next_page_token=token)

    @handle_errors
    def DeleteSuggestion(self, request, context):
        self.app.delete_suggestion(
            _require_id(request.experiment_id, "experiment_id"),
            _require_id(request.id, "id"),
            self._call(context, request.request_id),
        )
        return pb.DeleteSuggestionResponse()

    @handle_errors
    def RenewSuggestionLease(self, request, context):
        s = self.app.renew_suggestion_lease(
            _require_id(request.experiment_id, "experiment_id"),
            _require_id(request.id, "id"),
            request.lease_seconds if request.HasField("lease_seconds") else None,
            self._call(context, request.request_id),
        )
        return pb.RenewSuggestionLeaseResponse(suggestion=conv.suggestion_to_proto(s))

    # -------------------------------------------------------------- observations

    @handle_errors
    def CreateObservation(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        obs = self.app.create_observation(
            experiment_id,
            conv.observation_from_proto(request.observation, experiment_id),
            self._call(context, request.request_id),
        )
        return pb.CreateObservationResponse(observation=conv.observation_to_proto(obs))

    @handle_errors
    def GetObservation(self, request, context):
        obs = self.app.get_observation(
            _require_id(request.experiment_id, "experiment_id"),
            _require_id(request.id, "id"),
            self._call(context),
        )
        return pb.GetObservationResponse(observation=conv.observation_to_proto(obs))

    @handle_errors
    def ListObservations(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        call = self._call(context)
        observations, token = bounded_page(
            lambda size, token: self.app.list_observations(experiment_id, size, token, call),
            conv.observation_to_proto,
            request.page_size,
            request.page_token,
        )
        return pb.ListObservationsResponse(observations=observations, next_page_token=token)

    @handle_errors
    def UpdateObservation(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        _require_id(request.observation.id, "observation.id")
        paths = _check_mask(list(request.update_mask.paths), observation_pb2.Observation)
        obs = self.app.update_observation(
            experiment_id,
            conv.observation_from_proto(request.observation, experiment_id),
            paths,
            self._call(context, request.request_id),
        )
        return pb.UpdateObservationResponse(observation=conv.observation_to_proto(obs))

    @handle_errors
    def DeleteObservation(self, request, context):
        self.app.delete_observation(
            _require_id(request.experiment_id, "experiment_id"),
            _require_id(request.id, "id"),
            self._call(context, request.request_id),
        )
        return pb.DeleteObservationResponse()

    @handle_errors
    def GetBestAssignments(self, request, context):
        observations, explanation = self.app.best_assignments(
            _require_id(request.experiment_id, "experiment_id"), self._call(context)
        )
        shown, left_out = bounded_list(observations, conv.observation_to_proto)
        if left_out:
            explanation = (
                f"{left_out} more not shown: a response holds at most "
                f"{limits.MAX_RESPONSE_BYTES} bytes; ListObservations returns them all"
            )
        return pb.GetBestAssignmentsResponse(observations=shown, explanation=explanation)

    # -------------------------------------------------------------- batches, queues

    @handle_errors
    def BatchCreateObservations(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        if len(request.observations) > limits.MAX_OBSERVATIONS_PER_BATCH:
            raise InvalidArgument.single(
                "observations", f"between 1 and {limits.MAX_OBSERVATIONS_PER_BATCH} observations"
            )
        observations = [
            conv.observation_from_proto(o, experiment_id, f"observations[{i}]")
            for i, o in enumerate(request.observations)
        ]
        made = self.app.create_observations(
            experiment_id, observations, self._call(context, request.request_id)
        )
        return pb.BatchCreateObservationsResponse(
            observations=[conv.observation_to_proto(o) for o in made]
        )

    @handle_errors
    def UpdateSuggestion(self, request, context):
        for field, _ in request.suggestion.ListFields():
            if field.name not in ("id", "metadata"):
                raise InvalidArgument.single(
                    f"suggestion.{field.name}", "only metadata can change (as over HTTP)"
                )
        s = self.app.update_suggestion_metadata(
            _require_id(request.experiment_id, "experiment_id"),
            _require_id(request.suggestion.id, "suggestion.id"),
            conv.struct_from_proto(request.suggestion.metadata, "suggestion.metadata"),
            self._call(context, request.request_id),
        )
        return pb.UpdateSuggestionResponse(suggestion=conv.suggestion_to_proto(s))

    @handle_errors
    def CreateQueuedSuggestion(self, request, context):
        q = self.app.create_queued_suggestion(
            _require_id(request.experiment_id, "experiment_id"),
            conv.assignments_from_proto(request.assignments, "assignments"),
            self._call(context, request.request_id),
        )
        return pb.CreateQueuedSuggestionResponse(
            queued_suggestion=conv.queued_suggestion_to_proto(q)
        )

    @handle_errors
    def ListQueuedSuggestions(self, request, context):
        queued = self.app.list_queued_suggestions(
            _require_id(request.experiment_id, "experiment_id"), self._call(context)
        )
        return pb.ListQueuedSuggestionsResponse(
            queued_suggestions=[conv.queued_suggestion_to_proto(q) for q in queued]
        )

    @handle_errors
    def DeleteQueuedSuggestion(self, request, context):
        self.app.delete_queued_suggestion(
            _require_id(request.experiment_id, "experiment_id"),
            _require_id(request.id, "id"),
            self._call(context, request.request_id),
        )
        return pb.DeleteQueuedSuggestionResponse()

    # -------------------------------------------------------------- projects

    @handle_errors
    def CreateProject(self, request, context):
        project = self.app.create_project(
            conv.project_from_proto(request.project), self._call(context, request.request_id)
        )
        return pb.CreateProjectResponse(project=conv.project_to_proto(project))

    @handle_errors
    def GetProject(self, request, context):
        project = self.app.get_project(request.id, self._call(context))
        return pb.GetProjectResponse(project=conv.project_to_proto(project))

    @handle_errors
    def ListProjects(self, request, context):
        projects = self.app.list_projects(self._call(context))
        return pb.ListProjectsResponse(projects=[conv.project_to_proto(p) for p in projects])

    @handle_errors
    def UpdateProject(self, request, context):
        paths = list(request.update_mask.paths)
        for i, path in enumerate(paths):
            if path not in ("name", "metadata"):
                raise InvalidArgument.single(f"update_mask.paths[{i}]", "name or metadata")
        given = conv.project_from_proto(request.project)
        project = self.app.update_project(
            request.project.id,
            given.name if "name" in paths else None,
            given.metadata if "metadata" in paths else None,
            self._call(context, request.request_id),
        )
        return pb.UpdateProjectResponse(project=conv.project_to_proto(project))

    # -------------------------------------------------------------- training runs

    @handle_errors
    def CreateTrainingRun(self, request, context):
        experiment_id = (
            _require_id(request.experiment_id, "experiment_id") if request.experiment_id else None
        )
        run = self.app.create_training_run(
            request.project or None,
            experiment_id,
            request.name,
            conv.struct_from_proto(request.metadata, "metadata"),
            self._call(context, request.request_id),
        )
        return pb.CreateTrainingRunResponse(training_run=conv.run_to_proto(run))

    @handle_errors
    def GetTrainingRun(self, request, context):
        run = self.app.get_training_run(_require_id(request.id, "id"), self._call(context))
        return pb.GetTrainingRunResponse(training_run=conv.run_to_proto(run))

    @handle_errors
    def ListTrainingRuns(self, request, context):
        experiment_id = (
            _require_id(request.experiment_id, "experiment_id") if request.experiment_id else None
        )
        call = self._call(context)
        runs, token = bounded_page(
            lambda size, token: self.app.list_training_runs(
                request.project or None, experiment_id, size, token, request.deleted, call
            ),
            conv.run_to_proto,
            request.page_size,
            request.page_token,
        )
        return pb.ListTrainingRunsResponse(training_runs=runs, next_page_token=token)

    @handle_errors
    def UpdateTrainingRun(self, request, context):
        run_id = _require_id(request.training_run.id, "training_run.id")
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument.single("update_mask", "required: name the fields to change")
        patch = conv.run_patch_from_proto(request.training_run, paths)
        run = self.app.update_training_run(
            run_id, patch, request.merge, self._call(context, request.request_id)
        )
        return pb.UpdateTrainingRunResponse(training_run=conv.run_to_proto(run))

    @handle_errors
    def DeleteTrainingRun(self, request, context):
        self.app.delete_training_run(
            _require_id(request.id, "id"), self._call(context, request.request_id)
        )
        return pb.DeleteTrainingRunResponse()

    @handle_errors
    def CreateCheckpoint(self, request, context):
        values, metadata = conv.checkpoint_from_proto(request.checkpoint)
        checkpoint = self.app.create_checkpoint(
            _require_id(request.training_run_id, "training_run_id"),
            values,
            metadata,
            self._call(context, request.request_id),
        )
        return pb.CreateCheckpointResponse(checkpoint=conv.checkpoint_to_proto(checkpoint))

    @handle_errors
    def GetBestTrainingRuns(self, request, context):
        runs = self.app.best_training_runs(
            _require_id(request.experiment_id, "experiment_id"), self._call(context)
        )
        return pb.GetBestTrainingRunsResponse(training_runs=[conv.run_to_proto(r) for r in runs])

    # -------------------------------------------------------------- analysis

    @handle_errors
    def GetStoppingCriteria(self, request, context):
        reasons = self.app.stopping_reasons(
            _require_id(request.experiment_id, "experiment_id"), self._call(context)
        )
        return pb.GetStoppingCriteriaResponse(should_stop=bool(reasons), reasons=reasons)

    @handle_errors
    def GetParameterImportances(self, request, context):
        by_metric = self.app.parameter_importances(
            _require_id(request.experiment_id, "experiment_id"), self._call(context)
        )
        return pb.GetParameterImportancesResponse(
            metrics=[
                pb.MetricImportances(metric=name, importances=by_metric[name] or {})
                for name in sorted(by_metric)
            ]
        )
