"""Report of bench/quality/paired: optserve against GPSampler and Ax at budget
30 on the same seeds.

For each problem and anchor, on the seeds both have run: the medians of log10
simple regret on seeds 0-9 (ANCHORS.md's view) and on all of them, on how many
seeds optserve ends lower and higher, the Mann-Whitney U p-value, and a 90 %
bootstrap interval of the difference of the medians. Two optimizers given the
same seed share no randomness but the problem's noise, so the runs are two
independent samples: the test and the bootstrap treat them so."""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

BUDGET = 30
FLOOR = 1e-12
ANCHORS = ("gp", "ax")
BOOTSTRAP = 4000


def final_regret(run: dict) -> float:
    """log10 simple regret after BUDGET evaluations (a run that is not budget
    aware may be longer: its prefix is what it had done by then)."""
    regret = run["regret"][:BUDGET]
    if len(regret) < BUDGET or run.get("error"):
        return math.nan
    last = regret[-1]  # None or inf: no feasible observation yet
    return math.log10(max(last, FLOOR)) if last is not None and math.isfinite(last) else math.inf


def load(out: Path) -> dict[tuple[str, str], dict[int, float]]:
    """Final regrets by (optimizer, problem) and seed; runs cut short are
    named on stderr and left out (delete their files to run them again)."""
    runs: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for path in sorted((out / "runs").glob("*.json")):
        run = json.loads(path.read_text())
        value = final_regret(run)
        if math.isnan(value):
            print(f"left out, cut short: {path.name}", file=sys.stderr)
        else:
            runs[(run["optimizer"], run["problem"])][int(run["seed"])] = value
    return runs


def bootstrap_interval(mine: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """90 % interval of median(mine) - median(theirs), each resampled on its own."""
    rng = np.random.default_rng(0)
    a = mine[rng.integers(len(mine), size=(BOOTSTRAP, len(mine)))]
    b = theirs[rng.integers(len(theirs), size=(BOOTSTRAP, len(theirs)))]
    lo, hi = np.percentile(np.median(a, axis=1) - np.median(b, axis=1), [5, 95])
    return float(lo), float(hi)


def main(out: Path) -> None:
    runs = load(out)
    problems = sorted({p for o, p in runs if o == "optserve"}, key=str)
    print("# optserve against GPSampler and Ax at budget 30, on the same seeds\n")
    print(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip() + "\n")
    print(f"Service commit: {(out / 'SERVICE_COMMIT').read_text().strip()}.\n")
    summary: dict[str, dict[str, list[str]]] = {a: {"first10": [], "all": []} for a in ANCHORS}
    for anchor in ANCHORS:
        print(f"\n## Against {anchor}\n")
        print(
            f"| problem | seeds | optserve 0-9 | {anchor} 0-9 | optserve all | {anchor} all "
            "| lower / higher | p | median difference, 90 % |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for problem in problems:
            mine, theirs = runs[("optserve", problem)], runs.get((anchor, problem), {})
            seeds = sorted(set(mine) & set(theirs))
            if not seeds:
                continue
            a = np.array([mine[s] for s in seeds])
            b = np.array([theirs[s] for s in seeds])
            first = [i for i, s in enumerate(seeds) if s < 10]
            lower, higher = int((a < b).sum()), int((a > b).sum())
            # ranks only: a run without a feasible observation ranks last
            p = stats.mannwhitneyu(a, b).pvalue if lower + higher else 1.0
            lo, hi = bootstrap_interval(a, b)
            m10a, m10b = np.median(a[first]), np.median(b[first])
            ma, mb = np.median(a), np.median(b)
            if len(first) == 10 and m10a <= m10b:
                summary[anchor]["first10"].append(problem)
            if ma <= mb:
                summary[anchor]["all"].append(problem)
            print(
                f"| {problem} | {len(seeds)} | {m10a:.2f} | {m10b:.2f} | {ma:.2f} | {mb:.2f} | "
                f"{lower} / {higher} | {p:.3f} | {lo:+.2f} .. {hi:+.2f} |"
            )
    print("\n## Summary\n")
    for view, label in (("first10", "medians of seeds 0-9"), ("all", "medians of all seeds run")):
        with_ax = [p for p in problems if runs.get(("ax", p))]
        both = [p for p in with_ax if p in summary["gp"][view] and p in summary["ax"][view]]
        print(
            f"- {label}: at or below GPSampler on {len(summary['gp'][view])} of {len(problems)}; "
            f"at or below both GPSampler and Ax on {len(both)} of the {len(with_ax)} "
            f"problems Ax ran ({', '.join(both) or 'none'})"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
