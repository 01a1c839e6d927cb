"""kill -9 under load with retrying clients: every intended write lands exactly once.

Several client threads loop over one experiment (a suggestion, then its
observation), each call retried by the Python client with one request id per
write. Meanwhile the server is killed with SIGKILL five times and restarted on
the same SQLite file and port. Afterwards every intended observation is
present exactly once, for the suggestion its worker was given, and no
suggestion was created twice: a retry of a write the dead server had committed
got the recorded response instead of a second write.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import IO

import pytest

from optserve_client import Connection, RetryPolicy

pytestmark = pytest.mark.timeout(120)

WORKERS = 4
CYCLES = 25  # suggestion + observation per worker
KILLS = 5
LISTENING = re.compile(r"optserve listening on ([\d.]+):(\d+)")

# Outlasts a restart (about a second) many times over; each attempt still has
# its own short deadline.
POLICY = RetryPolicy(max_attempts=200, initial_backoff=0.05, max_backoff=0.5, deadline=60)


class Server:
    """``optserve serve`` on one SQLite file and, after the first start, one port."""

    def __init__(self, db: Path, log: Path) -> None:
        self.db, self.log = db, log
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None

    def start(self) -> None:
        with self.log.open("a") as stderr:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "optserve", "serve", "--host", "127.0.0.1"),
                    *("--port", str(self.port), "--db", str(self.db)),
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        assert process.stdout is not None
        for line in process.stdout:
            if match := LISTENING.search(line):
                self.port = int(match.group(2))
                self.process = process
                # Keep reading, so that the server never blocks on a full pipe.
                self._drain = threading.Thread(target=_read_and_close, args=(process.stdout,))
                self._drain.start()
                return
        process.wait()
        process.stdout.close()
        raise RuntimeError(f"optserve did not start:\n{self.log.read_text()}")

    def stop(self, sig: int) -> int:
        assert self.process is not None and self._drain is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self._drain.join(timeout=30)
        self.process = self._drain = None
        return code

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _read_and_close(stream: IO[str]) -> None:
    with stream:
        stream.read()


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1


def test_kill_9_under_load_with_retrying_clients(tmp_path: Path) -> None:
    server = Server(tmp_path / "optserve.db", tmp_path / "server.log")
    server.start()
    retries = _Retries()
    client_log = logging.getLogger("optserve_client")
    client_log.addHandler(retries)
    client_log.setLevel(logging.INFO)
    try:
        with Connection(server.target, retry=POLICY, timeout=10) as conn:
            eid = conn.create_experiment(
                name="kill -9",
                type="random",
                parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
                metrics=[dict(name="m")],
            ).id

        lock = threading.Condition()
        acknowledged: dict[str, str] = {}  # "worker:cycle" -> suggestion id
        failures: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                with Connection(server.target, retry=POLICY, timeout=10) as conn:
                    for cycle in range(CYCLES):
                        key = f"{worker}:{cycle}"
                        s = conn.create_suggestion(eid, metadata={"key": key})
                        conn.create_observation(
                            eid,
                            suggestion=s.id,
                            values={"m": float(s.assignments["x"])},
                            metadata={"key": key},
                        )
                        with lock:
                            acknowledged[key] = s.id
                            lock.notify_all()
            except BaseException as exc:  # reported by the main thread
                with lock:
                    failures.append(exc)
                    lock.notify_all()

        threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
        for t in threads:
            t.start()
        total = WORKERS * CYCLES
        for kill in range(1, KILLS + 1):
            # Kill at evenly spread points of the run, while every worker is busy.
            with lock:
                reached = lock.wait_for(
                    lambda kill=kill: failures or len(acknowledged) >= kill * total // (KILLS + 1),
                    timeout=60,
                )
            assert reached and not failures, failures
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
            server.start()
        for t in threads:
            t.join(timeout=90)
        assert not any(t.is_alive() for t in threads)
        assert not failures, failures
        assert len(acknowledged) == total

        with Connection(server.target, retry=POLICY) as conn:
            observations = list(conn.iter_observations(eid, page_size=1000))
            suggestions = list(conn.iter_suggestions(eid, page_size=1000))
            progress = conn.get_experiment(eid).progress
    finally:
        client_log.removeHandler(retries)
        if server.process is not None:
            server.stop(signal.SIGTERM)

    keys = Counter((o.metadata or {}).get("key") for o in observations)
    assert keys == Counter(acknowledged.keys()), "every intended observation exactly once"
    assert {(o.metadata or {}).get("key"): o.suggestion_id for o in observations} == acknowledged
    # No suggestion was created twice, and each was closed by its one observation.
    assert len(suggestions) == total
    assert {s.state for s in suggestions} == {"closed"}
    assert progress.observation_count == total and progress.open_suggestion_count == 0
    # The kills did interrupt calls in flight or between them: the clients retried.
    assert retries.count >= KILLS
