"""Safe retries: a request_id makes every mutating call idempotent."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.protobuf import field_mask_pb2

from optserve.v1 import observation_pb2
from optserve.v1 import service_pb2 as pb

from .helpers import create, double, experiment, violations


def _values(v: float) -> list[observation_pb2.MetricValue]:
    return [observation_pb2.MetricValue(name="value", value=v)]


def test_retried_create_suggestions_returns_the_same_suggestions(stub):
    exp = create(stub, parameters=[double("x")])
    req = pb.CreateSuggestionsRequest(experiment_id=exp.id, count=3, request_id="sugg-1")
    first = stub.CreateSuggestions(req).suggestions
    again = stub.CreateSuggestions(req).suggestions
    assert list(again) == list(first)
    listed = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp.id)).suggestions
    assert len(listed) == 3


def test_retried_create_experiment_creates_one(stub):
    req = pb.CreateExperimentRequest(
        experiment=experiment(name="once", project="idem"), request_id="exp-1"
    )
    first = stub.CreateExperiment(req).experiment
    again = stub.CreateExperiment(req).experiment
    assert again.id == first.id and again.seed == first.seed
    listed = stub.ListExperiments(pb.ListExperimentsRequest(project="idem")).experiments
    assert [e.id for e in listed] == [first.id]


def test_retried_observation_is_stored_once_even_after_its_suggestion_closed(stub):
    exp = create(stub, parameters=[double("x")])
    (s,) = stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id)).suggestions
    req = pb.CreateObservationRequest(
        experiment_id=exp.id,
        observation=observation_pb2.Observation(suggestion_id=s.id, values=_values(1.5)),
        request_id="obs-1",
    )
    first = stub.CreateObservation(req).observation
    # without the id, the retry would be refused: the suggestion is closed
    again = stub.CreateObservation(req).observation
    assert again == first
    stored = stub.ListObservations(pb.ListObservationsRequest(experiment_id=exp.id))
    assert len(stored.observations) == 1


def test_retried_updates_and_deletes_succeed_once(stub):
    exp = create(stub, parameters=[double("x")])
    obs = stub.CreateObservation(
        pb.CreateObservationRequest(
            experiment_id=exp.id,
            observation=observation_pb2.Observation(
                assignments={"x": {"double_value": 0.5}}, values=_values(1.0)
            ),
        )
    ).observation
    update = pb.UpdateObservationRequest(
        experiment_id=exp.id,
        observation=observation_pb2.Observation(id=obs.id, values=_values(2.0)),
        update_mask=field_mask_pb2.FieldMask(paths=["values"]),
        request_id="upd-1",
    )
    assert stub.UpdateObservation(update).observation.values[0].value == 2.0
    assert stub.UpdateObservation(update).observation.values[0].value == 2.0
    delete = pb.DeleteObservationRequest(experiment_id=exp.id, id=obs.id, request_id="del-1")
    stub.DeleteObservation(delete)
    stub.DeleteObservation(delete)  # the retry of a delete that happened is not NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.DeleteObservation(pb.DeleteObservationRequest(experiment_id=exp.id, id=obs.id))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    delete = pb.DeleteExperimentRequest(id=exp.id, request_id="del-exp-1")
    stub.DeleteExperiment(delete)
    stub.DeleteExperiment(delete)


def test_a_reused_id_with_another_request_is_refused(stub):
    exp = create(stub, parameters=[double("x")])
    stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id, request_id="r-2"))
    for other in (
        pb.CreateSuggestionsRequest(experiment_id=exp.id, count=2, request_id="r-2"),
        pb.CreateSuggestionsRequest(experiment_id=exp.id, lease_seconds=5, request_id="r-2"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateSuggestions(other)
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "r-2" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        stub.DeleteExperiment(pb.DeleteExperimentRequest(id=exp.id, request_id="r-2"))
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("bad", ["x" * 65, "has space", "ünï", "a/b"])
def test_request_ids_are_checked(stub, bad):
    exp = create(stub, parameters=[double("x")])
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id, request_id=bad))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value)[0][0] == "request_id"


def test_concurrent_retries_of_one_request_create_it_once(stub):
    exp = create(stub, parameters=[double("x")], type="EXPERIMENT_TYPE_RANDOM")
    req = pb.CreateSuggestionsRequest(experiment_id=exp.id, count=2, request_id="race-1")
    replies: list = []
    lock = threading.Lock()

    def call() -> None:
        got = list(stub.CreateSuggestions(req).suggestions)
        with lock:
            replies.append(got)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 8 and all(r == replies[0] for r in replies)
    listed = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp.id)).suggestions
    assert sorted(s.id for s in listed) == sorted(s.id for s in replies[0])
