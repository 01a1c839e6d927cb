"""The OptimizationService servicer: request shape -> one application call -> response."""

from __future__ import annotations

import threading

import grpc

from ..application import Application, Call
from ..domain.errors import InvalidArgument
from ..v1 import service_pb2 as pb
from ..v1 import service_pb2_grpc
from . import converters as conv
from .auth import CALLER
from .errors import handle_errors


def _require_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument.single(field, "required: an id")
    return value


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
        page = self.app.list_experiments(
            request.project,
            conv.experiment_state_from_proto(request.state),
            request.page_size,
            request.page_token,
            self._call(context),
        )
        return pb.ListExperimentsResponse(
            experiments=[conv.experiment_to_proto(e) for e in page.items],
            next_page_token=page.next_token,
        )

    @handle_errors
    def UpdateExperiment(self, request, context):
        experiment_id = _require_id(request.experiment.id, "experiment.id")
        patch = conv.experiment_from_proto(request.experiment)
        patch.state = conv.experiment_state_from_proto(request.experiment.state)  # type: ignore[assignment]
        exp = self.app.update_experiment(
            experiment_id,
            patch,
            list(request.update_mask.paths),
            self._call(context, request.request_id),
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
        suggestions = self.app.create_suggestions(
            _require_id(request.experiment_id, "experiment_id"),
            request.count,
            conv.struct_from_proto(request.metadata),
            request.lease_seconds if request.HasField("lease_seconds") else None,
            self._call(context, request.request_id),
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
        page = self.app.list_suggestions(
            _require_id(request.experiment_id, "experiment_id"),
            conv.suggestion_state_from_proto(request.state),
            request.page_size,
            request.page_token,
            self._call(context),
        )
        return pb.ListSuggestionsResponse(
            suggestions=[conv.suggestion_to_proto(s) for s in page.items],
            next_page_token=page.next_token,
        )

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
            self._call(context),
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
        page = self.app.list_observations(
            _require_id(request.experiment_id, "experiment_id"),
            request.page_size,
            request.page_token,
            self._call(context),
        )
        return pb.ListObservationsResponse(
            observations=[conv.observation_to_proto(o) for o in page.items],
            next_page_token=page.next_token,
        )

    @handle_errors
    def UpdateObservation(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        _require_id(request.observation.id, "observation.id")
        obs = self.app.update_observation(
            experiment_id,
            conv.observation_from_proto(request.observation, experiment_id),
            list(request.update_mask.paths),
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
        return pb.GetBestAssignmentsResponse(
            observations=[conv.observation_to_proto(o) for o in observations],
            explanation=explanation,
        )
