"""A PostgreSQL that stops under a running server: every call answers UNAVAILABLE (gRPC)
or 503 (HTTP), which clients may retry, never INTERNAL; once the database is back the
same server serves again, without a restart, and nothing acknowledged before is lost."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc

from optserve.v1 import observation_pb2, service_pb2_grpc, suggestion_pb2, token_pb2
from optserve.v1 import service_pb2 as pb

from ..http_tests.conftest import BOOTSTRAP, Api, HttpServer, create_token, simple_experiment
from ..http_tests.conftest import start as start_with_http
from ..pg import PostgresCluster, find_bin_dir
from .test_storage_faults import NOT_SERVING, SERVING, watch_until

# Generous bounds on calls and waits, never asserted: the machine may be slow.
DEADLINE = 60


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own: stopping the suite's shared one would fail others."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with PostgresCluster(bin_dir, durable=False) as running:
        yield running


@pytest.fixture
def server(cluster: PostgresCluster) -> Iterator[HttpServer]:
    url = cluster.create_database("outage")
    running = start_with_http(
        url,  # type: ignore[arg-type]
        "--migrate",
        "--storage-check-interval",
        "0.2",
        env={"OPTSERVE_SERVER_TOKEN": BOOTSTRAP},
    )
    yield running
    assert running.stop() == 0, "".join(running.tail or ())


def observe(stub, experiment_id: str, auth, value: float) -> observation_pb2.Observation:
    (suggestion,) = stub.CreateSuggestions(
        pb.CreateSuggestionsRequest(experiment_id=experiment_id), metadata=auth, timeout=DEADLINE
    ).suggestions
    observation = observation_pb2.Observation(
        suggestion_id=suggestion.id,
        values=[observation_pb2.MetricValue(name="f", value=value)],
    )
    return stub.CreateObservation(
        pb.CreateObservationRequest(experiment_id=experiment_id, observation=observation),
        metadata=auth,
        timeout=DEADLINE,
    ).observation


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def test_calls_are_unavailable_while_the_database_is_down_then_served_again(cluster, server):
    channel = grpc.insecure_channel(server.target)
    stub = service_pb2_grpc.OptimizationServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    # a stored token: resolving it reads the database (the bootstrap token does not)
    secret = create_token(server, token_pb2.TOKEN_ROLE_WRITE, "*")
    auth = [("authorization", f"Bearer {secret}")]
    api = Api(server.url, secret)
    exp_id = api.ok("POST", "experiments", simple_experiment(type="random"))["id"]
    first = observe(stub, exp_id, auth, 1.0)
    watch_until(health, SERVING)

    cluster.pause()
    get = pb.GetExperimentRequest(id=exp_id)
    # the first call finds the pooled connections broken, the next ones no connection
    for _ in range(2):
        assert code_of(lambda: stub.GetExperiment(get, metadata=auth, timeout=DEADLINE)) == (
            grpc.StatusCode.UNAVAILABLE
        )
    assert code_of(lambda: observe(stub, exp_id, auth, 2.0)) == grpc.StatusCode.UNAVAILABLE
    written = observation_pb2.Observation(
        assignments={name: suggestion_pb2.AssignmentValue(double_value=0.5) for name in ("x", "y")},
        values=[observation_pb2.MetricValue(name="f", value=3.0)],
    )
    assert (
        code_of(
            lambda: stub.CreateObservation(
                pb.CreateObservationRequest(experiment_id=exp_id, observation=written),
                metadata=auth,
                timeout=DEADLINE,
            )
        )
        == grpc.StatusCode.UNAVAILABLE
    )
    # the bootstrap token needs no database, the call does
    admin = [("authorization", f"Bearer {BOOTSTRAP}")]
    assert code_of(lambda: stub.GetExperiment(get, metadata=admin, timeout=DEADLINE)) == (
        grpc.StatusCode.UNAVAILABLE
    )
    api.error(503, "GET", f"experiments/{exp_id}")
    api.error(503, "POST", f"experiments/{exp_id}/suggestions", {})
    watch_until(health, NOT_SERVING)

    cluster.resume()
    watch_until(health, SERVING)
    # the pool reconnects on its own, with back-off: the same server serves again
    # (a failing call waits about a second for a connection: the loop paces itself)
    for _ in range(DEADLINE * 10):
        try:
            stub.GetExperiment(get, metadata=auth, timeout=DEADLINE)
            break
        except grpc.RpcError as error:
            assert error.code() is grpc.StatusCode.UNAVAILABLE, error
    second = observe(stub, exp_id, auth, 2.0)
    listed = stub.ListObservations(
        pb.ListObservationsRequest(experiment_id=exp_id), metadata=auth, timeout=DEADLINE
    ).observations
    assert [o.id for o in listed] == [first.id, second.id]
    assert api.ok("GET", f"experiments/{exp_id}")["progress"]["observation_count"] == 2
    channel.close()
    output = "".join(server.tail or ())
    assert "Traceback" not in output and "unexpected error" not in output, output
    assert output.count("unreachable") == 1, output
    assert "reachable again" in output, output
