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
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "bench" / "quality"
sys.path[:0] = [str(SHARED), str(HERE)]
import harness  # noqa: E402  (../shared/bench/quality/harness.py)
import second_problems  # noqa: E402

harness.problems_mod.SUITE.clear()
harness.problems_mod.SUITE.update(second_problems.SUITE)


def cmd_report(args) -> None:
    harness.cmd_report(args)  # -> args.out and tables.json
    rows = json.loads(Path(args.out).with_suffix(".json").read_text())
    med = {(r["budget"], r["problem"], r["optimizer"]): r for r in rows}
    probs = [p for p in second_problems.SUITE if any(r["problem"] == p for r in rows)]
    others = [
        o for o in harness.OPTIMIZERS if o != "optserve" and any(r["optimizer"] == o for r in rows)
    ]
    lines = [
        "\n## optserve against the anchors (second set)\n",
        "Median log10 simple regret (lower is better); optserve cell: median / infeasible "
        "suggestions / seeds; `(worse)`: optserve's median is above that anchor's.\n",
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
            mine = o["median_log10_regret"]
            cells = [f"**{mine:.2f}** / {o['infeasible']} / {o['seeds']}"]
            for a in others:
                r = med.get((b, p, a))
                if not r:
                    cells.append("–")
                    continue
                theirs = r["median_log10_regret"]
                if mine < theirs:
                    below.setdefault((b, a), []).append(p)
                cells.append(
                    f"{theirs:.2f} / {r['infeasible']}" + ("" if mine <= theirs else " (worse)")
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
