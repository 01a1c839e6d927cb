"""The chain of hyperparameter fits: checkpoints, links, and a cache that only saves work."""

from __future__ import annotations

import numpy as np

from optserve.domain.encoding import Encoder
from optserve.domain.model import Bounds, Experiment, Metric, MetricValue, Observation, Parameter
from optserve.domain.model import ParameterType as T
from optserve.optimizers import hyperfit
from optserve.optimizers.gp import GaussianProcess
from optserve.optimizers.training import History


def test_checkpoints_are_dense_then_twenty_per_doubling():
    grid = hyperfit.checkpoints(10_000)
    assert grid[: hyperfit.DENSE] == list(range(1, hyperfit.DENSE + 1))
    assert grid == sorted(set(grid)) and grid[-1] <= 10_000
    for epoch in (128, 256, 512, 1024, 2048, 4096):
        assert epoch in grid
        inside = [c for c in grid if epoch <= c < 2 * epoch]
        assert hyperfit.STEPS <= len(inside) <= hyperfit.STEPS + 2
    assert 8192 in grid
    gaps = np.diff(grid) / np.array(grid[1:])
    assert gaps[hyperfit.DENSE :].max() < 0.05


def _history(n: int) -> History:
    exp = Experiment(
        "chain", "chain", [Parameter("x", T.DOUBLE, Bounds(0, 1))], [Metric("v")], seed=2
    )
    rng = np.random.default_rng(0)
    observations = [
        Observation(
            str(i), "chain", None, {"x": float(x)}, [MetricValue("v", float(np.sin(9 * x)))]
        )
        for i, x in enumerate(rng.random(n))
    ]
    return History(exp, observations, Encoder(exp))


class Recorder:
    """A fit that records the links it is asked for."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, size, start):
        self.calls.append((size, start is not None))
        data = self.history.prefix(size).training(np.random.default_rng(0))
        return GaussianProcess(maxiter=5).fit(data.x, data.y, warm_start=start)


def test_links_and_depth_of_a_chain():
    history = _history(3000)
    chain = hyperfit.Chain(b"links", history, 5, Recorder(history))
    assert chain.parent(5) is None and chain.parent(3) is None
    assert chain.parent(20) == 19
    assert chain.parent(63) == 62 and chain.parent(64) == 32  # the first epoch
    assert chain.parent(256) == 128 and chain.parent(1024) == 512  # epochs
    assert chain.parent(1075) == 1024
    assert chain.parent(3000) == chain.last_checkpoint(2999)
    depth, node = 0, 3000
    while node is not None:
        depth, node = depth + 1, chain.parent(node)
    assert depth <= hyperfit.DENSE + hyperfit.STEPS + 8


def test_a_cold_chain_replays_each_link_once_and_a_warm_one_none():
    history = _history(700)
    hyperfit.clear_cache()
    cold = Recorder(history)
    first = hyperfit.Chain(b"replay", history, 5, cold).hyperparameters(700)
    sizes = [size for size, _ in cold.calls]
    assert sizes[0] == 5 and not cold.calls[0][1] and all(warm for _, warm in cold.calls[1:])
    assert len(sizes) == len(set(sizes)) and sizes[-1] == 700
    warm = Recorder(history)
    again = hyperfit.Chain(b"replay", history, 5, warm).hyperparameters(700)
    assert warm.calls == []
    np.testing.assert_array_equal(again.to_log_params(), first.to_log_params())
    # another key, or another history, shares nothing
    other = Recorder(history)
    hyperfit.Chain(b"other", history, 5, other).hyperparameters(700)
    assert len(other.calls) == len(cold.calls)
    edited = _history(700)
    edited.observations[600].values[0].value = 5.0
    edited = History(edited.experiment, edited.observations, Encoder(edited.experiment))
    after_edit = Recorder(edited)
    hyperfit.Chain(b"replay", edited, 5, after_edit).hyperparameters(700)
    assert after_edit.calls and all(size > 600 for size, _ in after_edit.calls)


def test_coarse_nodes_are_the_dense_checkpoints_then_the_doublings():
    history = _history(700)
    chain = hyperfit.Chain(b"coarse", history, 5, Recorder(history))
    assert chain.coarse_node(4) is None
    assert [chain.coarse_node(n) for n in (5, 20, 32, 33, 63, 64, 100, 127, 128, 700)] == [
        5,
        20,
        32,
        32,
        32,
        64,
        64,
        64,
        128,
        512,
    ]
    late = hyperfit.Chain(b"coarse-late", history, 40, Recorder(history))
    assert late.coarse_node(39) is None and late.coarse_node(50) == 40
    assert late.coarse_node(64) == 64
    # a second chain fitted at coarse nodes only: one fit per doubling past DENSE
    recorder = Recorder(history)
    hyperfit.clear_cache()
    other = hyperfit.Chain(b"coarse-fits", history, 5, recorder)
    other.hyperparameters(32)
    recorder.calls.clear()
    other.hyperparameters(64)
    other.hyperparameters(128)
    assert recorder.calls == [(64, True), (128, True)]


def test_a_decision_is_remembered_until_the_cache_is_cleared():
    hyperfit.clear_cache()
    calls = []

    def decide() -> bool:
        calls.append(1)
        return True

    assert hyperfit.decision(b"node", decide) and hyperfit.decision(b"node", decide)
    assert len(calls) == 1
    hyperfit.clear_cache()
    assert hyperfit.decision(b"node", decide) and len(calls) == 2
