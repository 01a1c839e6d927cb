"""Ax run asynchronously against optserve, one at a time and with 8 open.

    .venv/bin/python bench/quality/parallel/ax_table.py [--q8 q8_<commit>]

Median final log10 regret at budget 80 over the seeds for which Ax has both
runs (``results/ax_async/runs``); optserve's runs of the same seeds: one at a
time from ``bench/quality/results/runs``, 8 open from ``results/<--q8>/runs``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PROBLEMS = ["levy4", "hartmann6", "branin", "rosenbrock4", "ackley5", "layers_conditional"]


def final(path: Path) -> float:
    run = json.loads(path.read_text())
    assert run["error"] is None and not run["truncated"], path
    return math.log10(max(run["regret"][-1], 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--q8", default="q8_7beccd0", help="results/<dir> of optserve at q = 8")
    args = parser.parse_args()
    ax = HERE / "results" / "ax_async" / "runs"
    q1 = REPO / "bench" / "quality" / "results" / "runs"
    q8 = HERE / "results" / args.q8 / "runs"
    print(
        "| problem | seeds | Ax q = 1 | Ax q = 8 | Ax q = 8 - q = 1 "
        "| optserve q = 1 | optserve q = 8 | optserve q = 8 - q = 1 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for p in PROBLEMS:
        seeds = [
            s
            for s in range(10)
            if all((ax / f"ax_async__{p}__s{s}__b80__q{q}.json").exists() for q in (1, 8))
        ]
        if not seeds:
            continue

        def med(paths: list[Path]) -> float:
            return statistics.median(final(path) for path in paths)

        a1 = med([ax / f"ax_async__{p}__s{s}__b80__q1.json" for s in seeds])
        a8 = med([ax / f"ax_async__{p}__s{s}__b80__q8.json" for s in seeds])
        o1 = med([q1 / f"optserve__{p}__s{s}__b80.json" for s in seeds])
        o8 = med([q8 / f"optserve__{p}__s{s}__b80__q8.json" for s in seeds])
        print(
            f"| {p} | {seeds[0]}-{seeds[-1]} | {a1:.2f} | {a8:.2f} | {a8 - a1:+.2f} "
            f"| {o1:.2f} | {o8:.2f} | {o8 - o1:+.2f} |"
        )


if __name__ == "__main__":
    main()
