"""Suggestions are a function of the experiment, its seed and its history:
not of which process computes them, nor of what that process computed before."""

from __future__ import annotations

import math

import numpy as np

from optserve.domain.model import Bounds, Experiment, Metric, MetricValue, Observation, Parameter
from optserve.domain.model import ParameterType as T
from optserve.optimizers import SuggestRequest, hyperfit, models, suggest

from ..conftest import start_server
from ..service_tests.helpers import create, double, observe, plain
from ..service_tests.helpers import suggest as suggest_rpc

STEPS = 24


def _value(a: dict) -> float:
    # noisy-looking and multimodal, so that fits from different starts can disagree
    x = [a[f"x{i}"] for i in range(5)]
    return (
        math.sin(9 * x[0]) * math.cos(7 * x[1])
        + x[2] ** 3
        - 0.5 * x[3]
        + 0.05 * math.sin(50 * x[4])
    )


def _loop(stub, steps: int) -> tuple[str, list[dict]]:
    exp = create(stub, parameters=[double(f"x{i}") for i in range(5)], seed="17")
    points = []
    for _ in range(steps):
        (s,) = suggest_rpc(stub, exp.id)
        a = plain(s.assignments)
        points.append(a)
        observe(stub, exp.id, suggestionId=s.id, values=[{"name": "value", "value": _value(a)}])
    return exp.id, points


def test_two_processes_and_a_restart_give_the_same_suggestions(tmp_path):
    first = start_server(tmp_path / "first.db")
    try:
        first_id, first_points = _loop(first.stub(), STEPS)
    finally:
        assert first.stop() == 0
    # The same experiment in another process, whose cache is warm when it asks next.
    second = start_server(tmp_path / "second.db")
    try:
        second_id, second_points = _loop(second.stub(), STEPS)
        (warm,) = suggest_rpc(second.stub(), second_id)
    finally:
        assert second.stop() == 0
    assert first_points == second_points
    # The first process restarted: its cache is cold.
    restarted = start_server(tmp_path / "first.db")
    try:
        (cold,) = suggest_rpc(restarted.stub(), first_id)
    finally:
        assert restarted.stop() == 0
    assert plain(cold.assignments) == plain(warm.assignments)


def _experiment(exp_id: str) -> Experiment:
    return Experiment(
        id=exp_id,
        name="repro",
        parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(3)],
        metrics=[Metric("v")],
        seed=5,
    )


def _history(n: int) -> list[Observation]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        a = {f"x{j}": float(v) for j, v in enumerate(rng.random(3))}
        value = float(np.sin(6 * a["x0"]) + a["x1"] * a["x2"] + 0.1 * rng.normal())
        out.append(Observation(str(i), "e", None, a, [MetricValue("v", value)]))
    return out


def _warm_and_cold(exp: Experiment, history: list[Observation], sizes: list[int]) -> None:
    """The suggestion after ``history`` with a cold cache, and after the cache
    has seen suggestions on the given prefixes, are the same."""
    hyperfit.clear_cache()
    cold = suggest(SuggestRequest(exp, history, [], 2, len(history)))
    hyperfit.clear_cache()
    for size in sizes:
        suggest(SuggestRequest(exp, history[:size], [], 1, size))
    warm = suggest(SuggestRequest(exp, history, [], 2, len(history)))
    assert warm == cold


def test_a_warm_cache_gives_what_a_cold_one_gives():
    history = _history(70)
    _warm_and_cold(_experiment("warm-exact"), history, [10, 20, 33, 50, 69])


def test_a_warm_cache_gives_what_a_cold_one_gives_above_the_exact_size(monkeypatch):
    monkeypatch.setattr(models, "EXACT_MAX_POINTS", 40)
    monkeypatch.setattr(models, "SUBSET_SIZE", 30)
    monkeypatch.setattr(models, "SUBSET_FIT_POINTS", 25)
    history = _history(90)
    _warm_and_cold(_experiment("warm-scale"), history, [20, 41, 60, 80, 89])


def test_an_edited_observation_is_not_served_from_the_cache():
    exp = _experiment("edited")
    history = _history(60)
    suggest(SuggestRequest(exp, history, [], 1, 60))  # warms the cache
    edited = list(history)
    edited[5] = Observation("5", "e", None, edited[5].assignments, [MetricValue("v", 10.0)])
    warm = suggest(SuggestRequest(exp, edited, [], 1, 60))
    hyperfit.clear_cache()
    assert suggest(SuggestRequest(exp, edited, [], 1, 60)) == warm


def test_the_number_of_blas_threads_does_not_change_the_suggestions(tmp_path):
    """A multi-threaded BLAS sums in another order than a single-threaded one:
    without a fixed thread count, a machine with more cores (or a server
    started with other thread settings) would suggest other points."""
    points = []
    for threads in ("1", "2"):
        server = start_server(
            tmp_path / f"threads{threads}.db",
            env={"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads},
        )
        try:
            points.append(_loop(server.stub(), STEPS)[1])
        finally:
            assert server.stop() == 0
    assert points[0] == points[1]
