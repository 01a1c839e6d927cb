"""Long-budget quality of the GP above its exact size: the training subset
against the exact GP (a benchmark, not a test).

On 10-D problems, each seed starts from a uniform random history of
``--start`` observations, then suggests and observes one point at a time with
the exact GP until ``EXACT_MAX_POINTS`` (500) observations; from there two
arms continue from the same state to ``--budget`` observations:

    exact    the exact GP on every observation (hyperparameters fitted on a
             random 500 of them, as the exact GP does), the switch disabled
    subset   the model as shipped: an exact GP on a training subset of 500

Reported: the median over seeds of the best value's regret (f - f*, smaller is
better) at a few history sizes, and the median seconds per suggestion of each
arm. Calls ``optserve.optimizers.suggest`` directly, single threaded.

    .venv/bin/python bench/scale_quality.py [--seeds 3] [--budget 1000] [--jobs 2]
"""

# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

try:
    import optserve  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from optserve.domain.model import (
    Bounds,
    Experiment,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
)
from optserve.optimizers import SuggestRequest, models, suggest

DIM = 10


def ackley(x: np.ndarray) -> float:
    """Ackley on [-5, 10]^d (minimum 0 at the origin)."""
    d = len(x)
    a = -20.0 * math.exp(-0.2 * math.sqrt(float(np.sum(x * x)) / d))
    return a - math.exp(float(np.sum(np.cos(2 * math.pi * x))) / d) + 20.0 + math.e


def levy(x: np.ndarray) -> float:
    """Levy on [-10, 10]^d (minimum 0 at (1, ..., 1))."""
    w = 1.0 + (x - 1.0) / 4.0
    head = math.sin(math.pi * w[0]) ** 2
    body = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + body + tail)


def styblinski_tang(x: np.ndarray) -> float:
    """Styblinski-Tang on [-5, 5]^d, shifted so that the minimum is 0."""
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x) + 39.16616570377142 * len(x))


PROBLEMS: dict[str, tuple[Callable[[np.ndarray], float], float, float]] = {
    "ackley10": (ackley, -5.0, 10.0),
    "levy10": (levy, -10.0, 10.0),
    "styblinski_tang10": (styblinski_tang, -5.0, 5.0),
}


def _experiment(problem: str, seed: int) -> Experiment:
    _, lo, hi = PROBLEMS[problem]
    return Experiment(
        id=f"scale-{problem}-{seed}",
        name=problem,
        parameters=[Parameter(f"x{i}", ParameterType.DOUBLE, Bounds(lo, hi)) for i in range(DIM)],
        metrics=[Metric("f", Objective.MINIMIZE)],
        seed=seed,
    )


def _observe(problem: str, exp: Experiment, a: dict[str, Any], k: int) -> Observation:
    f = PROBLEMS[problem][0]
    value = f(np.array([float(a[f"x{i}"]) for i in range(DIM)]))
    return Observation(f"o{k}", exp.id, None, a, [MetricValue("f", value)])


def _advance(
    problem: str, exp: Experiment, history: list[Observation], until: int, seconds: list[float]
) -> None:
    while len(history) < until:
        t0 = time.perf_counter()
        (a,) = suggest(SuggestRequest(exp, history, [], 1, len(history)))
        seconds.append(time.perf_counter() - t0)
        history.append(_observe(problem, exp, a, len(history)))


def _run(job: tuple[str, int, int, int]) -> dict[str, Any]:
    """One seed of one problem: the shared start, then both arms."""
    problem, seed, start, budget = job
    exp = _experiment(problem, seed)
    _, lo, hi = PROBLEMS[problem]
    rng = np.random.default_rng([seed, 7])
    history = [
        _observe(problem, exp, {f"x{i}": float(v) for i, v in enumerate(row)}, k)
        for k, row in enumerate(rng.uniform(lo, hi, size=(start, DIM)))
    ]
    switch = models.EXACT_MAX_POINTS
    _advance(problem, exp, history, switch, [])
    out: dict[str, Any] = {"problem": problem, "seed": seed}
    for arm in ("exact", "subset"):
        models.EXACT_MAX_POINTS = 10**9 if arm == "exact" else switch
        arm_history = list(history)
        seconds: list[float] = []
        _advance(problem, exp, arm_history, budget, seconds)
        values = np.array([o.values[0].value for o in arm_history])
        out[arm] = {"best": np.minimum.accumulate(values).tolist(), "seconds": seconds}
    models.EXACT_MAX_POINTS = switch
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="ackley10,levy10,styblinski_tang10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--start", type=int, default=400, help="random observations first")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", help="write every trajectory here")
    args = parser.parse_args()
    jobs = [
        (problem, seed, args.start, args.budget)
        for problem in args.problems.split(",")
        for seed in range(args.seeds)
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(_run, jobs))
    if args.json:
        Path(args.json).write_text(json.dumps(runs))
    switch = models.EXACT_MAX_POINTS
    sizes = sorted({switch, *range(switch + 100, args.budget + 1, 100), args.budget})
    print(
        f"median regret of the best value over {args.seeds} seeds "
        f"({args.start} random observations, then one suggestion at a time; "
        f"the arms part at {switch})"
    )
    header = f"{'problem':<20}{'arm':<8}" + "".join(f"{'n=' + str(n):>10}" for n in sizes)
    print(header + f"{'s/sugg.':>10}")
    print("-" * (len(header) + 10))
    for problem in args.problems.split(","):
        mine = [r for r in runs if r["problem"] == problem]
        for arm in ("exact", "subset"):
            best = np.array([r[arm]["best"] for r in mine])
            cells = "".join(f"{np.median(best[:, n - 1]):>10.3g}" for n in sizes)
            seconds = np.median(np.concatenate([r[arm]["seconds"] for r in mine]))
            print(f"{problem:<20}{arm:<8}{cells}{seconds:>10.3f}")
        wins = sum(r["subset"]["best"][-1] <= r["exact"]["best"][-1] for r in mine)
        print(f"{'':<20}subset at or below exact at n={args.budget} on {wins} of {len(mine)} seeds")


if __name__ == "__main__":
    main()
