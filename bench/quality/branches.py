"""Where the budget of a conditional experiment goes: evaluations per branch.

For a conditional problem of the shared suite (default ``layers_conditional``),
runs optserve through a real server (``adapter.py``) and reports, per seed, the
final regret, the branch of the best observation, how many evaluations each
branch got, the best value each branch reached and when the final best branch
first held the incumbent. A seed that ends in the wrong branch shows whether the
right one was starved (few evaluations) or searched badly (many evaluations, no
good value); the harness's run files keep only values, not assignments.

    .venv-quality/bin/python bench/quality/branches.py [--problem NAME]
        [--seeds 0-9] [--budget 80]

Serves ``OPTSERVE_SERVICE_PATH`` (a snapshot, see README) or the installed optserve.
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
HARNESS = HERE.parents[2] / "shared" / "bench" / "quality"
sys.path[:0] = [str(HARNESS), str(HERE)]

import problems  # noqa: E402  (the shared suite)
from adapter import OptserveAdapter  # noqa: E402


def _seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def run_seed(name: str, seed: int, budget: int) -> dict:
    prob = problems.SUITE[name]
    exp = prob.experiment
    conditionals = [k["name"] for k in exp.get("conditionals", [])]
    if not conditionals:
        raise SystemExit(f"{name} has no conditionals")
    sign = 1.0 if prob.objective == "minimize" else -1.0
    rng = np.random.default_rng(10_000 + seed)  # as the harness seeds its noise
    opt = OptserveAdapter(exp, seed, budget)
    counts: collections.Counter[tuple] = collections.Counter()
    best_in: dict[tuple, float] = {}
    best, best_branch, leader_since = math.inf, None, 0
    try:
        for i in range(budget):
            a = opt.suggest()
            y = prob.evaluate(a, rng)
            opt.observe(a, y)
            branch = tuple(str(a[k]) for k in conditionals)
            counts[branch] += 1
            value = sign * prob.true_value(a)
            best_in[branch] = min(best_in.get(branch, math.inf), value)
            if value < best:
                if branch != best_branch:
                    leader_since = i
                best, best_branch = value, branch
    finally:
        opt.close()
    return {
        "seed": seed,
        "regret": abs(sign * best - prob.optimum),
        "branch": best_branch,
        "since": leader_since,
        "counts": counts,
        "best_in": best_in,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="layers_conditional")
    parser.add_argument("--seeds", default="0-9", help="a seed or a range, e.g. 0-9")
    parser.add_argument("--budget", type=int, default=80)
    args = parser.parse_args()
    rows = [run_seed(args.problem, s, args.budget) for s in _seeds(args.seeds)]
    branches = sorted({b for r in rows for b in r["counts"]})
    names = ["/".join(b) for b in branches]
    print(f"{args.problem}, budget {args.budget}: evaluations per branch (best value reached)\n")
    print("| seed | regret | best branch | leads from | " + " | ".join(names) + " |")
    print("|---" * (4 + len(names)) + "|")
    for r in rows:
        cells = [
            f"{r['counts'][b]} ({r['best_in'][b]:.3g})" if b in r["best_in"] else "0"
            for b in branches
        ]
        print(
            f"| {r['seed']} | {r['regret']:.3g} | {'/'.join(r['branch'])} | {r['since']} | "
            + " | ".join(cells)
            + " |"
        )
    below = sum(r["regret"] < 0.1 for r in rows)
    print(f"\nregret < 0.1 on {below} of {len(rows)} seeds")


if __name__ == "__main__":
    main()
