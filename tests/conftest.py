"""Shared fixtures: a real optserve server on a loopback port, on a real SQLite file or
on a private PostgreSQL cluster that the tests start (tests/pg.py)."""

# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)

from __future__ import annotations

import os

# One BLAS thread: the suites run servers and numerical code side by side on few cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import collections
import itertools
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import hypothesis
import pytest

from optserve.v1 import service_pb2_grpc

from .pg import PostgresCluster, find_bin_dir

# Property tests draw the same examples on every run, so that CI is repeatable;
# HYPOTHESIS_RANDOM=1 explores new ones (and PROPERTY_EXAMPLES=N draws more).
hypothesis.settings.register_profile("repeatable", derandomize=True)
hypothesis.settings.register_profile("explore", derandomize=False)
hypothesis.settings.load_profile("explore" if os.environ.get("HYPOTHESIS_RANDOM") else "repeatable")

LISTENING = re.compile(r"optserve listening on ([\d.]+):(\d+)")


@dataclass
class RunningServer:
    process: subprocess.Popen
    target: str
    db: Path | str
    credentials: grpc.ChannelCredentials | None = None
    # with drain=True: the server's last output lines, read as they come
    tail: collections.deque[str] | None = None
    _drainer: threading.Thread | None = None

    def channel(self) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(self.target)
        return grpc.secure_channel(self.target, self.credentials)

    def stub(self) -> service_pb2_grpc.OptimizationServiceStub:
        return service_pb2_grpc.OptimizationServiceStub(self.channel())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGABRT makes the server's faulthandler print every thread's stack:
            # the failure then says where it hung, and no process outlives the test.
            self.process.send_signal(signal.SIGABRT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self._drainer is not None:
                self._drainer.join(timeout=10)
            output = "".join(self.tail or ()) if self._drainer else self._rest()
            raise AssertionError(
                f"the server did not exit within {timeout} s of signal {sig}; its output:\n"
                + output[-20000:]
            ) from None
        if self._drainer is not None:
            self._drainer.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    def _rest(self) -> str:
        if self.process.stdout is None:
            return ""
        with self.process.stdout:
            return self.process.stdout.read()


def start_server(
    db: Path | str,
    *extra: str,
    env: dict[str, str] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    drain: bool = False,
) -> RunningServer:
    """Starts ``optserve serve`` on a free loopback port and waits until it listens.

    ``env`` adds to the environment; a server given TLS flags needs the client's
    ``credentials`` (the readiness check and ``stub()`` use them). A server
    that runs for long should be started with ``drain``: its output is then
    read as it comes (kept in ``tail``), so that a full pipe never blocks it.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1", **(env or {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "optserve", "serve", "--port", "0", "--db", str(db), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        match = LISTENING.search(line)
        if match:
            server = RunningServer(process, f"{match.group(1)}:{match.group(2)}", db, credentials)
            try:
                grpc.channel_ready_future(server.channel()).result(timeout=10)
            except BaseException:
                process.kill()
                process.wait()
                raise
            if drain:
                server.tail = collections.deque(lines, maxlen=200)
                server._drainer = threading.Thread(
                    target=server.tail.extend, args=(process.stdout,), daemon=True
                )
                server._drainer.start()
            return server
    raise RuntimeError("server exited before listening:\n" + "".join(lines))


# Modules whose tests run once per backend: ``server`` (and ``stub``) is then a server on
# SQLite, then one on PostgreSQL. The others see the SQLite server only.
BOTH_BACKENDS = frozenset(
    {
        "test_concurrency",
        "test_experiment_validation",
        "test_ids",
        "test_leases",
        "test_observations",
        "test_request_ids",
        "test_runs_and_priors",
        "test_server",
        "test_suggestions",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if "backend" in metafunc.fixturenames and module in BOTH_BACKENDS:
        metafunc.parametrize("backend", ["sqlite", "postgres"], indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """The storage behind ``server``: "sqlite" unless the module runs on both."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("db") / "optserve.db", drain=True)
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="session")
def postgres_server(postgres: PostgresCluster) -> Iterator[RunningServer]:
    running = start_server(new_postgres_database(postgres), drain=True)
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="session")
def server(backend: str, request: pytest.FixtureRequest) -> RunningServer:
    running: RunningServer = request.getfixturevalue(f"{backend}_server")
    return running


@pytest.fixture(scope="session")
def stub(server: RunningServer) -> service_pb2_grpc.OptimizationServiceStub:
    return server.stub()


# ------------------------------------------------------------------ PostgreSQL

TEMPLATE = "optserve_template"
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for the whole run, with a migrated template database."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb);"
            " apt-get install postgresql (.ci/run does)"
        )
    from optserve.storage.postgres import PostgresStorage

    # fsync off: the tests never crash the database server, only optserve's processes
    cluster = PostgresCluster(bin_dir, durable=False).start()
    try:
        PostgresStorage(cluster.create_database(TEMPLATE), migrate=True, pool_size=1).close()
        yield cluster
    finally:
        cluster.stop()


def new_postgres_database(cluster: PostgresCluster) -> str:
    """The URL of a new, migrated, empty database of ``cluster``."""
    return cluster.create_database(f"test_{next(_databases)}", TEMPLATE)


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> str:
    return new_postgres_database(postgres)
