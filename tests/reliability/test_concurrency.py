"""Many clients on one experiment: nothing lost, nothing served or closed twice."""

from __future__ import annotations

import threading
from collections import Counter

import grpc

from optserve.v1 import observation_pb2
from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import create, double, plain

CLIENTS = 32
CYCLES = 25


def test_32_clients_25_cycles_on_one_experiment(server):
    stub = server.stub()
    exp = create(
        stub,
        type="EXPERIMENT_TYPE_RANDOM",
        parameters=[double("a"), double("b")],
        linearConstraints=[
            {
                "type": "LINEAR_CONSTRAINT_TYPE_LESS_THAN",
                "threshold": 1.0,
                "terms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
            }
        ],
        parallelBandwidth=CLIENTS,
    )
    served: list[str] = []
    acknowledged: list[observation_pb2.Observation] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        # each client its own channel, as separate worker processes would have
        own = server.stub()
        start.wait()
        try:
            for k in range(CYCLES):
                (s,) = own.CreateSuggestions(
                    pb.CreateSuggestionsRequest(experiment_id=exp.id)
                ).suggestions
                a = plain(s.assignments)
                assert a["a"] + a["b"] <= 1.0
                obs = own.CreateObservation(
                    pb.CreateObservationRequest(
                        experiment_id=exp.id,
                        observation=observation_pb2.Observation(
                            suggestion_id=s.id,
                            values=[observation_pb2.MetricValue(name="value", value=n * 100 + k)],
                        ),
                    )
                ).observation
                with lock:
                    served.append(s.id)
                    acknowledged.append(obs)
        except BaseException as error:  # reported below, with the others
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(served) == CLIENTS * CYCLES
    assert max(Counter(served).values()) == 1, "a suggestion was served twice"
    stored = []
    token = ""
    while True:
        page = stub.ListObservations(
            pb.ListObservationsRequest(experiment_id=exp.id, page_size=1000, page_token=token)
        )
        stored += page.observations
        token = page.next_page_token
        if not token:
            break
    assert sorted(o.id for o in stored) == sorted(o.id for o in acknowledged)
    by_id = {o.id: o for o in stored}
    assert all(by_id[o.id] == o for o in acknowledged)
    progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.progress
    assert progress.observation_count == CLIENTS * CYCLES
    assert progress.open_suggestion_count == 0


def _race_observations(stub, exp_id: str, suggestion_id: str, racers: int) -> Counter:
    codes: list[grpc.StatusCode] = []
    lock = threading.Lock()
    start = threading.Barrier(racers)

    def observe(value: float) -> None:
        start.wait()
        try:
            stub.CreateObservation(
                pb.CreateObservationRequest(
                    experiment_id=exp_id,
                    observation=observation_pb2.Observation(
                        suggestion_id=suggestion_id,
                        values=[observation_pb2.MetricValue(name="value", value=value)],
                    ),
                )
            )
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=observe, args=(float(i),)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(codes)


def test_racing_observations_of_one_suggestion_close_it_once(server):
    stub = server.stub()
    exp = create(stub, type="EXPERIMENT_TYPE_RANDOM", parameters=[double("x")])
    for _ in range(5):
        (s,) = stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id)).suggestions
        codes = _race_observations(stub, exp.id, s.id, 8)
        assert codes == {grpc.StatusCode.OK: 1, grpc.StatusCode.FAILED_PRECONDITION: 7}
    progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.progress
    assert progress.observation_count == 5
