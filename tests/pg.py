"""A private PostgreSQL cluster for tests and benchmarks: Debian's initdb and pg_ctl on a
temporary directory and a free loopback port, stopped and removed at the end.

initdb refuses to run as root, so as root the cluster runs as ``nobody`` (through
``setpriv``) in a directory it owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"
UNPRIVILEGED = ("nobody", "nogroup")


def find_bin_dir() -> Path | None:
    """The newest installed server's bin directory (None when PostgreSQL is absent)."""
    found = sorted(
        (Path(d) for d in glob.glob(BIN_GLOB) if (Path(d) / "initdb").exists()),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """One running ``postgres`` on 127.0.0.1, trust authentication, user ``postgres``."""

    def __init__(self, bin_dir: Path, *, durable: bool = True, max_connections: int = 400):
        self.bin_dir = bin_dir
        self.durable = durable
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix="optserve-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0
        self._options: list[str] = []
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            import grp
            import pwd

            user, group = UNPRIVILEGED
            os.chown(self.root, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)
            self._as_user = ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups"]

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self._as_user, *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C"},
            timeout=120,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{log[-3000:]}"
            )

    def start(self) -> PostgresCluster:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = [
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            f"-c max_connections={self.max_connections}",
            # a cluster of a test run does not outlive it: no need to survive power loss
            *([] if self.durable else ["-c fsync=off", "-c full_page_writes=off"]),
        ]
        self._options = options
        for _ in range(5):
            self.port = _free_port()
            try:
                self._start_server()
                return self
            except RuntimeError as error:
                if "could not bind" not in str(error) and "in use" not in str(error):
                    raise
        raise RuntimeError("no free port for PostgreSQL")

    def _start_server(self) -> None:
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            " ".join([*self._options, f"-p {self.port}"]),
        )

    def _stop_server(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "stop", "-w", "-D", str(self.data), "-m", "fast")

    def pause(self) -> None:
        """Stops the server (its sessions end at once), keeping the data: an outage."""
        self._stop_server()

    def resume(self) -> None:
        """Starts the server again on the same port and data, after ``pause``."""
        self._start_server()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if (self.data / "postmaster.pid").exists():
                self._stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str, template: str = "template1") -> str:
        """Creates a database (a copy of ``template``); returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
