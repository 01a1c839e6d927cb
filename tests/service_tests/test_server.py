"""The server process: durability under kill -9, concurrency, SIGTERM, health, reflection."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from optserve.v1 import service_pb2 as pb
from optserve.v1 import service_pb2_grpc

from ..conftest import start_server
from .helpers import create, double, integer, observe, plain, suggest


def test_acknowledged_writes_survive_kill_9(tmp_path):
    db = tmp_path / "durable.db"
    server = start_server(db)
    stub = server.stub()
    exp = create(stub, parameters=[double("x"), integer("i")], name="durable")
    acknowledged = []
    for k in range(20):
        (s,) = suggest(stub, exp.id)
        acknowledged.append(
            observe(stub, exp.id, suggestionId=s.id, values=[{"name": "value", "value": float(k)}])
        )
    (pending,) = suggest(stub, exp.id)
    server.stop(signal.SIGKILL)

    restarted = start_server(db)
    try:
        stub = restarted.stub()
        again = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment
        assert again.name == "durable" and again.progress.observation_count == 20
        assert again.progress.open_suggestion_count == 1
        stored = stub.ListObservations(
            pb.ListObservationsRequest(experiment_id=exp.id, page_size=100)
        ).observations
        assert list(stored) == acknowledged
        got = stub.GetSuggestion(
            pb.GetSuggestionRequest(experiment_id=exp.id, id=pending.id)
        ).suggestion
        assert got == pending
    finally:
        assert restarted.stop() == 0


def test_concurrent_clients_lose_nothing_and_never_double_close(server):
    stub = server.stub()
    exp = create(stub, parameters=[double("x"), integer("i")], parallelBandwidth=8)
    errors: list[Exception] = []
    closed: list[str] = []
    lock = threading.Lock()
    shared = suggest(stub, exp.id, count=8)  # every thread also races on these

    def worker(n: int) -> None:
        try:
            for k in range(15):
                (s,) = suggest(stub, exp.id)
                observe(
                    stub,
                    exp.id,
                    suggestionId=s.id,
                    values=[{"name": "value", "value": n + k / 100}],
                )
                with lock:
                    closed.append(s.id)
            for s in shared:
                try:
                    observe(
                        stub, exp.id, suggestionId=s.id, values=[{"name": "value", "value": -1.0}]
                    )
                    with lock:
                        closed.append(s.id)
                except grpc.RpcError as e:
                    assert e.code() is grpc.StatusCode.FAILED_PRECONDITION, e
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(closed) == 8 * 15 + 8
    assert max(Counter(closed).values()) == 1, "a suggestion was observed twice"
    stored = stub.ListObservations(
        pb.ListObservationsRequest(experiment_id=exp.id, page_size=1000)
    ).observations
    assert sorted(o.suggestion_id for o in stored) == sorted(closed)
    progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.progress
    assert (progress.observation_count, progress.open_suggestion_count) == (128, 0)
    ids = [
        s.id
        for s in stub.ListSuggestions(
            pb.ListSuggestionsRequest(experiment_id=exp.id, page_size=1000)
        ).suggestions
    ]
    assert len(ids) == len(set(ids)) == 128
    assert all(plain(o.assignments) for o in stored)


def test_sigterm_drains_in_flight_calls_and_exits_cleanly(tmp_path):
    db = tmp_path / "drain.db"
    server = start_server(db)
    stub = server.stub()
    exp = create(
        stub, parameters=[double(f"x{k}") for k in range(20)], type="EXPERIMENT_TYPE_RANDOM"
    )
    request = pb.CreateSuggestionsRequest(experiment_id=exp.id, count=100)
    futures = [stub.CreateSuggestions.future(request) for _ in range(6)]
    futures[0].result()  # at least one call has gone through before the signal
    assert server.stop(signal.SIGTERM) == 0
    answered = 0
    for f in futures:
        if f.exception() is None:
            assert len(f.result().suggestions) == 100
            answered += 1
        else:  # arrived after the drain started: refused as a whole
            assert f.exception().code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    restarted = start_server(db)
    try:
        stored = restarted.stub().GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment
        # every answered call is stored; a refused one is stored whole or not at all
        count = stored.progress.open_suggestion_count
        assert count >= 100 * answered and count % 100 == 0
    finally:
        assert restarted.stop() == 0


def _signal_thread(pid: int, tid: int, sig: int) -> None:
    """Sends ``sig`` to one thread of another process (tgkill)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


def test_sigterm_delivered_to_another_thread_than_the_main_one_still_stops_the_server(tmp_path):
    """The kernel hands a process's signal to any thread that does not block it, often
    one of grpc's; the serving main thread must still notice and drain."""
    server = start_server(tmp_path / "signal.db")
    pid = server.process.pid
    sigterm_bit = 1 << (signal.SIGTERM - 1)
    others = []
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        blocked = int(status.split("SigBlk:")[1].split()[0], 16)
        if tid != pid and not blocked & sigterm_bit:
            others.append(tid)
    assert others, "every other thread blocks SIGTERM"
    _signal_thread(pid, others[0], signal.SIGTERM)
    # signal 0 sends nothing more: stop() only waits (and shows every stack if it hangs)
    assert server.stop(0, timeout=30) == 0


def test_health_and_reflection(server):
    channel = grpc.insecure_channel(server.target)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "optserve.v1.OptimizationService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = {s.name for r in replies for s in r.list_services_response.service}
    assert "optserve.v1.OptimizationService" in services


def test_token_is_required_when_configured(tmp_path):
    server = start_server(tmp_path / "auth.db", env={"OPTSERVE_SERVER_TOKEN": "s3cret"})
    try:
        channel = grpc.insecure_channel(server.target)
        stub = service_pb2_grpc.OptimizationServiceStub(channel)
        request = pb.ListExperimentsRequest()
        for metadata in (None, [("authorization", "Bearer wrong")]):
            try:
                stub.ListExperiments(request, metadata=metadata)
                raise AssertionError("a call without the right token was served")
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        reply = stub.ListExperiments(request, metadata=[("authorization", "Bearer s3cret")])
        assert list(reply.experiments) == []
        health = health_pb2_grpc.HealthStub(channel)  # probes need no token
        assert (
            health.Check(health_pb2.HealthCheckRequest()).status
            == health_pb2.HealthCheckResponse.SERVING
        )
    finally:
        assert server.stop() == 0
