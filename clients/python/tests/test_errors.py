"""ApiError: parsing rich statuses, metadata and deadlines, against an in-process fake."""

from __future__ import annotations

import pickle
import socket
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

import optserve_client
from optserve_client import ApiError, Connection, RetryPolicy
from optserve_client._proto.optserve.v1 import experiment_pb2, service_pb2, service_pb2_grpc


def _bad_request_status() -> status_pb2.Status:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="experiment.parameters[0].bounds", description="min must be < max"
                )
            ]
        )
    )
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message="invalid experiment", details=[detail]
    )


class _FakeCall(grpc.RpcError, grpc.Call):
    """What a failed unary call raises: an RpcError that is also a Call."""

    def __init__(self, status: status_pb2.Status | None, code: grpc.StatusCode, details: str):
        self._code, self._details = code, details
        self._trailing = (
            (("grpc-status-details-bin", status.SerializeToString()),) if status else ()
        )

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing

    def initial_metadata(self):
        return ()

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


def test_api_error_from_rich_status() -> None:
    error = ApiError.from_rpc_error(
        _FakeCall(_bad_request_status(), grpc.StatusCode.INVALID_ARGUMENT, "invalid experiment")
    )
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == "invalid experiment"
    assert [(v.field, v.description) for v in error.field_violations] == [
        ("experiment.parameters[0].bounds", "min must be < max")
    ]
    assert "experiment.parameters[0].bounds" in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert again.code is error.code and again.field_violations == error.field_violations


def test_api_error_without_details() -> None:
    error = ApiError.from_rpc_error(_FakeCall(None, grpc.StatusCode.NOT_FOUND, "no such thing"))
    assert error.code is grpc.StatusCode.NOT_FOUND and error.field_violations == []
    # A rich status disagreeing with the call's code is ignored, not raised.
    error = ApiError.from_rpc_error(
        _FakeCall(_bad_request_status(), grpc.StatusCode.INTERNAL, "something else")
    )
    assert error.code is grpc.StatusCode.INTERNAL and error.field_violations == []


class _FakeService(service_pb2_grpc.OptimizationServiceServicer):
    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def GetExperiment(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        if request.id == "bad":
            context.abort_with_status(rpc_status.to_status(_bad_request_status()))
        if request.id == "slow":
            time.sleep(2)
        if request.id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "experiment missing not found")
        return service_pb2.GetExperimentResponse(
            experiment=experiment_pb2.Experiment(id=request.id, name="fake")
        )


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, _FakeService]]:
    service = _FakeService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service_pb2_grpc.add_OptimizationServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", service
    server.stop(None).wait()


def test_rich_status_over_the_wire(fake) -> None:
    target, _ = fake
    with Connection(target) as conn:
        with pytest.raises(ApiError) as info:
            conn.get_experiment("bad")
        assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.field_violations[0].field.endswith("parameters[0].bounds")
        with pytest.raises(ApiError) as info:
            conn.get_experiment("missing")
        assert info.value.code is grpc.StatusCode.NOT_FOUND


def test_token_and_target_from_arguments_and_environment(fake, monkeypatch) -> None:
    target, service = fake
    monkeypatch.setenv("OPTSERVE_TARGET", target)
    monkeypatch.setenv("OPTSERVE_TOKEN", "env-token")
    with Connection() as conn:
        assert conn.target == target
        assert conn.get_experiment("e1").name == "fake"
    assert service.metadata[-1]["authorization"] == "Bearer env-token"
    with Connection(target, token="arg-token") as conn:
        conn.get_experiment("e1")
    assert service.metadata[-1]["authorization"] == "Bearer arg-token"
    monkeypatch.delenv("OPTSERVE_TOKEN")
    with Connection(target) as conn:
        conn.get_experiment("e1")
    assert "authorization" not in service.metadata[-1]
    # the module-level functions use the environment too
    optserve_client.set_connection(None)
    try:
        experiment = optserve_client.get_experiment("e2")
        assert experiment.id == "e2" and experiment.name == "fake"
        assert optserve_client.get_connection().target == target
    finally:
        optserve_client.get_connection().close()
        optserve_client.set_connection(None)


def test_default_target(monkeypatch) -> None:
    monkeypatch.delenv("OPTSERVE_TARGET", raising=False)
    with Connection() as conn:
        assert conn.target == "localhost:50051"


def test_deadline(fake) -> None:
    target, _ = fake
    with Connection(target, timeout=0.3, retry=RetryPolicy.never()) as conn:
        start = time.monotonic()
        with pytest.raises(ApiError) as info:
            conn.get_experiment("slow")
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert info.value.attempts == 1
        assert time.monotonic() - start < 1.5


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_fails_fast() -> None:
    with Connection(f"127.0.0.1:{_closed_port()}", timeout=2.0) as conn:
        start = time.monotonic()
        with pytest.raises(ApiError) as info:
            conn.get_experiment("e1")
        assert info.value.code in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        assert time.monotonic() - start < 3.0
