"""Model-based suggestions computed in worker processes, so that both cores work.

A model fit holds the GIL for most of its time: in the server's threads, 8 experiments
computing at once take turns on one core. ``SuggestPool`` runs ``optimizers.suggest``
in worker processes instead (``forkserver``: the workers do not inherit the server's
threads, gRPC or database connections; they import the optimizers once). The answer
depends only on the request (seed, history, pending points), so it is the same as in
the server's own process. The caller keeps the experiment's lock while a worker
computes, and stops waiting (nothing written) when its call ends.

Each worker is a one-process executor: an experiment goes back to the worker that
served it last when that one is free (its cache of fitted hyperparameters is warm),
else to the least busy one. A worker that dies is replaced, and the call it was
serving is computed in the server's process.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from .domain.errors import Cancelled
from .domain.model import Assignments, ExperimentType
from .optimizers import SuggestRequest, suggest

log = logging.getLogger(__name__)

# How often a waiting call checks that it is still wanted.
POLL_SECONDS = 0.05
# Experiments whose last worker is remembered.
MAX_AFFINITY = 4096
# Imported by the forkserver once: every worker starts with them loaded.
PRELOAD = ["optserve.optimizers.bayesian", "optserve.optimizers.initial_design"]


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


def _ready() -> bool:
    return True


class _Worker:
    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self._context = context
        self.executor = self._new()
        self.busy = 0

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=self._context)

    def replace(self, broken: ProcessPoolExecutor) -> None:
        """A new process, unless another call replaced the broken one already."""
        if self.executor is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self.executor = self._new()


class SuggestPool:
    """``workers`` processes computing model-based suggestions (see the module doc)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self._lock = threading.Lock()
        self._workers = [_Worker(context) for _ in range(workers)]
        self._last: OrderedDict[str, int] = OrderedDict()
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._workers)

    def start(self) -> None:
        """Starts the workers in the background (importing the optimizers takes
        seconds), so that neither the server's start nor its first calls wait."""

        def spawn() -> None:
            for worker in self._workers:
                with contextlib.suppress(BrokenProcessPool, RuntimeError):  # closed meanwhile
                    worker.executor.submit(_ready)

        threading.Thread(target=spawn, name="optserve-suggest-pool", daemon=True).start()

    def _pick(self, experiment_id: str) -> _Worker:
        with self._lock:
            last = self._last.get(experiment_id)
            if last is not None and self._workers[last].busy == 0:
                index = last
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
        self, request: SuggestRequest, alive: Callable[[], bool] = _ready
    ) -> list[Assignments]:
        """``optimizers.suggest(request)``, computed by a worker.

        Raises:
            Cancelled: the call ended (``alive()`` false) before the answer came.
            what ``optimizers.suggest`` raises.
        """
        worker = self._pick(request.experiment.id)
        try:
            executor = worker.executor
            try:
                future = executor.submit(suggest, request)
                return self._wait(future, alive)
            except BrokenProcessPool:
                with self._lock:
                    worker.replace(executor)
                if self._closed:
                    raise
                log.error(
                    "a suggestion worker died; replaced it, and computing the suggestions"
                    " of experiment %s in the server's process",
                    request.experiment.id,
                )
                return suggest(request)
        finally:
            with self._lock:
                worker.busy -= 1

    @staticmethod
    def _wait(future: Future, alive: Callable[[], bool]) -> list[Assignments]:
        while True:
            try:
                result: list[Assignments] = future.result(timeout=POLL_SECONDS)
                return result
            except FutureTimeout:
                if not alive():
                    future.cancel()  # the worker finishes what it started; no one reads it
                    raise Cancelled(
                        "the call ended before its suggestions were made; nothing was written"
                    ) from None

    def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.executor.shutdown(wait=False, cancel_futures=True)
