"""A real optserve server on a loopback port, shared by the tests of a session."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import optserve_client
from optserve_client import Connection

READY = re.compile(r"optserve listening on (\S+):(\d+)")


def _server_command() -> list[str]:
    if importlib.util.find_spec("optserve") is not None:
        return [sys.executable, "-m", "optserve"]
    script = Path(sys.executable).with_name("optserve")
    if script.exists():
        return [str(script)]
    pytest.fail("the optserve server is not installed in this environment (pip install -e .)")


class Server:
    def __init__(self, tmp: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.stderr_path = tmp / "server.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [
                *_server_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--db",
                str(tmp / "optserve.db"),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=None if env is None else {**os.environ, **env},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        self.target = self._wait_ready(timeout=60)

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self, timeout: float) -> str:
        try:
            while (line := self._lines.get(timeout=timeout)) is not None:
                if match := READY.search(line):
                    return f"{match.group(1)}:{match.group(2)}"
        except queue.Empty:
            pass
        self.process.kill()
        self.process.wait()
        self._stderr.close()
        pytest.fail(f"optserve did not start:\n{self.stderr_path.read_text()}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            self._drainer.join(timeout=5)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self._stderr.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The running server; it must exit 0 on SIGTERM at the end of the session."""
    srv = Server(tmp_path_factory.mktemp("optserve"))
    yield srv
    code = srv.stop()
    assert code == 0, f"optserve exited {code}:\n{srv.stderr_path.read_text()}"


@pytest.fixture
def conn(server: Server) -> Iterator[Connection]:
    """A Connection to the server, also the default of the module-level functions."""
    connection = Connection(server.target, timeout=60)
    optserve_client.set_connection(connection)
    yield connection
    optserve_client.set_connection(None)
    connection.close()


@dataclass(frozen=True)
class Certificates:
    """PEM files of a throw-away CA, a server certificate for ``localhost`` (no
    IP address: connecting to 127.0.0.1 needs ``tls_server_name="localhost"``),
    a client certificate, and a second CA that signed neither."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _self_signed(name: str, cn: str, cwd: Path) -> None:
    _openssl(
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2"),
        *("-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        cwd=cwd,
    )


def _signed(name: str, cn: str, extensions: str, cwd: Path) -> None:
    _openssl(
        *("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}"),
        cwd=cwd,
    )
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext"),
        cwd=cwd,
    )


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Certificates made for this session with the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests make their certificates with openssl, which is not installed")
    d = tmp_path_factory.mktemp("ca")
    _self_signed("ca", "optserve test CA", d)
    _self_signed("other", "another CA", d)
    _signed(
        "server",
        "localhost",
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        d,
    )
    _signed("client", "optserve test client", "extendedKeyUsage=clientAuth\n", d)
    return Certificates(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        other_ca=d / "other.pem",
    )


SERVER_TOKEN = "tls-test-token"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates):
    """The real server over mutual TLS (``--tls-cert``, ``--tls-key``, ``--tls-client-ca``)
    with the bootstrap token SERVER_TOKEN."""
    help_text = subprocess.run(
        [*_server_command(), "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    if "--tls-cert" not in help_text:
        pytest.skip("this server has no --tls-cert")
    srv = Server(
        tmp_path_factory.mktemp("optserve-tls"),
        *("--tls-cert", str(certificates.server_cert), "--tls-key", str(certificates.server_key)),
        *("--tls-client-ca", str(certificates.ca)),
        env={"OPTSERVE_SERVER_TOKEN": SERVER_TOKEN},
    )
    yield srv
    code = srv.stop()
    assert code == 0, f"optserve exited {code}:\n{srv.stderr_path.read_text()}"
