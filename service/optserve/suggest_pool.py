"""Model-based suggestions computed in worker processes, so that both cores work.

A model fit holds the GIL for most of its time: in the server's threads, 8 experiments
computing at once take turns on one core. ``SuggestPool`` runs ``optimizers.suggest``
in worker processes instead (``forkserver``: the workers do not inherit the server's
threads, gRPC or database connections; they import the optimizers once). The answer
depends only on the request (seed, history, pending points), so it is the same as in
the server's own process. The caller keeps the experiment's lock while a worker
computes, and stops waiting (nothing written) when its call ends.

Each worker is one process serving one request at a time over a pipe (no executor
threads in between: every hand-off between threads costs a wake-up on busy cores).
An experiment goes back to the worker that served it last (its cache of fitted
hyperparameters is warm) when that one is free or when no worker is: moving it
replays its chain of fits on the other worker (with 8 experiments on 2 workers,
a third of the calls moved, and the workers' CPU per OFFLINE loop was 70 % more
than with one experiment). Only an idle worker takes an experiment from a busy one. A
worker that dies is replaced, and the call it was serving is computed in the
server's process; a worker whose call ended early is replaced too (its answer is
not wanted).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

from .domain.errors import Cancelled
from .domain.model import Assignments, ExperimentType
from .optimizers import SuggestRequest, compiled_maximizer, suggest

log = logging.getLogger(__name__)

# How often a waiting call checks that it is still wanted.
POLL_SECONDS = 0.05
# Experiments whose last worker is remembered.
MAX_AFFINITY = 4096
# Imported by the forkserver once: every worker starts with them loaded.
PRELOAD = ["optserve.optimizers"]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_pool(request: SuggestRequest) -> bool:
    """Whether a worker should compute it: model-based ones; random and grid
    points cost less than sending the request to another process."""
    return request.experiment.type is ExperimentType.OFFLINE


def _serve(requests: Connection, threads: int) -> None:
    """A worker's loop: a request in, ``(True, points)`` or ``(False, error)`` out.
    ``threads``: the worker's share of the cores for the compiled maximizer."""
    compiled_maximizer.set_threads(threads)
    while True:
        try:
            request = requests.recv()
        except EOFError:  # the server closed its end
            return
        try:
            reply: tuple[bool, object] = (True, suggest(request))
        except Exception as error:
            reply = (False, error)
        requests.send(reply)


class _Worker:
    """One process and its pipe, started when first needed; one call at a time."""

    def __init__(self, context: BaseContext, threads: int) -> None:
        self._context = context
        self._threads = threads
        self.lock = threading.Lock()  # held by the call using the worker
        self.busy = 0  # calls using or waiting for it (guarded by the pool's lock)
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None

    def ensure(self) -> Connection:
        if self.conn is None or self.process is None or not self.process.is_alive():
            self.stop()
            conn, child = self._context.Pipe()
            process = self._context.Process(  # type: ignore[attr-defined]
                target=_serve, args=(child, self._threads), name="optserve-suggest", daemon=True
            )
            process.start()
            child.close()
            self.process, self.conn = process, conn
        return self.conn

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.process is not None:
            self.process.kill()
            self.process.join(5)
        self.process = self.conn = None


class SuggestPool:
    """``workers`` processes computing model-based suggestions (see the module doc)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self._lock = threading.Lock()
        # Workers share the cores: with every worker busy, more threads than cores
        # would only take turns (one per worker when there are as many as cores).
        threads = max(1, default_workers() // workers)
        self._workers = [_Worker(context, threads) for _ in range(workers)]
        self._last: OrderedDict[str, int] = OrderedDict()
        self._started = False
        self._ready = threading.Event()

    @property
    def size(self) -> int:
        return len(self._workers)

    def start(self) -> None:
        """Starts the workers in the background (importing the optimizers takes
        seconds): calls made meanwhile are computed in the server's process, so
        none waits. A server that never makes a model-based suggestion starts none."""
        with self._lock:
            if self._started:
                return
            self._started = True

        def spawn() -> None:
            for worker in self._workers:
                with worker.lock:
                    worker.ensure()
            self._ready.set()

        threading.Thread(target=spawn, name="optserve-suggest-pool", daemon=True).start()

    def _pick(self, experiment_id: str) -> _Worker:
        with self._lock:
            last = self._last.get(experiment_id)
            idle = [i for i, w in enumerate(self._workers) if w.busy == 0]
            if last is not None and (last in idle or not idle):
                # its worker's fits are cached: with no worker idle, waiting for it
                # costs less than replaying the chain of fits on another one
                index = last
            elif idle:
                index = idle[0]
            else:
                index = min(range(len(self._workers)), key=lambda i: self._workers[i].busy)
            self._last[experiment_id] = index
            self._last.move_to_end(experiment_id)
            if len(self._last) > MAX_AFFINITY:
                self._last.popitem(last=False)
            worker = self._workers[index]
            worker.busy += 1
            return worker

    def suggest(
        self, request: SuggestRequest, alive: Callable[[], bool] = lambda: True
    ) -> list[Assignments]:
        """``optimizers.suggest(request)``, computed by a worker.

        Raises:
            Cancelled: the call ended (``alive()`` false) before the answer came.
            what ``optimizers.suggest`` raises.
        """
        if not self._ready.is_set():
            self.start()
            return suggest(request)
        worker = self._pick(request.experiment.id)
        try:
            with worker.lock:
                try:
                    conn = worker.ensure()
                    conn.send(request)
                    while not conn.poll(POLL_SECONDS):
                        if not alive():
                            worker.stop()  # it computes what no one will read
                            raise Cancelled(
                                "the call ended before its suggestions were made;"
                                " nothing was written"
                            )
                    ok, value = conn.recv()
                except (EOFError, OSError):
                    worker.stop()
                    log.error(
                        "a suggestion worker died; computing the suggestions of experiment"
                        " %s in the server's process (the next call starts a new worker)",
                        request.experiment.id,
                    )
                    return suggest(request)
        finally:
            with self._lock:
                worker.busy -= 1
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        points: list[Assignments] = value
        return points

    def close(self) -> None:
        for worker in self._workers:
            with worker.lock:
                worker.stop()
