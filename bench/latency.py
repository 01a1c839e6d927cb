"""Latency of one Bayesian suggestion after n observations (a benchmark, not a test).

Calls ``optserve.optimizers.suggest(SuggestRequest(...))`` directly, single
threaded (one BLAS thread), on the problems of issue 6:

    d10-n100   10 doubles in [0, 1], 100 observations      target < 40 ms
    d10-n500   10 doubles in [0, 1], 500 observations      target < 300 ms
    seed4-n100 the seeds' constrained 4-D problem (alpha, beta in [0, 1],
               gamma, theta ints in [0, 10], alpha + beta <= 1,
               3 gamma - 5 theta >= 0), 100 observations target < 60 ms

Observations are uniform feasible draws with a smooth objective. Each timed
suggestion starts warm, as in service: the GP's previous hyperparameters come
from a fit on the first n - 1 observations. Every repeat is timed once with
the compiled scorer and once with the NumPy scorer (``backend="numpy"``),
alternating, and the median of each is reported with a breakdown:

    fit         GaussianProcess.fit / .condition (MAP hyperparameters, Cholesky)
    candidates  feasible draws and neighbourhoods (FeasibleSpace.draw_rows, _neighbours)
    scoring     AcquisitionScorer: the posterior and log EI of every candidate
    predict     other GaussianProcess.predict calls (incumbent, pending points)
    near        the check that a candidate is not an observed point (_row_keys)
    gradient    gradient polish, where the optimizer has one
    other       the rest (encoding, constraint terms, Python glue)

Breakdown columns are medians of each part, so they need not add up to the total.

    .venv/bin/python bench/latency.py [--repeats 9]
"""

# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import functools
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import optserve  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from optserve.domain.model import (
    Bounds,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
)
from optserve.optimizers import SuggestRequest, bayesian, suggest
from optserve.optimizers.feasible import FeasibleSpace, feasible_space, space_key
from optserve.optimizers.gp import GaussianProcess
from optserve.optimizers.gp.scoring import AcquisitionScorer

PARTS = ("fit", "candidates", "scoring", "predict", "near", "gradient")


