"""Latency of one Bayesian suggestion after n observations (a benchmark, not a test).

Calls ``optserve.optimizers.suggest(SuggestRequest(...))`` directly, single
threaded (one BLAS thread), on the problems of issue 6:

    d10-n100   10 doubles in [0, 1], 100 observations      target < 40 ms
    d10-n500   10 doubles in [0, 1], 500 observations      target < 300 ms
    seed4-n100 the seeds' constrained 4-D problem (alpha, beta in [0, 1],
               gamma, theta ints in [0, 10], alpha + beta <= 1,
               3 gamma - 5 theta >= 0), 100 observations target < 60 ms

and, without a target, with suggestions in flight (the local penalty of the
open points, their outcomes' draws; compiled against NumPy's maximizer):

    d10-n100-q8  d10-n100 with 7 suggestions open, as one of 8 workers sees it

and on a conditional space (the mixture kernel, scored by
the compiled scorer or NumPy's; the maximizer is NumPy's with both):

    cond-n60   depth in {1, 2, 3} as a conditional, a global learning rate,
               units_i and dropout_i active for i <= depth, 60 observations

and, above the exact GP's size (issue 10, target 3), on the same 10-D problem:

    d10-n1000, d10-n2000, d10-n10000   targets < 150 ms, < 300 ms, < 1 s;
               a batch of 20 within 5x of one suggestion

Observations are uniform feasible draws with a smooth objective. Each timed
suggestion starts as in service after one new observation: the process has
already suggested after the first n - 1 observations (so the hyperparameters
of the checkpoints before are cached), and the n-th observation is new to it
(each timed call gets a different one, so no call reuses another's fit).
Every repeat of the first three problems is timed once with the compiled
parts (the scorer, and where the acquisition is log EI alone the whole
maximizer: ``maximizer.BACKEND``) and once with NumPy's (``backend="numpy"``:
the NumPy scorer and maximizer), alternating, and the median of each is
reported with a breakdown:

    maximizer   the whole maximizer (candidates to the chosen point; overlaps the
                parts below)

    fit         GaussianProcess.fit / .condition / .believe (hyperparameters, Cholesky)
    candidates  feasible draws and neighbourhoods (FeasibleSpace.draw_rows, maximizer.neighbours)
    scoring     the posterior and log EI of every candidate (AcquisitionScorer,
                Fantasies: noisy EI's and the pending outcomes' draws, the batch's
                candidate pool)
    predict     other GaussianProcess.predict / .mean calls (incumbent, pending points)
    near        the check that a candidate is not an observed point (acquisition.row_keys)
    gradient    gradient polish, where the optimizer has one (of log EI, or of EI over
                the draws)
    compiled    the compiled maximizer (compiled_maximizer.maximize_log_ei)
    history     the observations as arrays and the training data (encoding, warping)
    subset      the choice of the training subset (above the exact size)
    other       the rest (constraint terms, Python glue)

Breakdown columns are medians of each part, so they need not add up to the total.
Hyperparameters are refitted when the history reaches a checkpoint
(``hyperfit``) and conditioned on between: n = 100 is a checkpoint (each timed
call fits), n = 500 is not (it conditions the fit of 496); the one refit of the
next checkpoint is reported under each problem.
The large sizes use the compiled scorer only and also report a batch of 20
(median, and its ratio to one suggestion), the peak of traced allocations
during one suggestion (tracemalloc: Python and NumPy memory, not the Rust
extension's), the first suggestion of a new process (every cached fit
replayed) and one hyperparameter refit at a checkpoint (every 10 % of growth).

    .venv/bin/python bench/latency.py [--repeats 9] [--sizes 1000,2000,10000]
"""

# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import functools
import math
import resource
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

try:
    import optserve  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from optserve.domain.model import (
    Bounds,
    Conditional,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Suggestion,
)
from optserve.optimizers import (
    SuggestRequest,
    acquisition,
    compiled_maximizer,
    hyperfit,
    maximizer,
    models,
    suggest,
    training,
)
from optserve.optimizers.feasible import FeasibleSpace, feasible_space
from optserve.optimizers.gp import GaussianProcess, gradient, subset
from optserve.optimizers.gp.fantasy import Fantasies
from optserve.optimizers.gp.scoring import AcquisitionScorer

