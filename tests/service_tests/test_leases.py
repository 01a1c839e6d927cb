"""Suggestion leases over gRPC: expiry, renewal, observations after expiry."""

from __future__ import annotations

import time

import grpc
import pytest

from optserve.v1 import service_pb2 as pb
from optserve.v1 import suggestion_pb2 as su_pb

from .helpers import create, double, observe, violations


def _suggest(stub, exp_id: str, count: int = 1, **lease) -> list:
    req = pb.CreateSuggestionsRequest(experiment_id=exp_id, count=count, **lease)
    return list(stub.CreateSuggestions(req).suggestions)


def _open_count(stub, exp_id: str) -> int:
    exp = stub.GetExperiment(pb.GetExperimentRequest(id=exp_id)).experiment
    return exp.progress.open_suggestion_count


def test_default_lease_is_a_day_and_the_experiment_can_change_it(stub):
    exp = create(stub, parameters=[double("x")], type="EXPERIMENT_TYPE_RANDOM")
    (s,) = _suggest(stub, exp.id)
    assert s.lease_seconds == 86400
    assert s.expire_time.seconds - s.create_time.seconds in (86399, 86400, 86401)
    short = create(stub, parameters=[double("x")], suggestionLeaseSeconds=120)
    assert short.suggestion_lease_seconds == 120
    (s,) = _suggest(stub, short.id)
    assert s.lease_seconds == 120
    (s,) = _suggest(stub, short.id, lease_seconds=30)
    assert s.lease_seconds == 30


def test_an_expired_suggestion_stops_being_pending_but_takes_its_observation(stub):
    exp = create(stub, parameters=[double("x")], type="EXPERIMENT_TYPE_RANDOM")
    (gone,) = _suggest(stub, exp.id, lease_seconds=1)
    (kept,) = _suggest(stub, exp.id)
    assert _open_count(stub, exp.id) == 2
    time.sleep(1.1)
    assert _open_count(stub, exp.id) == 1
    got = stub.GetSuggestion(pb.GetSuggestionRequest(experiment_id=exp.id, id=gone.id))
    assert got.suggestion.state == su_pb.SUGGESTION_STATE_EXPIRED
    listed = stub.ListSuggestions(
        pb.ListSuggestionsRequest(experiment_id=exp.id, state=su_pb.SUGGESTION_STATE_EXPIRED)
    ).suggestions
    assert [s.id for s in listed] == [gone.id]
    listed = stub.ListSuggestions(
        pb.ListSuggestionsRequest(experiment_id=exp.id, state=su_pb.SUGGESTION_STATE_OPEN)
    ).suggestions
    assert [s.id for s in listed] == [kept.id]
    # late results are data too: stored, and the suggestion closes
    obs = observe(stub, exp.id, suggestionId=gone.id, values=[{"name": "value", "value": 1.0}])
    assert obs.suggestion_id == gone.id
    got = stub.GetSuggestion(pb.GetSuggestionRequest(experiment_id=exp.id, id=gone.id))
    assert got.suggestion.state == su_pb.SUGGESTION_STATE_CLOSED
    exp_now = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment
    assert exp_now.progress.observation_count == 1


def test_renewing_extends_the_lease(stub):
    exp = create(stub, parameters=[double("x")], type="EXPERIMENT_TYPE_RANDOM")
    (s,) = _suggest(stub, exp.id, lease_seconds=2)
    time.sleep(1.0)
    renewed = stub.RenewSuggestionLease(
        pb.RenewSuggestionLeaseRequest(experiment_id=exp.id, id=s.id)
    ).suggestion
    assert renewed.expire_time.ToNanoseconds() > s.expire_time.ToNanoseconds()
    time.sleep(1.3)  # past the first expiry, within the renewed one
    got = stub.GetSuggestion(pb.GetSuggestionRequest(experiment_id=exp.id, id=s.id))
    assert got.suggestion.state == su_pb.SUGGESTION_STATE_OPEN
    longer = stub.RenewSuggestionLease(
        pb.RenewSuggestionLeaseRequest(experiment_id=exp.id, id=s.id, lease_seconds=3600)
    ).suggestion
    assert longer.lease_seconds == 3600


def test_expired_or_closed_suggestions_cannot_be_renewed(stub):
    exp = create(stub, parameters=[double("x")], type="EXPERIMENT_TYPE_RANDOM")
    (gone,) = _suggest(stub, exp.id, lease_seconds=1)
    (done,) = _suggest(stub, exp.id)
    observe(stub, exp.id, suggestionId=done.id, values=[{"name": "value", "value": 1.0}])
    time.sleep(1.1)
    for s, word in ((gone, "expired"), (done, "closed")):
        with pytest.raises(grpc.RpcError) as caught:
            stub.RenewSuggestionLease(pb.RenewSuggestionLeaseRequest(experiment_id=exp.id, id=s.id))
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert word in caught.value.details()


@pytest.mark.parametrize("lease", [0, -1, 2_592_001])
def test_lease_lengths_are_bounded(stub, lease):
    exp = create(stub, parameters=[double("x")], type="EXPERIMENT_TYPE_RANDOM")
    with pytest.raises(grpc.RpcError) as caught:
        _suggest(stub, exp.id, lease_seconds=lease)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value)[0][0] == "lease_seconds"
    with pytest.raises(grpc.RpcError) as caught:
        create(stub, parameters=[double("x")], suggestionLeaseSeconds=lease)
    assert violations(caught.value)[0][0] == "experiment.suggestion_lease_seconds"