class Clock:
    """Inclusive time of the outermost wrapped call per part; nested calls are not
    counted again (the NumPy scorer's own ``gp.predict`` is scoring)."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)
        self.depth = 0

    def wrap(self, part: str, f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.depth:
                return f(*args, **kwargs)
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                self.parts[part] += time.perf_counter() - t0
                self.depth -= 1

        return timed


@contextmanager
def instrumented(clock: Clock, backend: str) -> Iterator[None]:
    """Wraps the optimizer's parts with the clock and picks the scorer's backend."""
    patches: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    original_scorer = AcquisitionScorer

    class Scorer(original_scorer):  # type: ignore[misc, valid-type]
        def __init__(self, gp: GaussianProcess, incumbent: float, **kwargs: Any) -> None:
            kwargs["backend"] = backend
            super().__init__(gp, incumbent, **kwargs)

    Scorer.__init__ = clock.wrap("scoring", Scorer.__init__)  # type: ignore[method-assign]
    Scorer.log_ei = clock.wrap("scoring", original_scorer.log_ei)
    patch(bayesian, "AcquisitionScorer", Scorer)
    patch(GaussianProcess, "fit", clock.wrap("fit", GaussianProcess.fit))
    patch(GaussianProcess, "condition", clock.wrap("fit", GaussianProcess.condition))
    patch(GaussianProcess, "predict", clock.wrap("predict", GaussianProcess.predict))
    patch(FeasibleSpace, "draw_rows", clock.wrap("candidates", FeasibleSpace.draw_rows))
    patch(bayesian, "_neighbours", clock.wrap("candidates", bayesian._neighbours))
    patch(bayesian, "_row_keys", clock.wrap("near", bayesian._row_keys))
    if hasattr(bayesian, "log_ei_and_grad"):
        patch(bayesian, "log_ei_and_grad", clock.wrap("gradient", bayesian.log_ei_and_grad))
    try:
        yield
    finally:
        for owner, name, value in reversed(patches):
            setattr(owner, name, value)


@dataclass
class Problem:
    name: str
    experiment: Experiment
    objective: Callable[[dict[str, Any]], float]
    n: int
    target_ms: float


def _double(name: str) -> Parameter:
    return Parameter(name, ParameterType.DOUBLE, Bounds(0.0, 1.0))


def _ten_doubles(n: int) -> Problem:
    names = [f"x{i}" for i in range(10)]
    exp = Experiment(
        id=f"latency-d10-{n}",
        name="d10",
        parameters=[_double(v) for v in names],
        metrics=[Metric("value")],
        seed=1,
    )

    def objective(a: dict[str, Any]) -> float:
        x = np.array([float(a[v]) for v in names])
        return float(-np.sum((x - 0.3) ** 2) + 0.3 * np.sum(np.sin(7.0 * x)))

    return Problem(f"d10-n{n}", exp, objective, n, 40.0 if n <= 100 else 300.0)


def _seed4(n: int) -> Problem:
    exp = Experiment(
        id=f"latency-seed4-{n}",
        name="seed4",
        parameters=[
            _double("alpha"),
            _double("beta"),
            Parameter("gamma", ParameterType.INT, Bounds(0, 10)),
            Parameter("theta", ParameterType.INT, Bounds(0, 10)),
        ],
        metrics=[Metric("metric_value")],
        linear_constraints=[
            LinearConstraint(
                ConstraintType.LESS_THAN,
                1.0,
                [ConstraintTerm("alpha", 1.0), ConstraintTerm("beta", 1.0)],
            ),
            LinearConstraint(
                ConstraintType.GREATER_THAN,
                0.0,
                [ConstraintTerm("gamma", 3.0), ConstraintTerm("theta", -5.0)],
            ),
        ],
        seed=2,
    )

    def objective(a: dict[str, Any]) -> float:  # examples/demo.py
        x, y, g, t = float(a["alpha"]), float(a["beta"]), a["gamma"], a["theta"]
        return (
            math.sin(3 * x)
            + math.cos(2 * y) * y
            + 0.3 * x * y
            - 0.05 * (g - 7) ** 2
            - 0.04 * (t - 4) ** 2
        )

    return Problem(f"seed4-n{n}", exp, objective, n, 60.0)


def _observations(problem: Problem) -> list[Observation]:
    exp = problem.experiment
    metric = exp.metrics[0].name
    points = feasible_space(exp).draw(problem.n, np.random.default_rng(exp.seed))
    return [
        Observation(f"o{i}", exp.id, None, a, [MetricValue(metric, problem.objective(a))])
        for i, a in enumerate(points)
    ]


def _request(problem: Problem, observations: list[Observation], sequence: int) -> SuggestRequest:
    return SuggestRequest(problem.experiment, observations, [], 1, sequence)


def run(problem: Problem, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per backend, per part (and "total"): the seconds of each repeat."""
    observations = _observations(problem)
    # The hyperparameters a server would hold after the previous suggestion.
    suggest(_request(problem, observations[:-1], 10_000))
    key = space_key(problem.experiment)
    warm = bayesian._WARM[key]
    results: dict[str, dict[str, list[float]]] = {b: defaultdict(list) for b in ("rust", "numpy")}
    for r in range(-1, repeats):  # r = -1: warm-up, not recorded
        for backend in ("rust", "numpy") if r % 2 else ("numpy", "rust"):
            bayesian._WARM[key] = warm
            clock = Clock()
            with instrumented(clock, backend):
                t0 = time.perf_counter()
                suggest(_request(problem, observations, r + 1))
                total = time.perf_counter() - t0
            if r < 0:
                continue
            results[backend]["total"].append(total)
            for part in PARTS:
                results[backend][part].append(clock.parts.get(part, 0.0))
            other = total - sum(clock.parts.values())
            results[backend]["other"].append(other)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    problems = [_ten_doubles(100), _ten_doubles(500), _seed4(100)]
    columns = ("total", *PARTS, "other")
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"median ms over {args.repeats} suggestions, single thread "
        f"(OPENBLAS_NUM_THREADS={threads}), load {os.getloadavg()[0]:.1f}"
    )
    header = f"{'problem':<12}{'scorer':<7}" + "".join(f"{c:>11}" for c in columns)
    print(header + f"{'target':>9}{'':>6}")
    print("-" * (len(header) + 15))
    for problem in problems:
        results = run(problem, args.repeats)
        med = {b: {c: 1e3 * float(np.median(v)) for c, v in r.items()} for b, r in results.items()}
        for backend in ("rust", "numpy"):
            m = med[backend]
            verdict = "ok" if m["total"] < problem.target_ms else "OVER"
            print(
                f"{problem.name:<12}{backend:<7}"
                + "".join(f"{m[c]:>11.1f}" for c in columns)
                + f"{problem.target_ms:>9.0f}{verdict:>6}"
            )
        ratio_total = med["numpy"]["total"] / med["rust"]["total"]
        ratio_scoring = med["numpy"]["scoring"] / max(med["rust"]["scoring"], 1e-9)
        print(f"{'':<12}numpy/rust: total x{ratio_total:.2f}, scoring x{ratio_scoring:.2f}")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
