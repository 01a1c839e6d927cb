"""The bootstrap token comes from a file or the environment, is never empty, and never
sits on the command line."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from optserve.v1 import service_pb2 as pb

from ..conftest import start_server
from .test_storage_faults import refusal

ENV = "OPTSERVE_SERVER_TOKEN"


@pytest.fixture(autouse=True)
def no_token_in_env(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


def test_token_on_the_command_line_is_refused(tmp_path):
    for flags in (("--token", "s3cret"), ("--token",), ("--token", "")):
        line = refusal(tmp_path / "optserve.db", *flags)
        assert "process list" in line and "--token-file" in line and ENV in line


@pytest.mark.parametrize("value", ["", "  \n"], ids=["empty", "blank"])
def test_empty_token_is_refused(tmp_path, monkeypatch, value):
    token_file = tmp_path / "token"
    token_file.write_text(value)
    line = refusal(tmp_path / "optserve.db", "--token-file", str(token_file))
    assert f"token file {token_file} is empty" in line
    monkeypatch.setenv(ENV, value)
    line = refusal(tmp_path / "optserve.db")
    assert f"env {ENV} is empty" in line


def test_unusable_token_sources_are_refused(tmp_path, monkeypatch):
    db = tmp_path / "optserve.db"
    missing = tmp_path / "missing"
    assert f"cannot read token file {missing}" in refusal(db, "--token-file", str(missing))
    spaced = tmp_path / "spaced"
    spaced.write_text("two words\n")
    assert "printable ASCII without spaces" in refusal(db, "--token-file", str(spaced))
    good = tmp_path / "good"
    good.write_text("s3cret\n")
    monkeypatch.setenv(ENV, "other")
    assert "not both" in refusal(db, "--token-file", str(good))
    assert not db.exists()


def test_token_from_a_file_is_required(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("  s3cret-from-file\n")  # surrounding whitespace is not the token
    server = start_server(tmp_path / "optserve.db", "--token-file", str(token_file))
    try:
        stub = server.stub()
        with pytest.raises(grpc.RpcError) as error:
            stub.ListExperiments(pb.ListExperimentsRequest())
        assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
        metadata = [("authorization", "Bearer s3cret-from-file")]
        reply = stub.ListExperiments(pb.ListExperimentsRequest(), metadata=metadata)
        assert list(reply.experiments) == []
    finally:
        assert server.stop() == 0


def list_services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=20
    )
    return {s.name for r in replies for s in r.list_services_response.service}


@pytest.mark.parametrize("open_reflection", [False, True], ids=["default", "open"])
def test_reflection_needs_the_token_unless_opened(tmp_path, open_reflection):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    flags = ["--token-file", str(token_file)] + (["--open-reflection"] if open_reflection else [])
    server = start_server(tmp_path / "optserve.db", *flags)
    try:
        channel = server.channel()
        if open_reflection:
            assert "optserve.v1.OptimizationService" in list_services(channel)
        else:
            with pytest.raises(grpc.RpcError) as error:
                list_services(channel)
            assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel)  # health never needs the token
        assert health.Check(health_pb2.HealthCheckRequest()).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
        channel.close()
    finally:
        assert server.stop() == 0
