"""The GP's hyperparameters as a function of the history alone: a chain of
warm-started fits at fixed checkpoints, cached by the process.

Fitting hyperparameters from scratch (several starts) costs seconds at a few
hundred points; starting from the previous fit costs a fraction of that. A
warm start from whatever the process happened to fit last, though, makes a
suggestion depend on the process's past: after a restart the first fit is
cold and may land in another optimum. Here the previous fit is defined by the
data:

- the first fit, on the shortest prefix of the history that leaves the
  initial design, is cold (several starts);
- checkpoints are history sizes: every size up to ``DENSE``, then ``STEPS``
  evenly spaced ones in every doubling from there (..., 63, 64, 67, ...,
  124, 128, 134, ...: 2.5 % to 5 % apart). The fit at a checkpoint starts
  from the fit at the checkpoint before, except at the start of a doubling
  (an epoch: 64, 128, 256, ...), whose fit starts from the previous epoch's:
  a chain is at most ``DENSE + STEPS + log2(n / DENSE)`` fits long;
- a history between checkpoints is modelled with the last checkpoint's
  hyperparameters (5 % fewer observations at most), conditioned on all of it:
  a Cholesky factorization rather than a fit per suggestion;
- fits are cached under a digest of the prefix they depend on; a miss (a new
  process, an edited or deleted observation) replays the chain's missing
  links.

The cache only saves work: the same experiment, seed and history give the same
hyperparameters in any process, with a cold or a warm cache.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

from .gp import GaussianProcess, Hyperparameters
from .training import History

__all__ = ["DENSE", "Chain", "checkpoints", "clear_cache", "decision"]

# every history size up to this one is a checkpoint; beyond, STEPS per doubling
DENSE = 32
STEPS = 20
_CACHE_SIZE = 8192

_MISSING = object()
_CACHE: OrderedDict[tuple[int, bytes], Hyperparameters | None] = OrderedDict()
_DECISIONS: OrderedDict[bytes, bool] = OrderedDict()
_LOCK = threading.Lock()
_GRID: list[int] = [*range(1, DENSE), *range(DENSE, 2 * DENSE, max(1, DENSE // STEPS))]


def checkpoints(upto: int) -> list[int]:
    """The checkpoints ``<= upto``, ascending."""
    with _LOCK:
        while _GRID[-1] < upto:
            epoch = _epoch(_GRID[-1]) * 2
            _GRID.extend(range(epoch, 2 * epoch, max(1, epoch // STEPS)))
        return _GRID[: bisect.bisect_right(_GRID, upto)]


def _epoch(size: int) -> int:
    """The start of the doubling ``size`` lies in (``DENSE`` for smaller sizes)."""
    epoch = DENSE
    while epoch * 2 <= size:
        epoch *= 2
    return epoch


def clear_cache() -> None:
    """Forgets every cached fit and decision (as a new process would)."""
    with _LOCK:
        _CACHE.clear()
        _DECISIONS.clear()


def decision(key: bytes, decide: Callable[[], bool]) -> bool:
    """``decide()``, remembered by ``key`` (a chain node's ``digest``): a choice
    made on the fits at one node, kept with the fits."""
    with _LOCK:
        known = _DECISIONS.get(key)
    if known is not None:
        return known
    made = decide()
    with _LOCK:
        _DECISIONS[key] = made
        while len(_DECISIONS) > _CACHE_SIZE:
            _DECISIONS.popitem(last=False)
    return made


def _get(key: tuple[int, bytes]) -> object:
    with _LOCK:
        value = _CACHE.get(key, _MISSING)
        if value is not _MISSING:
            _CACHE.move_to_end(key)
        return value


def _put(key: tuple[int, bytes], value: Hyperparameters | None) -> None:
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


Fit = Callable[[int, Hyperparameters | None], GaussianProcess]


class Chain:
    """The chain of fits over one history.

    Args:
        key: identifies everything besides the history that a fit depends on
            (search space, metrics, seed, settings).
        history: the observations.
        first: the shortest prefix that is modelled (None: none is).
        fit: ``fit(size, start)`` fits the first ``size`` observations from
            ``start`` (cold when None) and returns the GP.
    """

    def __init__(self, key: bytes, history: History, first: int | None, fit: Fit) -> None:
        self._fit = fit
        self.size = len(history)
        self.first = first
        self.grid = checkpoints(self.size)
        nodes = sorted({*self.grid, self.size, *([] if first is None else [first])})
        records = history.records()
        digest = hashlib.blake2b(key, digest_size=16)
        self._digests: dict[int, bytes] = {}
        done = 0
        for c in nodes:
            digest.update(records[done:c].tobytes())
            done = c
            self._digests[c] = digest.copy().digest()
        # GPs fitted by this chain, by prefix size (their posteriors are reusable)
        self.fitted: dict[int, GaussianProcess] = {}

    def last_checkpoint(self, size: int) -> int:
        """The largest checkpoint ``<= size``."""
        return self.grid[bisect.bisect_right(self.grid, size) - 1]

    def coarse_node(self, size: int) -> int | None:
        """The largest prefix up to ``size`` that is a checkpoint up to ``DENSE``
        or the start of a doubling beyond (at least the first modelled prefix;
        None below it). A second chain fitted only at these costs one fit per
        doubling beyond ``DENSE``: each doubling's start follows the last."""
        if self.first is None or size < self.first:
            return None
        node = self.last_checkpoint(size)
        if node > DENSE:
            node = _epoch(node)
        return max(node, self.first)

    def digest(self, size: int) -> bytes:
        """Identifies the chain's key and the first ``size`` observations (a node)."""
        return self._digests[size]

    def model_size(self, size: int) -> int:
        """The prefix whose hyperparameters model ``size`` observations: the last
        checkpoint, or the first modelled prefix when that is later."""
        return max(self.last_checkpoint(size), self.first or 0)

    def model(self, size: int) -> tuple[Hyperparameters | None, GaussianProcess | None]:
        """What models ``size`` observations: the hyperparameters of
        ``model_size(size)`` (None below the first modelled prefix) and, where
        that is ``size`` itself and this chain fitted it, the fitted GP (on the
        same data: no conditioning needed)."""
        node = self.model_size(size)
        hyper = self.hyperparameters(node)
        return hyper, self.fitted.get(size) if node == size else None

    def parent(self, size: int) -> int | None:
        """The prefix whose fit the fit on ``size`` observations starts from."""
        if self.first is None or size <= self.first:
            return None
        is_checkpoint = size <= self.grid[-1] and self.last_checkpoint(size) == size
        if is_checkpoint and size > DENSE and _epoch(size) == size:
            before = size // 2
        else:
            before = self.grid[bisect.bisect_left(self.grid, size) - 1]
        return max(before, self.first)

    def hyperparameters(self, size: int) -> Hyperparameters | None:
        """The fit on the first ``size`` observations (a checkpoint, the first
        modelled prefix or the whole history), or None below the first."""
        if self.first is None or size < self.first:
            return None
        path: list[int] = []
        node: int | None = size
        start: object = _MISSING
        while node is not None:
            start = _get((node, self._digests[node]))
            if start is not _MISSING:
                break
            path.append(node)
            node = self.parent(node)
        hyper = start if isinstance(start, Hyperparameters) else None
        for node in reversed(path):
            gp = self._fit(node, hyper)
            hyper = gp.hyperparameters
            self.fitted[node] = gp
            _put((node, self._digests[node]), hyper)
        return hyper
