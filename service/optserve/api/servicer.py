"""The OptimizationService servicer: request shape -> one application call -> response."""

from __future__ import annotations

import grpc

from ..application import Application
from ..domain.errors import InvalidArgument
from ..v1 import service_pb2 as pb
from ..v1 import service_pb2_grpc
from . import converters as conv
from .errors import handle_errors


def _require_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument.single(field, "required: an id")
    return value


class OptimizationServicer(service_pb2_grpc.OptimizationServiceServicer):
    def __init__(self, app: Application) -> None:
        self.app = app

    # -------------------------------------------------------------- experiments

    @handle_errors
    def CreateExperiment(self, request, context: grpc.ServicerContext):
        proto = request.experiment
        seed = proto.seed if proto.HasField("seed") else None
        exp = self.app.create_experiment(conv.experiment_from_proto(proto), seed)
        return pb.CreateExperimentResponse(experiment=conv.experiment_to_proto(exp))

    @handle_errors
    def GetExperiment(self, request, context):
        exp = self.app.get_experiment(_require_id(request.id, "id"))
        return pb.GetExperimentResponse(experiment=conv.experiment_to_proto(exp))

    @handle_errors
    def ListExperiments(self, request, context):
        page = self.app.list_experiments(
            request.project,
            conv.experiment_state_from_proto(request.state),
            request.page_size,
            request.page_token,
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
        exp = self.app.update_experiment(experiment_id, patch, list(request.update_mask.paths))
        return pb.UpdateExperimentResponse(experiment=conv.experiment_to_proto(exp))

    @handle_errors
    def DeleteExperiment(self, request, context):
        self.app.delete_experiment(_require_id(request.id, "id"))
        return pb.DeleteExperimentResponse()

    # -------------------------------------------------------------- suggestions

    @handle_errors
    def CreateSuggestions(self, request, context):
        suggestions = self.app.create_suggestions(
            _require_id(request.experiment_id, "experiment_id"),
            request.count,
            conv.struct_from_proto(request.metadata),
        )
        return pb.CreateSuggestionsResponse(
            suggestions=[conv.suggestion_to_proto(s) for s in suggestions]
        )

    @handle_errors
    def GetSuggestion(self, request, context):
        s = self.app.get_suggestion(
            _require_id(request.experiment_id, "experiment_id"), _require_id(request.id, "id")
        )
        return pb.GetSuggestionResponse(suggestion=conv.suggestion_to_proto(s))

    @handle_errors
    def ListSuggestions(self, request, context):
        page = self.app.list_suggestions(
            _require_id(request.experiment_id, "experiment_id"),
            conv.suggestion_state_from_proto(request.state),
            request.page_size,
            request.page_token,
        )
        return pb.ListSuggestionsResponse(
            suggestions=[conv.suggestion_to_proto(s) for s in page.items],
            next_page_token=page.next_token,
        )

    @handle_errors
    def DeleteSuggestion(self, request, context):
        self.app.delete_suggestion(
            _require_id(request.experiment_id, "experiment_id"), _require_id(request.id, "id")
        )
        return pb.DeleteSuggestionResponse()

    # -------------------------------------------------------------- observations

    @handle_errors
    def CreateObservation(self, request, context):
        experiment_id = _require_id(request.experiment_id, "experiment_id")
        obs = self.app.create_observation(
            experiment_id, conv.observation_from_proto(request.observation, experiment_id)
        )
        return pb.CreateObservationResponse(observation=conv.observation_to_proto(obs))

    @handle_errors
    def GetObservation(self, request, context):
        obs = self.app.get_observation(
            _require_id(request.experiment_id, "experiment_id"), _require_id(request.id, "id")
        )
        return pb.GetObservationResponse(observation=conv.observation_to_proto(obs))

    @handle_errors
    def ListObservations(self, request, context):
        page = self.app.list_observations(
            _require_id(request.experiment_id, "experiment_id"),
            request.page_size,
            request.page_token,
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
        )
        return pb.UpdateObservationResponse(observation=conv.observation_to_proto(obs))

    @handle_errors
    def DeleteObservation(self, request, context):
        self.app.delete_observation(
            _require_id(request.experiment_id, "experiment_id"), _require_id(request.id, "id")
        )
        return pb.DeleteObservationResponse()

    @handle_errors
    def GetBestAssignments(self, request, context):
        observations, explanation = self.app.best_assignments(
            _require_id(request.experiment_id, "experiment_id")
        )
        return pb.GetBestAssignmentsResponse(
            observations=[conv.observation_to_proto(o) for o in observations],
            explanation=explanation,
        )
