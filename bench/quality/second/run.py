"""Runner for the second problem set: the shared harness plus second_problems.py.

    python bench/quality/second/run.py run --optimizers optserve tpe random_feasible random \
        --problems all --seeds 5 --budgets 30 80 --workers 1 --out bench/quality/second/results
    python bench/quality/second/run.py report --results bench/quality/second/results

At import (so also in the harness's spawned worker processes) the problems of
second_problems.py replace the shared suite in ``harness.problems_mod.SUITE``
(``--problems all`` then means this set); everything else is the harness's own:
runner, feasibility check, scoring, run files and their caching. ``report``
writes the harness's table to ``tables.md`` and, below it, optserve against each
anchor.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "bench" / "quality"
sys.path[:0] = [str(SHARED), str(HERE)]
import harness  # noqa: E402  (../shared/bench/quality/harness.py)
import second_problems  # noqa: E402

harness.problems_mod.SUITE.clear()
harness.problems_mod.SUITE.update(second_problems.SUITE)


INF = 99.0  # log10 regret standing for "no feasible observation yet" in percentiles


def _medians(runs: list[dict], budgets: list[int]) -> dict[tuple[int, str, str], dict]:
    """Median log10 regret per (budget, problem, optimizer); unlike the harness's
    table, a run without a feasible observation (regret inf) counts as the worst
    value instead of turning the median into nan."""
    out: dict[tuple[int, str, str], dict] = {}
    keys = sorted({(r["problem"], r["optimizer"]) for r in runs})
    for b in budgets:
        for p, o in keys:
            vals, bad = [], 0
            for r in runs:
                if (r["problem"], r["optimizer"]) != (p, o):
                    continue
                v = harness._regret_at(r, b)
                if v is None:
                    continue
                vals.append(min(math.log10(max(v, 1e-12)), INF))
                bad += sum(1 for f in r["feasible"][:b] if not f)
            if vals:
                q1, med, q3 = (float(np.percentile(vals, q)) for q in (25, 50, 75))
                out[(b, p, o)] = dict(median=med, q25=q1, q75=q3, infeasible=bad, seeds=len(vals))
    return out


def _fmt(v: float) -> str:
    return "inf" if v >= INF else f"{v:.2f}"


def cmd_report(args) -> None:
    harness.cmd_report(args)  # the harness's table -> args.out (+ tables.json)
    runs = harness.load_runs(Path(args.results))
    med = _medians(runs, args.budgets)
    probs = [p for p in second_problems.SUITE if any(r["problem"] == p for r in runs)]
    names = {r["optimizer"] for r in runs}
    others = [o for o in ("tpe", "gp", "random_feasible", "random") if o in names]
    lines = [
        "\n## optserve against the anchors (second set)\n",
        "Median log10 simple regret [q25, q75] (lower is better) / infeasible suggestions "
        "over the seeds / seeds. `inf`: no feasible observation yet (the harness's table "
        "above prints such medians as nan). `(worse)`: optserve's median is above that "
        "anchor's.\n",
    ]
    below: dict[tuple[int, str], list[str]] = {}
    for b in args.budgets:
        lines += [
            f"\n### Budget {b}\n",
            "| problem | optserve | " + " | ".join(others) + " |",
            "|---|---|" + "---|" * len(others),
        ]
        for p in probs:
            o = med.get((b, p, "optserve"))
            if not o:
                continue
            mine = o["median"]
            cells = [
                f"**{_fmt(mine)}** [{_fmt(o['q25'])}, {_fmt(o['q75'])}] / {o['infeasible']} "
                f"/ {o['seeds']}"
            ]
            for a in others:
                r = med.get((b, p, a))
                if not r:
                    cells.append("–")
                    continue
                theirs = r["median"]
                if mine < theirs:
                    below.setdefault((b, a), []).append(p)
                cells.append(
                    f"{_fmt(theirs)} [{_fmt(r['q25'])}, {_fmt(r['q75'])}] / {r['infeasible']}"
                    + ("" if mine <= theirs else " (worse)")
                )
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("\n### Tally\n")
    n = len(probs)
    for a in others:
        for b in args.budgets:
            got = below.get((b, a), [])
            missed = [p for p in probs if p not in got]
            lines.append(
                f"- optserve below {a}, budget {b}: {len(got)}/{n}"
                + (f" (not on: {', '.join(missed)})" if missed else "")
            )
    text = "\n".join(lines) + "\n"
    with open(args.out, "a") as fh:
        fh.write(text)
    Path(args.out).with_name("summary.json").write_text(
        json.dumps(
            [dict(budget=k[0], problem=k[1], optimizer=k[2], **v) for k, v in med.items()], indent=1
        )
    )
    print(text)


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("--results", default=str(HERE / "results"))
        ap.add_argument("--budgets", nargs="+", type=int, default=[30, 80])
        ap.add_argument("--out", default=None)
        args = ap.parse_args(argv)
        args.out = args.out or str(Path(args.results) / "tables.md")
        cmd_report(args)
    else:
        harness.main(argv)


if __name__ == "__main__":
    main()
