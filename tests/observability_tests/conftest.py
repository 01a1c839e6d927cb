"""A real server started with --metrics-port 0 and its output in a file (so that its log
lines can be read back while it runs), and a scraper of its /metrics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from optserve.v1 import service_pb2_grpc

LISTENING = re.compile(r"optserve listening on ([\d.]+):(\d+)")
METRICS = re.compile(r"optserve metrics on (http://\S+/metrics)")
STARTUP_SECONDS = 60


@dataclass
class Server:
    process: subprocess.Popen
    target: str
    metrics_url: str
    log: Path

    def stub(self) -> service_pb2_grpc.OptimizationServiceStub:
        return service_pb2_grpc.OptimizationServiceStub(grpc.insecure_channel(self.target))

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample: (name, sorted labels) -> value."""
        with urllib.request.urlopen(self.metrics_url, timeout=30) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("text/plain")
            text = reply.read().decode()
        return samples(text)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def start(directory: Path, *extra: str) -> Server:
    log = directory / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optserve",
                "serve",
                "--port",
                "0",
                "--metrics-port",
                "0",
                "--db",
                str(directory / "optserve.db"),
                *extra,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text()
        listening, metrics = LISTENING.search(text), METRICS.search(text)
        if listening and metrics:
            target = f"{listening.group(1)}:{listening.group(2)}"
            grpc.channel_ready_future(grpc.insecure_channel(target)).result(timeout=10)
            return Server(process, target, metrics.group(1), log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("server did not start:\n" + log.read_text())


@pytest.fixture
def metrics_server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server per test, so that counts start from zero."""
    server = start(tmp_path, "--log-format", "json", "--access-log")
    yield server
    assert server.stop() == 0
