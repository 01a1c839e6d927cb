"""Model-based suggestions computed by worker processes (``--suggest-workers``): the
same answers as in the server's process, a dead worker replaced, a call that ends
leaves nothing written."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc
import pytest

from optserve.v1 import service_pb2 as pb

from ..conftest import RunningServer, start_server
from .helpers import create, double, observe, plain, suggest

SPEC = {"type": "EXPERIMENT_TYPE_OFFLINE", "parameters": [double("x"), double("y")]}
# past the initial design: the model chooses the last steps
STEPS = 14


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    return children


def _workers(server: RunningServer) -> list[int]:
    """The pool's worker processes: the forkserver's children (grandchildren of the server)."""
    children = _children()
    return [w for c in children.get(server.process.pid, []) for w in children.get(c, [])]


def _await_workers(server: RunningServer, count: int) -> None:
    """Waits for the pool, which starts in the background on the first model-based call."""
    deadline = time.monotonic() + 120
    while len(_workers(server)) < count:
        assert time.monotonic() < deadline, "the suggestion workers did not start"
        time.sleep(0.1)


@pytest.fixture
def pair(tmp_path: Path):
    """A server computing in its own threads, and one with one worker process."""
    inline = start_server(tmp_path / "inline.db", "--suggest-workers", "0", drain=True)
    pooled = start_server(tmp_path / "pooled.db", "--suggest-workers", "1", drain=True)
    yield inline, pooled
    for server in (inline, pooled):
        assert server.stop() == 0


def test_workers_answer_as_the_server_does_and_a_dead_worker_is_replaced(pair):
    inline, pooled = pair
    stubs = [inline.stub(), pooled.stub()]
    ids = [create(stub, seed="4242", **SPEC).id for stub in stubs]
    killed = 0
    for step in range(STEPS):
        if step in (STEPS // 2, STEPS - 2):
            # the next call finds its worker dead: it is still answered, the same way
            _await_workers(pooled, 1)
            workers = _workers(pooled)
            assert workers, "no worker process to kill"
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            killed += len(workers)
        made = [suggest(stub, exp, 1)[0] for stub, exp in zip(stubs, ids, strict=True)]
        points = [plain(s.assignments) for s in made]
        assert points[0] == points[1], step
        value = (points[0]["x"] - 0.3) ** 2 - points[0]["y"]
        for stub, exp, s in zip(stubs, ids, made, strict=True):
            observe(stub, exp, suggestionId=s.id, values=[{"name": "value", "value": value}])
    assert killed >= 2
    assert _workers(pooled), "the dead worker was not replaced"


def test_a_call_past_its_deadline_writes_nothing(tmp_path: Path):
    server = start_server(tmp_path / "p.db", "--suggest-workers", "1", drain=True)
    try:
        stub = server.stub()
        exp = create(stub, seed="7", **SPEC).id
        for k in range(12):
            observe(
                stub,
                exp,
                assignments={
                    "x": {"doubleValue": k / 12},
                    "y": {"doubleValue": (k * 7 % 12) / 12},
                },
                values=[{"name": "value", "value": float(k % 5)}],
            )
        # the first model-based call (on another experiment) starts the pool
        suggest(stub, create(stub, seed="8", **SPEC).id, 1)
        _await_workers(server, 1)
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp), timeout=0.001)
        assert raised.value.code() in (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.CANCELLED,
        )
        listed = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp))
        assert list(listed.suggestions) == []
        # and the experiment is not left locked
        assert len(suggest(stub, exp, 1)) == 1
    finally:
        assert server.stop() == 0


def test_an_experiment_waits_for_its_own_worker_only_when_none_is_idle():
    """A worker caches the fits of the experiments it served: moving one to another
    worker replays its chain of fits there, which is worth it only for an idle core."""
    from optserve.suggest_pool import SuggestPool

    pool = SuggestPool(2)  # its processes start on first use, which _pick never makes
    first, second = pool._workers
    assert pool._pick("a") is first  # no worker busy: the first one
    # "a" is being served by the first worker: "b" gets the idle one
    assert pool._pick("b") is second
    # both busy: each experiment queues at the worker holding its fits
    assert pool._pick("b") is second
    assert pool._pick("a") is first
    second.busy = 0
    # "a"'s worker is busy and another is idle: the idle core wins
    assert pool._pick("a") is second
    first.busy = second.busy = 0
    assert pool._pick("a") is second  # its worker is now the second
    pool.close()
