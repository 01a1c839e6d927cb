"""Undecodable request bytes: INVALID_ARGUMENT on every method, bounded memory and log.

grpcio leaks about 16-20 KB per request whose deserializer raises
(scripts/grpcio_deserializer_leak.py); 1,000 such requests per method on that path grow the
server by more than 300 MB, far above the bound here.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from optserve.v1 import service_pb2, token_pb2

from ..conftest import RunningServer, start_server
from ..service_tests.helpers import violations

PER_METHOD = 1_000
WARM_UP = 100
# Over all methods; the leaking path adds about 16 KB per request, i.e. > 300 MB here.
MAX_RSS_GROWTH_KB = 32 * 1024
# Log lines while all the requests run: one per 10 s at most, plus slack for unrelated lines.
MAX_LOG_LINES = 20

SERVICES = [
    service_pb2.DESCRIPTOR.services_by_name["OptimizationService"],
    token_pb2.DESCRIPTOR.services_by_name["TokenService"],
]
# (method path, request class, arity) for every method a client can reach.
METHODS = [
    (f"/{s.full_name}/{m.name}", message_factory.GetMessageClass(m.input_type), "unary")
    for s in SERVICES
    for m in s.methods
] + [
    ("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, "unary"),
    ("/grpc.health.v1.Health/Watch", health_pb2.HealthCheckRequest, "server-stream"),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        reflection_pb2.ServerReflectionRequest,
        "bidi",
    ),
]


def undecodable(request_class: type, count: int, rng: random.Random) -> list[bytes]:
    """``count`` distinct byte strings that ``request_class`` refuses to parse."""
    patterns: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(rng.randint(1, 64)),
        lambda: bytes([rng.choice([0x08, 0x10, 0x18])]) + b"\xff" * rng.randint(1, 11),  # varint
        lambda: bytes([0x0A, rng.randint(5, 127)]) + rng.randbytes(rng.randint(0, 4)),  # short
        lambda: bytes([(rng.randint(1, 15) << 3) | rng.choice([3, 4, 6, 7])]),  # bad wire type
        lambda: b"\x0a\x02\xc3\x28",  # field 1 as invalid UTF-8, if it is a string
    ]
    found: set[bytes] = set()
    while len(found) < count:
        data = rng.choice(patterns)()
        try:
            request_class.FromString(data)
        except Exception:
            found.add(data)
    return sorted(found)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Output:
    """Reads the server's output as it comes: a full pipe would block the server."""

    def __init__(self, server: RunningServer) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(server,), daemon=True)
        self._thread.start()

    def _read(self, server: RunningServer) -> None:
        assert server.process.stdout is not None
        for line in server.process.stdout:
            self.lines.append(line)

    def join(self) -> None:
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Output]]:
    server = start_server(tmp_path_factory.mktemp("undecodable") / "optserve.db")
    output = Output(server)
    yield server, output
    server.process.terminate()
    assert server.process.wait(timeout=30) == 0
    output.join()
    assert server.process.stdout is not None
    server.process.stdout.close()


def call(channel: grpc.Channel, path: str, arity: str, data: bytes) -> grpc.RpcError:
    try:
        if arity == "unary":
            channel.unary_unary(path)(data, timeout=10)
        elif arity == "server-stream":
            list(channel.unary_stream(path)(data, timeout=10))
        else:
            list(channel.stream_stream(path)(iter([data]), timeout=10))
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{path} accepted {data!r}")


def test_undecodable_requests_are_invalid_argument_with_bounded_memory_and_log(running):
    server, output = running
    channel = grpc.insecure_channel(server.target)  # no serializers: raw bytes both ways
    rng = random.Random(9)
    payloads = {path: undecodable(cls, WARM_UP + PER_METHOD, rng) for path, cls, _ in METHODS}
    for path, _, arity in METHODS:
        for data in payloads[path][:WARM_UP]:
            call(channel, path, arity, data)
    logged_before = len(output.lines)
    before = rss_kb(server.process.pid)

    codes: dict[str, Counter] = {}
    last: dict[str, grpc.RpcError] = {}
    for path, _, arity in METHODS:
        codes[path] = Counter()
        for data in payloads[path][WARM_UP:]:
            error = call(channel, path, arity, data)
            codes[path][error.code()] += 1
        last[path] = error

    growth = rss_kb(server.process.pid) - before
    logged = output.lines[logged_before:]
    channel.close()
    print(f"RSS +{growth} KB; {len(logged)} log lines:", *logged, sep="\n")
    expected = {path: Counter({grpc.StatusCode.INVALID_ARGUMENT: PER_METHOD}) for path in codes}
    assert codes == expected
    assert growth < MAX_RSS_GROWTH_KB, f"RSS grew by {growth} KB over {len(METHODS)} methods"
    assert len(logged) <= MAX_LOG_LINES, "".join(logged[:40])
    assert any("undecodable request" in line for line in output.lines), "nothing was logged"
    for path, error in last.items():
        assert path in error.details(), error.details()
        assert [field for field, _ in violations(error)] == ["request"], path