PARTS = (
    "fit",
    "candidates",
    "scoring",
    "predict",
    "near",
    "gradient",
    "compiled",
    "history",
    "subset",
)


class Clock:
    """Inclusive time of the outermost wrapped call per part; nested calls are not
    counted again (the NumPy scorer's own ``gp.predict`` is scoring)."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)
        self.depth = 0
        # stages overlapping the parts (the whole maximizer)
        self.stages: dict[str, float] = defaultdict(float)

    def stage(self, name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        """Times every call of ``f`` into ``stages[name]``, parts still timed inside."""

        @functools.wraps(f)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                self.stages[name] += time.perf_counter() - t0

        return timed

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
    """Wraps the stages' public parts with the clock and picks the scorer's backend."""
    patches: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    patch(acquisition, "BACKEND", backend)
    patch(maximizer, "BACKEND", backend)
    compiled = compiled_maximizer.maximize_log_ei
    patch(compiled_maximizer, "maximize_log_ei", clock.wrap("compiled", compiled))
    for name in ("maximize_log_ei", "candidates", "maximize"):
        patch(maximizer, name, clock.stage("maximizer", getattr(maximizer, name)))
    for name in ("__init__", "log_ei", "predict"):
        patch(AcquisitionScorer, name, clock.wrap("scoring", getattr(AcquisitionScorer, name)))
    for name in ("__init__", "log_ei", "posterior"):
        patch(Fantasies, name, clock.wrap("scoring", getattr(Fantasies, name)))
    patch(Fantasies, "log_ei_and_grad", clock.wrap("gradient", Fantasies.log_ei_and_grad))
    for name in ("fit", "condition", "believe"):
        patch(GaussianProcess, name, clock.wrap("fit", getattr(GaussianProcess, name)))
    for name in ("predict", "mean"):
        patch(GaussianProcess, name, clock.wrap("predict", getattr(GaussianProcess, name)))
    for name in ("add", "posterior"):
        pool = maximizer.CandidatePool
        patch(pool, name, clock.wrap("scoring", getattr(pool, name)))
    patch(FeasibleSpace, "draw_rows", clock.wrap("candidates", FeasibleSpace.draw_rows))
    patch(maximizer, "neighbours", clock.wrap("candidates", maximizer.neighbours))
    patch(acquisition, "row_keys", clock.wrap("near", acquisition.row_keys))
    patch(gradient, "log_ei_and_grad", clock.wrap("gradient", gradient.log_ei_and_grad))
    for name in ("__init__", "training"):
        patch(training.History, name, clock.wrap("history", getattr(training.History, name)))
    patch(subset, "select", clock.wrap("subset", subset.select))
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
    # suggestions open while it suggests (uniform feasible draws)
    pending: int = 0


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

    target = {100: 40.0, 500: 300.0, 1000: 150.0, 2000: 300.0, 10_000: 1000.0}.get(n, math.inf)
    return Problem(f"d10-n{n}", exp, objective, n, target)


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


def _conditional(n: int) -> Problem:
    allowed = {1: ["1", "2", "3"], 2: ["2", "3"], 3: ["3"]}
    params = [Parameter("lr", ParameterType.DOUBLE, Bounds(-5.0, -1.0))]
    for i in (1, 2, 3):
        conditions = {"depth": allowed[i]}
        params.append(
            Parameter(f"units_{i}", ParameterType.INT, Bounds(8, 256), conditions=conditions)
        )
        params.append(
            Parameter(f"drop_{i}", ParameterType.DOUBLE, Bounds(0.0, 0.5), conditions=conditions)
        )
    exp = Experiment(
        id=f"latency-cond-{n}",
        name="cond",
        parameters=params,
        conditionals=[Conditional("depth", ["1", "2", "3"])],
        metrics=[Metric("loss", Objective.MINIMIZE)],
        seed=3,
    )

    def objective(a: dict[str, Any]) -> float:
        depth = int(a["depth"])
        loss = (float(a["lr"]) + 3.0) ** 2 + 0.2 * abs(depth - 2)
        for i in range(1, depth + 1):
            loss += ((float(a[f"units_{i}"]) - 128.0) / 128.0) ** 2 + float(a[f"drop_{i}"])
        return loss

    return Problem(f"cond-n{n}", exp, objective, n, math.inf)


def _points(problem: Problem, count: int) -> list[Observation]:
    """``count`` observations of uniform feasible draws."""
    exp = problem.experiment
    metric = exp.metrics[0].name
    points = feasible_space(exp).draw(count, np.random.default_rng(exp.seed))
    return [
        Observation(f"o{i}", exp.id, None, a, [MetricValue(metric, problem.objective(a))])
        for i, a in enumerate(points)
    ]


class Histories:
    """The first n - 1 observations, and a fresh n-th one for every timed call."""

    def __init__(self, problem: Problem, calls: int) -> None:
        self.problem = problem
        self.points = _points(problem, problem.n + calls)
        self.used = 0
        self.sequence = 10_000
        exp = problem.experiment
        drawn = feasible_space(exp).draw(problem.pending, np.random.default_rng(exp.seed + 1))
        self.pending = [Suggestion(f"p{i}", exp.id, a) for i, a in enumerate(drawn)]
        # The process has suggested after the first n - 1 observations.
        suggest(self.request(self.points[: problem.n - 1], 1))

    def request(self, observations: list[Observation], count: int) -> SuggestRequest:
        self.sequence += 1
        exp = self.problem.experiment
        return SuggestRequest(exp, observations, self.pending, count, self.sequence)

    def next(self, count: int = 1) -> SuggestRequest:
        """A request after n observations, the last one new to the process."""
        n = self.problem.n
        last = self.points[n - 1 + self.used]
        self.used += 1
        return self.request([*self.points[: n - 1], last], count)


def _timed(request: SuggestRequest, clock: Clock, backend: str) -> dict[str, float]:
    with instrumented(clock, backend):
        t0 = time.perf_counter()
        suggest(request)
        total = time.perf_counter() - t0
    parts = {part: clock.parts.get(part, 0.0) for part in PARTS}
    other = total - sum(clock.parts.values())
    return {"total": total, "maximizer": clock.stages["maximizer"], **parts, "other": other}


def run(problem: Problem, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per backend, per part (and "total"): the seconds of each repeat."""
    histories = Histories(problem, 2 * (repeats + 1))
    results: dict[str, dict[str, list[float]]] = {b: defaultdict(list) for b in ("rust", "numpy")}
    for r in range(-1, repeats):  # r = -1: warm-up, not recorded
        for backend in ("rust", "numpy") if r % 2 else ("numpy", "rust"):
            timing = _timed(histories.next(), Clock(), backend)
            if r >= 0:
                for part, seconds in timing.items():
                    results[backend][part].append(seconds)
    return results


