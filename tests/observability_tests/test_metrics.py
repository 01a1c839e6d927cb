"""/metrics of a real server after known traffic: every count equals the calls made."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading

import grpc
import pytest

from optserve import observability
from optserve.server import create_server
from optserve.storage import SqliteStorage
from optserve.v1 import service_pb2 as pb
from optserve.v1 import service_pb2_grpc

from ..service_tests.helpers import create, double, observe, suggest
from .conftest import samples, start

SERVICE = "optserve.v1.OptimizationService"
Labels = tuple[tuple[str, str], ...]


def rpc(method: str, code: str, service: str = SERVICE) -> Labels:
    return (("code", code), ("method", method), ("service", service))


def by_rpc(scraped: dict, name: str) -> dict[Labels, float]:
    return {labels: value for (n, labels), value in scraped.items() if n == name}


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def test_counts_equal_the_calls_made(metrics_server):
    stub = metrics_server.stub()
    exp = create(stub, type="EXPERIMENT_TYPE_RANDOM", parameters=[double("x")])
    first = suggest(stub, exp.id)[0]
    batch = suggest(stub, exp.id, count=3)
    value = [{"name": "value", "value": 1.0}]
    # the same request id twice: answered twice, stored once
    for _ in range(2):
        stub.CreateObservation(
            pb.CreateObservationRequest(
                experiment_id=exp.id,
                observation={"suggestion_id": first.id, "values": value},
                request_id="observe-first",
            )
        )
    observe(stub, exp.id, suggestionId=batch[0].id, values=value)
    # a batch of two past evaluations: two observations stored by one call
    stub.BatchCreateObservations(
        pb.BatchCreateObservationsRequest(
            experiment_id=exp.id,
            observations=[
                {"assignments": {"x": {"double_value": x}}, "values": value} for x in (0.25, 0.75)
            ],
        )
    )
    closed = lambda: observe(stub, exp.id, suggestionId=first.id, values=value)  # noqa: E731
    assert code_of(closed) == grpc.StatusCode.FAILED_PRECONDITION
    for _ in range(2):
        missing = lambda: stub.GetExperiment(pb.GetExperimentRequest(id="999"))  # noqa: E731
        assert code_of(missing) == grpc.StatusCode.NOT_FOUND
    malformed = lambda: stub.GetExperiment(pb.GetExperimentRequest(id="abc"))  # noqa: E731
    assert code_of(malformed) == grpc.StatusCode.INVALID_ARGUMENT
    stub.ListExperiments(pb.ListExperimentsRequest())
    channel = grpc.insecure_channel(metrics_server.target)
    for path in (f"/{SERVICE}/NoSuchMethod", "/no.such.Service/Call"):
        unknown = channel.unary_unary(path)
        assert code_of(lambda u=unknown: u(b"")) == grpc.StatusCode.UNIMPLEMENTED

    scraped = metrics_server.scrape()
    expected = {
        rpc("CreateExperiment", "OK"): 1,
        rpc("CreateSuggestions", "OK"): 2,
        rpc("CreateObservation", "OK"): 3,
        rpc("CreateObservation", "FAILED_PRECONDITION"): 1,
        rpc("BatchCreateObservations", "OK"): 1,
        rpc("GetExperiment", "NOT_FOUND"): 2,
        rpc("GetExperiment", "INVALID_ARGUMENT"): 1,
        rpc("ListExperiments", "OK"): 1,
        rpc("unknown", "UNIMPLEMENTED", "unknown"): 2,
    }
    assert by_rpc(scraped, "optserve_grpc_requests_total") == expected
    # one latency observation per call, in the same label sets (unknown methods have none)
    del expected[rpc("unknown", "UNIMPLEMENTED", "unknown")]
    assert by_rpc(scraped, "optserve_grpc_request_duration_seconds_count") == expected
    for labels in expected:
        key = ("optserve_grpc_request_duration_seconds_bucket", (*labels, ("le", "+Inf")))
        key = (key[0], tuple(sorted(key[1])))
        assert scraped[key] == expected[labels]
    assert scraped[("optserve_grpc_requests_in_flight", ())] == 0
    random = (("experiment_type", "random"),)
    assert scraped[("optserve_suggestion_duration_seconds_count", random)] == 2
    assert scraped[("optserve_suggestions_created_total", random)] == 4
    assert scraped[("optserve_observations_written_total", ())] == 4
    assert scraped[("optserve_open_suggestions", random)] == 2
    op = lambda name: (("operation", name),)  # noqa: E731
    assert (
        scraped[("optserve_storage_operation_duration_seconds_count", op("create_observation"))]
        == 2
    )
    assert (
        scraped[("optserve_storage_operation_duration_seconds_count", op("create_observations"))]
        == 1
    )
    assert (
        scraped[("optserve_storage_operation_duration_seconds_count", op("create_suggestions"))]
        == 2
    )
    assert (
        scraped[("optserve_storage_operation_duration_seconds_sum", op("create_suggestions"))] > 0
    )
    not_found = (("error", "NotFound"), ("operation", "get_experiment"))
    assert scraped[("optserve_storage_operation_errors_total", not_found)] == 2


def test_open_suggestions_follow_the_experiments(metrics_server):
    stub = metrics_server.stub()
    grid = create(
        stub,
        type="EXPERIMENT_TYPE_GRID",
        parameters=[{"name": "n", "type": "PARAMETER_TYPE_INT", "grid": [1, 2, 3]}],
    )
    key = ("optserve_open_suggestions", (("experiment_type", "grid"),))
    assert metrics_server.scrape()[key] == 0
    opened = suggest(stub, grid.id, count=3)
    assert metrics_server.scrape()[key] == 3
    stub.DeleteSuggestion(pb.DeleteSuggestionRequest(experiment_id=grid.id, id=opened[0].id))
    observe(stub, grid.id, suggestionId=opened[1].id, values=[{"name": "value", "value": 2.0}])
    assert metrics_server.scrape()[key] == 1


def test_refused_calls_are_counted(tmp_path):
    token = tmp_path / "token"
    token.write_text("metrics-test-token")
    server = start(tmp_path, "--token-file", str(token))
    try:
        stub = server.stub()
        refused = lambda: stub.ListExperiments(pb.ListExperimentsRequest())  # noqa: E731
        assert code_of(refused) == grpc.StatusCode.UNAUTHENTICATED
        stub.ListExperiments(
            pb.ListExperimentsRequest(),
            metadata=[("authorization", "Bearer metrics-test-token")],
        )
        assert by_rpc(server.scrape(), "optserve_grpc_requests_total") == {
            rpc("ListExperiments", "UNAUTHENTICATED"): 1,
            rpc("ListExperiments", "OK"): 1,
        }
    finally:
        assert server.stop() == 0


def test_the_asgi_app_serves_the_same_metrics(tmp_path):
    """The app an HTTP server mounts at /metrics, against an in-process server."""
    storage = SqliteStorage(tmp_path / "optserve.db")
    server, port, _ = create_server(storage)
    server.start()
    try:
        app = observability.metrics_asgi_app()
        key = ("optserve_grpc_requests_total", rpc("GetExperiment", "NOT_FOUND"))
        before = _asgi_scrape(app).get(key, 0)
        stub = service_pb2_grpc.OptimizationServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        missing = lambda: stub.GetExperiment(pb.GetExperimentRequest(id="12345"))  # noqa: E731
        assert code_of(missing) == grpc.StatusCode.NOT_FOUND
        assert _asgi_scrape(app)[key] == before + 1
    finally:
        server.stop(None).wait()
        storage.close()


def _asgi_scrape(app) -> dict:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/metrics",
        "query_string": b"",
        "headers": [],
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert dict(start["headers"])[b"Content-Type"].startswith(b"text/plain")
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return samples(body.decode())


def test_a_taken_metrics_port_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "optserve",
                "serve",
                "--port",
                "0",
                "--db",
                str(tmp_path / "optserve.db"),
                "--metrics-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"optserve: cannot serve metrics on 127.0.0.1:{port}: ")


def test_the_metrics_server_answers_while_calls_run(metrics_server):
    """Scrapes go on during traffic; the interceptor's gauge returns to 0 after it."""
    stub = metrics_server.stub()
    exp = create(stub, type="EXPERIMENT_TYPE_RANDOM", parameters=[double("x")])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                suggest(stub, exp.id, count=5)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        metrics_server.scrape()
    for t in threads:
        t.join()
    assert not errors
    scraped = metrics_server.scrape()
    assert scraped[("optserve_grpc_requests_in_flight", ())] == 0
    assert by_rpc(scraped, "optserve_grpc_requests_total")[rpc("CreateSuggestions", "OK")] == 60
    random = (("experiment_type", "random"),)
    assert scraped[("optserve_suggestions_created_total", random)] == 300
    assert scraped[("optserve_open_suggestions", random)] == 300
