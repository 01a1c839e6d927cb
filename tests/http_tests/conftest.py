"""A real optserve server with its HTTP API on loopback ports, and HTTP helpers."""

from __future__ import annotations

import base64
import collections
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from optserve.v1 import service_pb2_grpc, token_pb2, token_pb2_grpc

GRPC_LISTENING = re.compile(r"optserve listening on ([\d.]+):(\d+)")
HTTP_LISTENING = re.compile(r"optserve http listening on ([\d.]+):(\d+)")
BOOTSTRAP = "bootstrap-secret-for-http-tests-0123456789"


@dataclass
class HttpServer:
    process: subprocess.Popen
    target: str  # gRPC host:port
    url: str  # SIGOPT_API_URL
    db: Path
    # the server's last output lines, read as they come (a full pipe never blocks it)
    tail: collections.deque[str] | None = None
    drainer: threading.Thread | None = None

    def stub(self) -> service_pb2_grpc.OptimizationServiceStub:
        return service_pb2_grpc.OptimizationServiceStub(grpc.insecure_channel(self.target))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        if self.drainer is not None:
            self.drainer.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def start(db: Path, *extra: str, env: dict[str, str] | None = None) -> HttpServer:
    """``optserve serve --port 0 --http-port 0``; waits until both listen."""
    command = [sys.executable, "-m", "optserve", "serve", "--port", "0", "--http-port", "0"]
    process = subprocess.Popen(
        [*command, "--db", str(db), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
    )
    assert process.stdout is not None
    url, lines = None, []
    for line in process.stdout:
        lines.append(line)
        if match := HTTP_LISTENING.search(line):
            url = f"http://{match.group(1)}:{match.group(2)}"
        elif match := GRPC_LISTENING.search(line):
            assert url is not None, "the HTTP API was not announced before gRPC"
            server = HttpServer(process, f"{match.group(1)}:{match.group(2)}", url, db)
            try:
                grpc.channel_ready_future(grpc.insecure_channel(server.target)).result(timeout=10)
            except BaseException:
                process.kill()
                process.wait()
                raise
            server.tail = collections.deque(lines, maxlen=200)
            server.drainer = threading.Thread(
                target=server.tail.extend, args=(process.stdout,), daemon=True
            )
            server.drainer.start()
            return server
    raise RuntimeError("server exited before listening:\n" + "".join(lines))


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    running = start(tmp_path_factory.mktemp("http") / "optserve.db")
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """A server requiring tokens: the bootstrap admin token and stored ones."""
    running = start(
        tmp_path_factory.mktemp("auth") / "optserve.db", env={"OPTSERVE_SERVER_TOKEN": BOOTSTRAP}
    )
    yield running
    assert running.stop() == 0


def create_token(server: HttpServer, role: int, *projects: str) -> str:
    """A stored token's secret, made over gRPC with the bootstrap token."""
    stub = token_pb2_grpc.TokenServiceStub(grpc.insecure_channel(server.target))
    reply = stub.CreateToken(
        token_pb2.CreateTokenRequest(token=token_pb2.Token(role=role, projects=projects)),
        metadata=[("authorization", f"Bearer {BOOTSTRAP}")],
    )
    return reply.secret


class Api:
    """Raw HTTP as SigOpt's client sends it: Basic auth with the token as user name."""

    def __init__(self, url: str, token: str | None = "any-token") -> None:
        self.url = url
        self.session = requests.Session()
        self.headers = {"Content-Type": "application/json"}
        if token is not None:
            basic = base64.b64encode(f"{token}:".encode()).decode()
            self.headers["Authorization"] = f"Basic {basic}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> requests.Response:
        return self.session.request(
            method,
            f"{self.url}/v1/{path}",
            json=body,
            params=params or None,
            headers={**self.headers, **(headers or {})},
            timeout=60,
        )

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.request(method, path, body, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, status: int, method: str, path: str, body: Any = None, **params: Any) -> str:
        """Asserts SigOpt's error shape and status; returns the message."""
        response = self.request(method, path, body, **params)
        assert response.status_code == status, response.text
        doc = response.json()
        assert doc["status"] == status and isinstance(doc["message"], str) and doc["message"]
        return doc["message"]


@pytest.fixture
def api(http_server: HttpServer) -> Api:
    return Api(http_server.url)


def double(name: str, lo: float = 0.0, hi: float = 1.0) -> dict[str, Any]:
    return {"name": name, "type": "double", "bounds": {"min": lo, "max": hi}}


def simple_experiment(**extra: Any) -> dict[str, Any]:
    return {
        "name": "simple",
        "parameters": [double("x"), double("y")],
        "metrics": [{"name": "f", "objective": "maximize"}],
        "observation_budget": 20,
        **extra,
    }