def run_large(problem: Problem, repeats: int) -> dict[str, Any]:
    """One suggestion and a batch of 20 (compiled scorer), memory, a new
    process's first suggestion and a checkpoint's refit: seconds and bytes."""
    histories = Histories(problem, 2 * repeats + 4)
    single: dict[str, list[float]] = defaultdict(list)
    batch: list[float] = []
    for r in range(-1, repeats):
        timing = _timed(histories.next(), Clock(), "rust")
        t0 = time.perf_counter()
        suggest(histories.next(20))
        seconds = time.perf_counter() - t0
        if r >= 0:
            for part, value in timing.items():
                single[part].append(value)
            batch.append(seconds)
    tracemalloc.start()
    suggest(histories.next())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hyperfit.clear_cache()
    t0 = time.perf_counter()
    suggest(histories.next())
    first = time.perf_counter() - t0
    return {
        "single": single,
        "batch": batch,
        "peak": peak,
        "first": first,
        "refit": _checkpoint_refit(problem),
    }


def _checkpoint_refit(problem: Problem) -> float:
    """Seconds of the hyperparameter refit at the first checkpoint after n, from
    its (cached) parent: the extra work of the suggestion that reaches it."""
    exp = problem.experiment
    size = next(c for c in hyperfit.checkpoints(2 * problem.n) if c > problem.n)
    observations = _points(problem, size)
    history = training.History(exp, observations, feasible_space(exp).encoder)
    chain = models.Models(history).chain
    parent = chain.parent(size)
    assert parent is not None
    start = chain.hyperparameters(parent)
    t0 = time.perf_counter()
    models.chain_fit(history, size, start)
    return time.perf_counter() - t0


