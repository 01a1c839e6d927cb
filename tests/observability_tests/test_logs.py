"""`serve --log-format json --access-log`: one JSON object per line, each call's lines
carrying its request id and RPC; the id is the client's x-request-id when it sends one."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import grpc
import pytest

from optserve.observability import request_id_of
from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import experiment
from .conftest import start

SERVICE = "optserve.v1.OptimizationService"


def entries(server) -> list[dict]:
    """Every log line as JSON; the two lines the server prints for people are skipped."""
    out = []
    for line in server.lines():
        if line.startswith(("optserve listening on ", "optserve metrics on ")):
            continue
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry), entry
        datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
        out.append(entry)
    return out


def access(server) -> list[dict]:
    return [e for e in entries(server) if e["logger"] == "optserve.access"]


def test_each_call_has_one_access_line_with_its_request_id(metrics_server):
    stub = metrics_server.stub()
    created, call = stub.CreateExperiment.with_call(
        pb.CreateExperimentRequest(experiment=experiment()),
        metadata=[("x-request-id", "trace-create-1")],
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "trace-create-1"
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetExperiment(pb.GetExperimentRequest(id="424242"))
    # an error's reply carries it beside the error's details
    trailing = dict(caught.value.trailing_metadata())
    generated = trailing["x-request-id"]
    assert "grpc-status-details-bin" in trailing
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # an id a client should not choose (spaces, too long) is replaced by a generated one
    _, call = stub.GetExperiment.with_call(
        pb.GetExperimentRequest(id=created.experiment.id), metadata=[("x-request-id", "a b")]
    )
    replaced = dict(call.trailing_metadata())["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)

    lines = access(metrics_server)
    assert [(e["rpc"], e["code"], e["request_id"]) for e in lines] == [
        (f"{SERVICE}/CreateExperiment", "OK", "trace-create-1"),
        (f"{SERVICE}/GetExperiment", "NOT_FOUND", generated),
        (f"{SERVICE}/GetExperiment", "OK", replaced),
    ]
    for e in lines:
        assert e["level"] == "INFO"
        assert e["duration_ms"] >= 0
        assert e["message"].startswith(e["rpc"].split("/")[1] + " " + e["code"] + " ")


def test_lines_logged_during_a_call_carry_its_request_id(metrics_server):
    channel = grpc.insecure_channel(metrics_server.target)
    garbage = channel.unary_unary(f"/{SERVICE}/GetExperiment")
    with pytest.raises(grpc.RpcError) as caught:
        garbage(b"\xff\xff\xff", metadata=[("x-request-id", "undecodable-1")])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    warnings = [e for e in entries(metrics_server) if e["level"] == "WARNING"]
    undecodable = [e for e in warnings if e["message"].startswith("undecodable request")]
    assert len(undecodable) == 1
    assert undecodable[0]["request_id"] == "undecodable-1"
    assert undecodable[0]["rpc"] == f"{SERVICE}/GetExperiment"
    assert undecodable[0]["logger"] == "optserve.api.decoding"
    # lines outside calls have no request id
    startup = [e for e in warnings if e["message"].startswith("authentication is off")]
    assert len(startup) == 1 and "request_id" not in startup[0]


def test_text_logs_without_access_lines_by_default(tmp_path):
    server = start(tmp_path)
    try:
        stub = server.stub()
        stub.ListExperiments(pb.ListExperimentsRequest())
        stub.ListExperiments(pb.ListExperimentsRequest())
    finally:
        assert server.stop() == 0
    lines = server.lines()
    assert not any(line.startswith("{") for line in lines)
    assert not any("optserve.access" in line for line in lines)
    assert any(" WARNING optserve.server: authentication is off" in line for line in lines)


def test_generated_request_ids_are_unique_across_threads():
    def batch(_: int) -> list[str]:
        return [request_id_of([("x-request-id", "not allowed: spaces")]) for _ in range(2500)]

    with ThreadPoolExecutor(4) as pool:
        ids = [i for got in pool.map(batch, range(4)) for i in got]
    assert len(set(ids)) == len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert request_id_of([("x-request-id", "mine-1")]) == "mine-1"
