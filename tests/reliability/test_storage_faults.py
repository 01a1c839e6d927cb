"""Storage the server cannot use: it refuses to start (exit 2, one line naming the path and
the cause) or, once running, reports NOT_SERVING."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..conftest import LISTENING, RunningServer, start_server

EXIT_BAD_SETUP = 2
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def unprivileged() -> list[str]:
    """A command prefix under which file permissions apply, as for a service account.

    Root ignores permission bits; without CAP_DAC_OVERRIDE it obeys its files' modes.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission bits would not apply")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def serve_command(db: Path, *extra: str, prefix: list[str] | None = None) -> list[str]:
    return [
        *(prefix or []),
        sys.executable,
        "-m",
        "optserve",
        "serve",
        "--port",
        "0",
        "--db",
        str(db),
        *extra,
    ]


def refusal(db: Path, *extra: str, prefix: list[str] | None = None) -> str:
    """Runs a server that must refuse to start; returns its one line on stderr."""
    result = subprocess.run(
        serve_command(db, *extra, prefix=prefix),
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert result.returncode == EXIT_BAD_SETUP, (result.returncode, result.stdout, result.stderr)
    assert "listening" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("optserve: ")
    return lines[0]


def starts(db: Path, prefix: list[str] | None = None) -> None:
    """The same command with a usable database does start (a control for the refusals)."""
    process = subprocess.Popen(
        serve_command(db, prefix=prefix),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    output = []
    try:
        for line in process.stdout:
            output.append(line)
            if LISTENING.search(line):
                break
        else:
            raise AssertionError("server did not start:\n" + "".join(output))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        process.stdout.close()


def database(path: Path, rows: int = 2000) -> Path:
    """A WAL-mode SQLite file of about 190 pages."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("CREATE INDEX t_v ON t (v)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i} " * 20,) for i in range(rows)])
    db.execute("COMMIT")
    db.close()
    return path


def overwrite_page(path: Path, page: int) -> None:
    with open(path, "r+b") as file:
        file.seek(4096 * (page - 1))
        file.write(b"\xa5" * 4096)


def test_missing_directory(tmp_path):
    db = tmp_path / "no" / "such" / "dir" / "optserve.db"
    line = refusal(db)
    assert str(db) in line and "does not exist" in line
    assert not (tmp_path / "no").exists()


def test_not_a_database(tmp_path):
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 100)
    line = refusal(db)
    assert str(db) in line and "not an SQLite database" in line
    assert db.read_text().startswith("these are my notes")


def test_directory_given_as_database(tmp_path):
    line = refusal(tmp_path)
    assert str(tmp_path) in line and "not a regular file" in line


@pytest.mark.parametrize("page", [2, 50], ids=["quick_check-rows", "malformed"])
def test_corrupted_database(tmp_path, page):
    db = database(tmp_path / "corrupt.db")
    starts(db)  # intact, it starts
    overwrite_page(db, page)
    line = refusal(db)
    assert str(db) in line and "corrupted" in line


def test_read_only_file(tmp_path):
    prefix = unprivileged()
    db = database(tmp_path / "ro.db")
    starts(db, prefix)
    db.chmod(0o444)
    line = refusal(db, prefix=prefix)
    assert str(db) in line and "read-only" in line


@pytest.mark.parametrize("exists", [True, False], ids=["existing-db", "new-db"])
def test_read_only_directory(tmp_path, exists):
    prefix = unprivileged()
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "optserve.db"
    if exists:
        database(db)
        starts(db, prefix)
        for wal in directory.glob("optserve.db-*"):
            wal.unlink()
    directory.chmod(0o555)
    try:
        line = refusal(db, prefix=prefix)
    finally:
        directory.chmod(0o755)
    assert str(db) in line and "read-only" in line


def test_second_server_on_the_same_file_is_refused(tmp_path):
    db = tmp_path / "shared.db"
    first = start_server(db)
    try:
        line = refusal(db)
        assert str(db) in line and "in use by another optserve server" in line
        health = health_pb2_grpc.HealthStub(first.channel())
        assert health.Check(health_pb2.HealthCheckRequest()).status == SERVING
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    # The kernel dropped the lock with the process: a restart needs no clean-up.
    second = start_server(db)
    assert second.stop() == 0


def test_an_empty_file_is_a_new_database(tmp_path):
    db = tmp_path / "empty.db"
    db.touch()
    starts(db)
    assert db.read_bytes().startswith(b"SQLite format 3\x00")


def launch(db: Path, *extra: str, prefix: list[str] | None = None) -> RunningServer:
    """Like ``start_server``, under a command prefix."""
    process = subprocess.Popen(
        serve_command(db, *extra, prefix=prefix),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        match = LISTENING.search(line)
        if match:
            return RunningServer(process, f"{match.group(1)}:{match.group(2)}", db)
    raise AssertionError("server did not start:\n" + "".join(output))


def watch_until(health: health_pb2_grpc.HealthStub, wanted: int) -> None:
    """Follows the overall health until it reports ``wanted``."""
    for reply in health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=120):
        if reply.status == wanted:
            return
    raise AssertionError("the health stream ended")


def stop_and_read(server: RunningServer) -> str:
    """SIGTERM; the server's whole output (the pipe holds it: the server logs little)."""
    assert server.process.stdout is not None
    server.process.send_signal(signal.SIGTERM)
    output = server.process.stdout.read()
    assert server.process.wait(timeout=60) == 0
    server.process.stdout.close()
    return output


def test_health_follows_the_database_file_while_running(tmp_path):
    db = tmp_path / "live.db"
    server = start_server(db, "--storage-check-interval", "0.2")
    try:
        channel = server.channel()
        health = health_pb2_grpc.HealthStub(channel)
        watch_until(health, SERVING)
        moved = db.with_name("moved-away.db")
        db.rename(moved)  # the server would keep writing to a file nobody finds at restart
        watch_until(health, NOT_SERVING)
        service = health_pb2.HealthCheckRequest(service="optserve.v1.OptimizationService")
        assert health.Check(service).status == NOT_SERVING
        moved.rename(db)
        watch_until(health, SERVING)
        channel.close()
    finally:
        output = stop_and_read(server)
    # one line per change, not one per probe
    assert output.count("storage failed") == 1, output
    assert f"database {db}: removed while the server runs" in output
    assert output.count("storage usable again") == 1, output


def test_health_turns_not_serving_when_the_file_becomes_read_only(tmp_path):
    db = tmp_path / "live.db"
    server = launch(db, "--storage-check-interval", "0.2", prefix=unprivileged())
    try:
        channel = server.channel()
        health = health_pb2_grpc.HealthStub(channel)
        watch_until(health, SERVING)
        db.chmod(0o444)
        watch_until(health, NOT_SERVING)
        channel.close()
    finally:
        db.chmod(0o644)
        output = stop_and_read(server)
    assert f"database {db}: no longer writable" in output