def _row(name: str, scorer: str, med: dict[str, float], columns: tuple[str, ...]) -> str:
    return f"{name:<12}{scorer:<7}" + "".join(f"{med[c]:>9.1f}" for c in columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--sizes", default="1000,2000,10000", help="large sizes, '' for none")
    args = parser.parse_args()
    in_flight = _ten_doubles(100)
    in_flight.name, in_flight.target_ms, in_flight.pending = "d10-n100-q8", math.inf, 7
    # its own experiment, so that it fits as d10-n100 does rather than reuse its fits
    in_flight.experiment = replace(in_flight.experiment, id="latency-d10-100-q8")
    problems = [_ten_doubles(100), _ten_doubles(500), _seed4(100), in_flight, _conditional(60)]
    columns = ("total", "maximizer", *PARTS, "other")
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"median ms over {args.repeats} suggestions, single thread "
        f"(OPENBLAS_NUM_THREADS={threads}), load {os.getloadavg()[0]:.1f}"
    )
    header = f"{'problem':<12}{'scorer':<7}" + "".join(f"{c[:8]:>9}" for c in columns)
    print(header + f"{'target':>9}{'':>6}")
    print("-" * (len(header) + 15))
    for problem in problems:
        results = run(problem, args.repeats)
        med = {b: {c: 1e3 * float(np.median(v)) for c, v in r.items()} for b, r in results.items()}
        for backend in ("rust", "numpy"):
            m = med[backend]
            verdict = "ok" if m["total"] < problem.target_ms else "OVER"
            target = (
                "" if math.isinf(problem.target_ms) else f"{problem.target_ms:>9.0f}{verdict:>6}"
            )
            print(_row(problem.name, backend, m, columns) + target)
        ratio_total = med["numpy"]["total"] / med["rust"]["total"]
        ratio_maximizer = med["numpy"]["maximizer"] / max(med["rust"]["maximizer"], 1e-9)
        print(
            f"{'':<12}numpy/rust: total x{ratio_total:.2f}, whole maximizer x{ratio_maximizer:.2f}"
        )
        n = problem.n
        kind = "a checkpoint (its fit)" if n in hyperfit.checkpoints(n) else "between checkpoints"
        print(
            f"{'':<12}n = {n} is {kind}; the refit at the next checkpoint "
            f"{1e3 * _checkpoint_refit(problem):.0f} ms"
        )
    sizes = [int(n) for n in args.sizes.split(",") if n]
    if sizes:
        print(
            f"\nabove the exact GP's size ({models.EXACT_MAX_POINTS} observations): a GP on "
            f"{models.SUBSET_SIZE} of them; compiled scorer; median ms over {args.repeats}"
        )
        print(header + f"{'target':>9}{'':>6}")
        print("-" * (len(header) + 15))
    for n in sizes:
        problem = _ten_doubles(n)
        out = run_large(problem, args.repeats)
        m = {c: 1e3 * float(np.median(v)) for c, v in out["single"].items()}
        verdict = "ok" if m["total"] < problem.target_ms else "OVER"
        print(_row(problem.name, "rust", m, columns) + f"{problem.target_ms:>9.0f}{verdict:>6}")
        batch = 1e3 * float(np.median(out["batch"]))
        ratio = batch / m["total"]
        print(
            f"{'':<12}batch of 20: {batch:.0f} ms, x{ratio:.1f} one suggestion "
            f"(target x5: {'ok' if ratio <= 5 else 'OVER'}); "
            f"peak traced memory {out['peak'] / 2**20:.1f} MiB"
        )
        print(
            f"{'':<12}first suggestion of a new process {1e3 * out['first']:.0f} ms; "
            f"refit at a checkpoint {1e3 * out['refit']:.0f} ms"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load after: {os.getloadavg()[0]:.1f}; peak RSS of the process {rss:.0f} MiB")


if __name__ == "__main__":
    main()
