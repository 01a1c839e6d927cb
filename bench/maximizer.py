"""The acquisition maximizer: the NumPy reference against the compiled one, and
peer baselines (a benchmark, not a test).

On the latency problems of ``bench/latency.py`` (d10-n100, d10-n500 and the
seeds' constrained seed4-n100), each repeat takes a different history (a
window of uniform feasible draws), fits one GP, and runs on it:

    numpy   the NumPy maximizer (``maximizer.candidates`` + ``maximizer.maximize``
            with its gradient polish; candidates scored by the compiled scorer,
            as in service)
    rust    the compiled maximizer (``compiled_maximizer.maximize_log_ei``,
            the scorer's copy of the factors included)

and reports the median milliseconds of each, their ratio, the log EI of both
points under the same GP (how often the compiled one is at least as high, to
1e-6) and infeasible points (must be 0). Then one whole suggestion
per history (``optimizers.suggest``, GP fit included, timed as
``bench/latency.py`` does: after n - 1 observations the process has suggested
once, the n-th observation is new) against the peers on the same histories in
the same run, where importable:

    botorch-rust   SingleTaskGP + LogExpectedImprovement + optimize_acqf
                   (num_restarts=10, raw_samples=512), in the side venv given by
                   --botorch-rust (default /tmp/venv-botorch-rust/bin/python; never
                   a dependency of optserve), run as a subprocess; integer columns
                   are a continuous relaxation, rounded
    optuna         Optuna's GPSampler, one ask after the history (when importable)

with the median gap f* - f(suggestion) of each (f* the problem's maximum),
lower is better.

    .venv/bin/python bench/maximizer.py [--repeats 9] [--botorch-rust PYTHON]
"""

# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import optserve  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent / "service"))

from latency import Histories, Problem, _points, _seed4, _ten_doubles

from optserve.domain.encoding import Encoder
from optserve.domain.model import Observation
from optserve.optimizers import acquisition as acq
from optserve.optimizers import compiled_maximizer, maximizer, suggest
from optserve.optimizers.feasible import FeasibleSpace, feasible_space
from optserve.optimizers.gp import GaussianProcess
from optserve.optimizers.gp.scoring import compiled_scorer

TOLERANCE = 1e-6


def optimum(problem: Problem) -> float:
    """The problem's maximum, by a fine grid (both objectives are separable enough)."""
    if problem.name.startswith("d10"):
        x = np.linspace(0.0, 1.0, 1_000_001)
        return 10 * float(np.max(-((x - 0.3) ** 2) + 0.3 * np.sin(7.0 * x)))
    a, b = np.meshgrid(np.linspace(0, 1, 2001), np.linspace(0, 1, 2001))
    ok = a + b <= 1.0
    cont = np.max((np.sin(3 * a) + np.cos(2 * b) * b + 0.3 * a * b)[ok])
    ints = max(
        -0.05 * (g - 7) ** 2 - 0.04 * (t - 4) ** 2
        for g in range(11)
        for t in range(11)
        if 3 * g - 5 * t >= 0
    )
    return float(cont + ints)


def histories(problem: Problem, repeats: int) -> list[list[Observation]]:
    points = _points(problem, problem.n + repeats)
    return [points[r : r + problem.n] for r in range(repeats)]


