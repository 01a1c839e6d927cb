"""Benchmark of the polytope samplers (not a test).

Measures steps/s and seconds per 10,000 thinned samples (thin = d), single
threaded, on four polytopes, for the Rust sampler (coordinate and random
direction), the NumPy reference of the tests, and hopsy 1.7 when importable:

    P1  the 4-D seed example as continuous: alpha, beta in [0, 1],
        gamma, theta in [0, 10], alpha + beta <= 1, 3 gamma - 5 theta >= 0
    P2  d = 20: the unit box + 20 random rows keeping the centre feasible
    P3  d = 100: the unit box + 100 random rows
    P4  d = 50: x >= 0, sum x <= 1

hopsy must not be a project dependency; run this from a separate venv that
has both, e.g.::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install hopsy==1.7.0 numpy scipy maturin
    VIRTUAL_ENV=$PWD/.venv-bench .venv-bench/bin/maturin develop --release
    .venv-bench/bin/python bench/sampler.py

Slow samplers run fewer steps (at least ``--min-seconds`` worth) and their
seconds per 10k samples are extrapolated from the measured rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    from optserve import _sampler
    from optserve.sampling import Polytope
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
    from optserve import _sampler
    from optserve.sampling import Polytope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.sampling_tests.reference import hit_and_run as reference_hit_and_run

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hopsy
except ImportError:
    hopsy = None

N_SAMPLES = 10_000


@dataclass
class Problem:
    name: str
    a: np.ndarray
    b: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def d(self) -> int:
        return self.a.shape[1]

    @property
    def m(self) -> int:
        return self.a.shape[0]


def problems() -> list[Problem]:
    rng = np.random.default_rng(2024)
    out = [
        Problem(
            "P1",
            np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, -3.0, 5.0]]),
            np.array([1.0, 0.0]),
            np.zeros(4),
            np.array([1.0, 1.0, 10.0, 10.0]),
        )
    ]
    for name, d in (("P2", 20), ("P3", 100)):
        a = rng.normal(size=(d, d))
        b = a @ np.full(d, 0.5) + rng.uniform(0.05, 0.5, size=d) * np.abs(a).sum(axis=1)
        out.append(Problem(name, a, b, np.zeros(d), np.ones(d)))
    d = 50
    out.append(Problem("P4", np.ones((1, d)), np.array([1.0]), np.zeros(d), np.full(d, np.inf)))
    return out


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


@dataclass
class Row:
    problem: str
    sampler: str
    steps_per_s: float
    s_per_10k: float
    flop_frac: float
    note: str = ""


def measure(
    p: Problem, name: str, run: Callable[[int], object], rate_guess: float, flops: float,
    peak: float, repeats: int, min_seconds: float,
) -> Row:  # fmt: skip
    thin = p.d
    n = int(min(N_SAMPLES, max(50, rate_guess * min_seconds / thin)))
    run(min(n, 50))  # warm-up
    t = median_time(lambda: run(n), repeats)
    rate = n * thin / t
    note = "" if n == N_SAMPLES else f"extrapolated from {n} samples"
    return Row(
        p.name,
        name,
        rate,
        N_SAMPLES * thin / rate,
        rate * flops / peak,
        note,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument(
        "--peak-gflops", type=float, default=16.0 * 2.5,
        help="assumed single-core peak: 2 FMA units x 4 f64 lanes x 2 flops x 2.5 GHz",
    )  # fmt: skip
    args = ap.parse_args()
    peak = args.peak_gflops * 1e9
    rows: list[Row] = []
    mixing: list[str] = []
    print(
        f"hopsy: {'1.7 ' + str(getattr(hopsy, '__version__', '')) if hopsy else 'not importable'}"
    )
    print(f"assumed peak {args.peak_gflops:.1f} GFLOP/s single core; threads: 1")
    for p in problems():
        x0, _ = Polytope(p.a, p.b, p.lo, p.hi).chebyshev_center()
        coord_flops, rand_flops = 2.0 * p.m, 2.0 * p.m * p.d
        for method, flops, guess in (("coordinate", coord_flops, 3e7), ("random", rand_flops, 1e6)):

            def rust(n: int, method: str = method, p: Problem = p, x0: np.ndarray = x0) -> object:
                return _sampler.hit_and_run(
                    p.a, p.b, p.lo, p.hi, x0, n, burn_in=0, thin=p.d, method=method, seed=1
                )

            rows.append(
                measure(
                    p, f"rust {method}", rust, guess, flops, peak, args.repeats, args.min_seconds
                )
            )

            def ref(n: int, method: str = method, p: Problem = p, x0: np.ndarray = x0) -> object:
                return reference_hit_and_run(
                    p.a, p.b, p.lo, p.hi, x0, n, burn_in=0, thin=p.d, method=method, seed=1
                )

            rows.append(measure(p, f"numpy {method}", ref, 3e4, flops, peak, 1, args.min_seconds))
        if hopsy is not None:
            rows.extend(hopsy_rows(p, x0, peak, args))
        # P4-style mixing check on every problem with a known answer.
        if p.name == "P4":
            d = p.d
            exact = np.sqrt(d / ((d + 1) ** 2 * (d + 2)))
            for method in ("coordinate", "random"):
                x = _sampler.hit_and_run(
                    p.a,
                    p.b,
                    p.lo,
                    p.hi,
                    x0,
                    N_SAMPLES,
                    burn_in=200 * d,
                    thin=d,
                    method=method,
                    seed=7,
                )
                err = np.max(np.abs(x.std(axis=0) / exact - 1))
                mean_err = np.max(np.abs(x.mean(axis=0) * (d + 1) - 1))
                mixing.append(
                    f"P4 rust {method}: worst relative error of the {d} coordinate std devs "
                    f"{100 * err:.2f} % (target < 5 %), of the means {100 * mean_err:.2f} %"
                )
    hop = {
        (r.problem, r.sampler.split()[-1]): r.steps_per_s
        for r in rows
        if r.sampler.startswith("hopsy")
    }
    print()
    print(
        f"{'poly':4} {'sampler':18} {'steps/s':>12} {'s/10k':>9} {'x hopsy':>8} {'flop %':>7}  note"
    )
    for r in rows:
        ref_rate = hop.get((r.problem, r.sampler.split()[-1]))
        ratio = f"{r.steps_per_s / ref_rate:8.2f}" if ref_rate else f"{'-':>8}"
        print(
            f"{r.problem:4} {r.sampler:18} {r.steps_per_s:12.4g} {r.s_per_10k:9.4g} {ratio} "
            f"{100 * r.flop_frac:7.3f}  {r.note}"
        )
    print()
    for line in mixing:
        print(line)


def hopsy_rows(p: Problem, x0: np.ndarray, peak: float, args: argparse.Namespace) -> list[Row]:
    assert hopsy is not None
    rows: list[Row] = []
    d = p.d
    finite_hi = np.where(np.isfinite(p.hi), p.hi, 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        simplified = hopsy.add_box_constraints(
            hopsy.Problem(p.a, p.b), p.lo, finite_hi, simplify=True
        )
        t_simplify = time.perf_counter() - t
        prob = hopsy.add_box_constraints(hopsy.Problem(p.a, p.b), p.lo, finite_hi, simplify=False)
    if not np.all(np.isfinite(p.hi)):
        # Drop the +inf upper rows instead of keeping huge ones.
        keep = prob.b < 1e299
        prob = hopsy.Problem(prob.A[keep], prob.b[keep])
    rows_note = (
        f"A has {prob.A.shape[0]} rows; simplify=True took {t_simplify:.3f} s"
        f" -> {simplified.A.shape[0]} rows"
    )
    flops_per = {"coordinate": 2.0 * p.m, "random": 2.0 * p.m * d}
    for method, proposal, guess in (
        ("coordinate", hopsy.UniformCoordinateHitAndRunProposal, 3e6),
        ("random", hopsy.UniformHitAndRunProposal, 3e5),
    ):

        def run(n: int, proposal: type = proposal) -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mc = hopsy.MarkovChain(prob, proposal=proposal, starting_point=x0)
                rng = hopsy.RandomNumberGenerator(seed=1)
                return hopsy.sample(mc, rng, n_samples=n, thinning=d, n_procs=1)

        row = measure(
            p,
            f"hopsy {method}",
            run,
            guess,
            flops_per[method],
            peak,
            args.repeats,
            args.min_seconds,
        )
        row.note = (row.note + "; " if row.note else "") + rows_note
        rows.append(row)
    return rows


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
