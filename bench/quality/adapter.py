"""optserve adapter for the optimization-quality harness (../shared/bench/quality/).

Drives a real optserve server through the Python client SDK, as a user would:
one OFFLINE experiment per run (the problem's experiment dict with the run's
budget as observation budget and the harness seed as the experiment seed), one
suggestion at a time (several open at once in bench/quality/parallel; there
``suggest_batch`` asks for several in one call), each answered by one
observation (a failed observation when the harness refused the suggestion as
infeasible), and the experiment deleted at the end.

One server per Python process, started lazily on a loopback port with a
temporary SQLite file and stopped with SIGTERM at exit (and, on Linux, also
when the process that started it dies, so pool workers killed by the harness
do not leave servers behind).

Environment:
    OPTSERVE_BIN           server executable (default: /work/main/.venv/bin/optserve,
                           i.e. <repo>/.venv/bin/optserve)
    OPTSERVE_SERVICE_PATH  a directory prepended to the server's PYTHONPATH, holding
                           an ``optserve`` package to serve instead of the installed
                           one (run.sh points it at a snapshot of a commit, so that
                           edits to the working tree during a long run do not mix
                           optimizer versions)
    OPTSERVE_TARGET_EXT    host:port of an already running server (no server started)
"""

from __future__ import annotations

import atexit
import copy
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optserve_client import Connection

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".venv" / "bin" / "optserve"
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 300.0

_server: _Server | None = None


class _Server:
    """An ``optserve serve`` child process on 127.0.0.1, port picked by the server."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="optserve-quality-")
        tmp = Path(self.tmp.name)
        self.log_path = tmp / "server.log"
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.setdefault(var, "1")
        env["PYTHONUNBUFFERED"] = "1"
        service_path = os.environ.get("OPTSERVE_SERVICE_PATH")
        if service_path:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (service_path, env.get("PYTHONPATH")) if p
            )
        cmd = [
            os.environ.get("OPTSERVE_BIN", str(DEFAULT_BIN)),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(tmp / "optserve.db"),
            "--log-level",
            "WARNING",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (lives as long as the server)
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
        )
        self.target = self._wait_listening()
        self.conn = Connection(self.target, timeout=CALL_TIMEOUT_S)

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("optserve listening on "):
                    return line.split()[-1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        log = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"optserve server did not start (exit {self.proc.returncode}):\n{log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.tmp.cleanup()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies (Linux prctl)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_server() -> None:
    global _server
    if _server is not None:
        if hasattr(_server, "conn"):
            _server.conn.close()
        _server.stop()
        _server = None


def connection() -> Connection:
    """The Connection of this process's server, started on first use."""
    global _server
    external = os.environ.get("OPTSERVE_TARGET_EXT")
    if external:
        return Connection(external, timeout=CALL_TIMEOUT_S)
    if _server is None or _server.proc.poll() is not None:
        if _server is not None:  # it died: start a new one
            _stop_server()
        _server = _Server()
        atexit.register(_stop_server)
    return _server.conn


class OptserveAdapter:
    """The harness's ask/tell interface over optserve's client SDK."""

    name = "optserve"
    budget_aware = True

    def __init__(self, experiment: dict, seed: int, budget: int):
        self.conn = connection()
        spec = copy.deepcopy(experiment)
        spec["name"] = f"quality {experiment['name']} seed {seed} budget {budget}"
        spec["type"] = "offline"
        spec["observation_budget"] = int(budget)
        spec.pop("budget", None)
        spec["seed"] = int(seed)
        self.metric_names = [m["name"] for m in experiment["metrics"]]
        self.experiment = self.conn.create_experiment(spec)
        self.pending: list[tuple[str, dict]] = []

    def suggest(self) -> dict:
        suggestion = self.conn.create_suggestion(self.experiment.id)
        assignments = dict(suggestion.assignments)
        self.pending.append((suggestion.id, assignments))
        return dict(assignments)

    def suggest_batch(self, count: int) -> list[dict]:
        """``count`` suggestions from one CreateSuggestions call (chosen jointly)."""
        out = []
        for suggestion in self.conn.create_suggestions(self.experiment.id, count=count):
            assignments = dict(suggestion.assignments)
            self.pending.append((suggestion.id, assignments))
            out.append(dict(assignments))
        return out

    def observe(self, assignments: dict, value, failed: bool = False) -> None:
        i = next(i for i, (_, a) in enumerate(self.pending) if a == assignments)
        suggestion_id, _ = self.pending.pop(i)
        if failed:
            self.conn.create_observation(self.experiment.id, suggestion=suggestion_id, failed=True)
            return
        values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if len(values) != len(self.metric_names):
            raise ValueError(f"{len(values)} values for metrics {self.metric_names}")
        self.conn.create_observation(
            self.experiment.id,
            suggestion=suggestion_id,
            values=[
                dict(name=n, value=float(v)) for n, v in zip(self.metric_names, values, strict=True)
            ],
        )

    def close(self) -> None:
        self.conn.delete_experiment(self.experiment.id)
