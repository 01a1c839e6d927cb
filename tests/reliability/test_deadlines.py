"""A call that the client gave up on before its commit leaves nothing behind."""

from __future__ import annotations

import random
import time

import grpc
import pytest

from optserve.v1 import observation_pb2
from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import create, double


@pytest.fixture(scope="module")
def slow_experiment(server):
    """An offline experiment whose batch suggestions take a good fraction of a second."""
    stub = server.stub()
    names = [f"x{i}" for i in range(8)]
    exp = create(stub, parameters=[double(n) for n in names], seed=5)
    rng = random.Random(5)
    for _ in range(150):
        point = {n: rng.random() for n in names}
        stub.CreateObservation(
            pb.CreateObservationRequest(
                experiment_id=exp.id,
                observation=observation_pb2.Observation(
                    assignments={n: {"double_value": v} for n, v in point.items()},
                    values=[
                        observation_pb2.MetricValue(
                            name="value", value=-sum((v - 0.3) ** 2 for v in point.values())
                        )
                    ],
                ),
            )
        )
    return stub, exp


def _suggestion_ids(stub, exp_id: str) -> list[str]:
    """Suggestion ids once every earlier call on the experiment has finished: a new
    suggestion waits for the experiment's lock, so it runs after the abandoned call."""
    stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp_id))
    reply = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp_id, page_size=1000))
    return [s.id for s in reply.suggestions]


def test_a_call_past_its_deadline_creates_no_suggestions(slow_experiment):
    stub, exp = slow_experiment
    before = _suggestion_ids(stub, exp.id)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSuggestions(
            pb.CreateSuggestionsRequest(experiment_id=exp.id, count=20), timeout=0.2
        )
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5
    after = _suggestion_ids(stub, exp.id)
    # only the probe suggestion is new: the 20 were rolled back
    assert len(after) == len(before) + 1


def test_a_cancelled_call_creates_no_suggestions(slow_experiment):
    stub, exp = slow_experiment
    before = _suggestion_ids(stub, exp.id)
    future = stub.CreateSuggestions.future(
        pb.CreateSuggestionsRequest(experiment_id=exp.id, count=20)
    )
    time.sleep(0.1)
    assert future.cancel()
    after = _suggestion_ids(stub, exp.id)
    assert len(after) == len(before) + 1