def arrays(
    enc: Encoder, history: list[Observation]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = enc.encode([o.assignments for o in history])
    y = np.array([o.values[0].value for o in history], dtype=np.float64)
    return x, y


def one_maximizer(space: FeasibleSpace, history: list[Observation], r: int) -> dict[str, Any]:
    """Both maximizers on one fitted GP: milliseconds, log EI, feasibility."""
    enc = space.encoder
    x, y = arrays(enc, history)
    gp = GaussianProcess().fit(x, y, rng=np.random.default_rng(r))
    incumbent = float(np.max(gp.predict(x)[0]))
    best = x[np.argsort(-y)[: maximizer.INCUMBENTS]]
    score = acq.Acquisition(gp, incumbent, False, enc, None, None, [], acq.key_set(x), None)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    rows = maximizer.candidates(space, best, np.random.default_rng(1000 + r))
    point, _, _ = maximizer.maximize(
        space,
        score,
        rows,
        score(rows),
        maximizer.REFINE_STARTS,
        np.random.default_rng(2000 + r),
        (gp, incumbent),
    )
    out["numpy_ms"] = 1e3 * (time.perf_counter() - t0)
    out["numpy_value"] = float(score(enc.encode([point]))[0])
    out["numpy_feasible"] = space.is_feasible(point)
    t0 = time.perf_counter()
    found = compiled_maximizer.maximize_log_ei(
        space, compiled_scorer(gp), incumbent, best, np.random.default_rng(r)
    )
    out["rust_ms"] = 1e3 * (time.perf_counter() - t0)
    if found is None:
        out["rust_value"], out["rust_feasible"] = -math.inf, False
    else:
        out["rust_value"] = float(score(enc.encode([found[0]]))[0])
        out["rust_feasible"] = space.is_feasible(found[0])
    return out


def botorch_constraints(exp: Any, enc: Encoder) -> list[list[Any]]:
    """The linear constraints over encoded columns, as BoTorch's
    ``(indices, coefficients, rhs)`` meaning ``sum(c * x[i]) >= rhs``."""
    out = []
    for lc in exp.linear_constraints:
        weights, rhs = lc.as_less_equal()
        cols, coef = [], []
        for name, w in weights.items():
            p = exp.parameter(name)
            span = p.bounds.max - p.bounds.min
            cols.append(enc.slices[name].start)
            coef.append(-w * span)
            rhs -= w * p.bounds.min
        out.append([cols, coef, -rhs])
    return out


def botorch_rust(
    python: str, problem: Problem, hist: list[list[Observation]]
) -> list[dict[str, Any]] | str:
    """botorch-rust's suggestion per history, or why it did not run."""
    if not Path(python).exists():
        return f"not installed ({python})"
    space = feasible_space(problem.experiment)
    enc = space.encoder
    payload = [
        {
            "name": problem.name,
            "constraints": botorch_constraints(problem.experiment, enc),
            "histories": [
                {"x": arrays(enc, h)[0].tolist(), "y": arrays(enc, h)[1].tolist()} for h in hist
            ],
        }
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
    done = subprocess.run(
        [python, str(HERE / "peers" / "botorch_rust_runner.py")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if done.returncode:
        return "failed: " + done.stderr.strip().splitlines()[-1]
    runs: list[dict[str, Any]] = json.loads(done.stdout)[0]["runs"]
    for run in runs:
        (point,) = enc.decode(np.array([run["x"]]))
        run["feasible"] = space.is_feasible(point)
        run["value"] = problem.objective(point)
    return runs


def optuna_gp(problem: Problem, hist: list[list[Observation]]) -> list[dict[str, Any]] | str:
    """Optuna's GPSampler: one ask after each history, or why it did not run."""
    try:
        import optuna
    except ImportError:
        return "not importable"
    exp = problem.experiment
    space = feasible_space(exp)
    runs = []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for h in hist:
        dists: dict[str, Any] = {}
        for p in exp.parameters:
            assert p.bounds is not None
            if p.type.name == "INT":
                dists[p.name] = optuna.distributions.IntDistribution(
                    int(p.bounds.min), int(p.bounds.max)
                )
            else:
                dists[p.name] = optuna.distributions.FloatDistribution(p.bounds.min, p.bounds.max)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GPSampler(seed=0))
        for o in h:
            study.add_trial(
                optuna.trial.create_trial(
                    params=dict(o.assignments), distributions=dists, value=o.values[0].value
                )
            )
        t0 = time.perf_counter()
        trial = study.ask(dists)
        seconds = time.perf_counter() - t0
        point = dict(trial.params)
        runs.append(
            {
                "total": seconds,
                "feasible": space.is_feasible(point),
                "value": problem.objective(point),
            }
        )
    return runs


def optserve_suggestions(
    problem: Problem, repeats: int
) -> tuple[list[dict[str, Any]], list[list[Observation]]]:
    """One suggestion per history, as ``bench/latency.py`` times them (the process
    has suggested after the first n - 1 observations; the n-th is new), and the
    histories."""
    histories = Histories(problem, repeats + 1)
    histories.next()  # warm-up
    space = feasible_space(problem.experiment)
    runs, seen = [], []
    for _ in range(repeats):
        request = histories.next()
        t0 = time.perf_counter()
        (point,) = suggest(request)
        seconds = time.perf_counter() - t0
        seen.append(request.observations)
        runs.append(
            {
                "total": seconds,
                "feasible": space.is_feasible(point),
                "value": problem.objective(point),
            }
        )
    return runs, seen


def med(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--botorch-rust", default="/tmp/venv-botorch-rust/bin/python")
    parser.add_argument("--no-peers", action="store_true", help="the maximizers only")
    args = parser.parse_args()
    problems = [_ten_doubles(100), _ten_doubles(500), _seed4(100)]
    print("maximizer alone (one fitted GP per history; ms medians)")
    print(
        f"{'problem':<12} {'numpy':>8} {'rust':>8} {'ratio':>6} "
        f"{'logEI numpy':>12} {'logEI rust':>11} {'rust>=numpy':>12} {'infeasible':>10}"
    )
    for problem in problems:
        space = feasible_space(problem.experiment)
        hist = histories(problem, args.repeats + 1)
        runs = [one_maximizer(space, h, r) for r, h in enumerate(hist)][1:]  # first: warm-up
        numpy_ms = med([r["numpy_ms"] for r in runs])
        rust_ms = med([r["rust_ms"] for r in runs])
        at_least = sum(r["rust_value"] >= r["numpy_value"] - TOLERANCE for r in runs)
        infeasible = sum(not r["rust_feasible"] for r in runs) + sum(
            not r["numpy_feasible"] for r in runs
        )
        print(
            f"{problem.name:<12} {numpy_ms:8.1f} {rust_ms:8.1f} {numpy_ms / rust_ms:6.2f} "
            f"{med([r['numpy_value'] for r in runs]):12.4f} "
            f"{med([r['rust_value'] for r in runs]):11.4f} "
            f"{at_least:>8}/{len(runs):<3} {infeasible:>10}"
        )
    if args.no_peers:
        return
    print()
    print("one suggestion after n observations, GP fit included (ms medians; gap = f* - f(x))")
    print(
        f"{'problem':<12} {'who':<14} {'total':>8} {'maximizer':>10} {'gap':>8} "
        f"{'infeasible':>10} {'target':>7}"
    )
    for problem in problems:
        best = optimum(problem)
        ours, hist = optserve_suggestions(problem, args.repeats)
        rows: list[tuple[str, list[dict[str, Any]] | str]] = [
            ("optserve", ours),
            ("botorch-rust", botorch_rust(args.botorch_rust, problem, hist)),
            ("optuna-gp", optuna_gp(problem, hist)),
        ]
        for who, runs in rows:
            if isinstance(runs, str):
                print(f"{problem.name:<12} {who:<14} {runs}")
                continue
            total = 1e3 * med([r["total"] for r in runs])
            maxi = 1e3 * med([r["maximizer"] for r in runs]) if "maximizer" in runs[0] else math.nan
            feasible = [r for r in runs if r["feasible"]]
            gap = med([best - r["value"] for r in feasible])
            target = f"{problem.target_ms:.0f}" if who == "optserve" else ""
            print(
                f"{problem.name:<12} {who:<14} {total:8.1f} {maxi:10.1f} {gap:8.4f} "
                f"{len(runs) - len(feasible):>10} {target:>7}"
            )


if __name__ == "__main__":
    main()
