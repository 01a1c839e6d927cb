"""SIGTERM with a call in flight: it finishes within --grace and its reply reaches the
client, or it leaves nothing behind (its client was told it failed)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import grpc

from optserve.v1 import service_pb2 as pb

from ..conftest import RunningServer, start_server
from ..service_tests.helpers import create, double, observe

DIMENSIONS = 10
OBSERVATIONS = 300
# With this history, a batch of COUNT takes seconds of model fitting before its commit.
COUNT = 100


def cpu_seconds(pid: int) -> float:
    """CPU time of the server and its descendants (its suggestion workers compute)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            parents.setdefault(int(stat[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        todo += parents.get(p, [])
    return total / os.sysconf("SC_CLK_TCK")


def slow_experiment(server: RunningServer) -> str:
    stub = server.stub()
    exp = create(
        stub,
        name="slow",
        parameters=[double(f"x{i}") for i in range(DIMENSIONS)],
        observationBudget=1000,
    )
    rng = random.Random(5)
    for _ in range(OBSERVATIONS):
        observe(
            stub,
            exp.id,
            assignments={f"x{i}": {"doubleValue": rng.random()} for i in range(DIMENSIONS)},
            values=[{"name": "value", "value": rng.random()}],
        )
    return exp.id


def suggestions_stored(db: Path, experiment_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM suggestions WHERE experiment_id = ?", (int(experiment_id),)
        ).fetchone()[0]


def sigterm_during_slow_call(server: RunningServer, experiment_id: str) -> tuple[object, int]:
    """Starts the slow call, sends SIGTERM once the server is busy with it.

    Returns the call's outcome (a response or the RpcError) and the server's exit code.
    """
    outcome: dict[str, object] = {}

    def call() -> None:
        request = pb.CreateSuggestionsRequest(experiment_id=experiment_id, count=COUNT)
        try:
            outcome["reply"] = server.stub().CreateSuggestions(request, timeout=300)
        except grpc.RpcError as error:
            outcome["reply"] = error

    pid = server.process.pid
    idle = cpu_seconds(pid)
    caller = threading.Thread(target=call)
    caller.start()
    # The server computing is the sign that the call is in flight (no hook in the service).
    while cpu_seconds(pid) - idle < 0.3 and caller.is_alive():
        time.sleep(0.05)
    assert "reply" not in outcome, "the call ended before SIGTERM: not slow enough to test"
    code = server.stop(signal.SIGTERM, timeout=300)
    caller.join(timeout=300)
    return outcome["reply"], code


def test_a_call_running_past_the_grace_period_leaves_nothing(tmp_path):
    server = start_server(tmp_path / "drain.db", "--grace", "1")
    experiment_id = slow_experiment(server)
    reply, code = sigterm_during_slow_call(server, experiment_id)
    assert code == 0
    stored = suggestions_stored(server.db, experiment_id)
    if isinstance(reply, grpc.RpcError):
        assert stored == 0, f"{stored} suggestions committed after the client got {reply.code()}"
    else:
        assert stored == len(reply.suggestions) == COUNT


def test_a_call_finishing_within_the_grace_period_is_answered(tmp_path):
    server = start_server(tmp_path / "drain.db", "--grace", "120")
    experiment_id = slow_experiment(server)
    reply, code = sigterm_during_slow_call(server, experiment_id)
    assert code == 0
    assert isinstance(reply, pb.CreateSuggestionsResponse), reply
    assert len(reply.suggestions) == COUNT
    assert suggestions_stored(server.db, experiment_id) == COUNT
