#!/usr/bin/env bash
# Quality benchmark: optserve against the anchors of ../shared/bench/quality.
#
#   bench/quality/run.sh smoke            # 1 seed, budget 30, branin + seed4_constrained
#   bench/quality/run.sh full             # optserve, random_feasible, tpe: 10 seeds, budgets 30 80
#   bench/quality/run.sh gp               # Optuna GPSampler, same seeds (needs torch)
#   bench/quality/run.sh report           # bench/quality/results/tables.md
#
# Run from anywhere; paths are relative to the repository root. The server is
# served from a snapshot of the commit REV (default HEAD: `git archive`, plus the
# built _sampler extension of the working tree) so that commits and edits made
# during a long run do not mix optimizer versions; the commit is written to
# $OUT/SERVICE_COMMIT and reused when the run is resumed. REV=worktree serves
# the working tree as it is. Results are cached per run file: rerunning resumes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
HARNESS=${HARNESS:-$ROOT/../shared/bench/quality/harness.py}
PY=${PY:-$ROOT/.venv-quality/bin/python}
OUT=${OUT:-bench/quality/results}
SEEDS=${SEEDS:-10}
DEADLINE=${DEADLINE:-600}   # minutes; the harness skips runs not started by then
# a run resumes on the commit it started with
if [ -z "${REV:-}" ] && [ -f "$OUT/SERVICE_COMMIT" ]; then REV=$(cat "$OUT/SERVICE_COMMIT"); fi
REV=${REV:-HEAD}

export QUALITY_ADAPTERS=bench/quality/adapter.py:OptserveAdapter

. "$ROOT/bench/quality/snapshot.sh"

run() {
    mkdir -p "$OUT/raw"
    snapshot
    "$PY" "$HARNESS" run --workers 1 --out "$OUT" --deadline-minutes "$DEADLINE" "$@"
}

case "${1:-}" in
    smoke)
        OUT=$OUT/raw/smoke run --optimizers optserve --problems branin seed4_constrained \
            --seeds 1 --budgets 30 ;;
    full)
        run --optimizers optserve random_feasible tpe --problems all \
            --seeds "$SEEDS" --budgets 30 80 ;;
    gp)   # Optuna's GPSampler needs torch in the benchmark venv
        run --optimizers gp --problems all --seeds "$SEEDS" --budgets 30 80 ;;
    report)
        "$PY" "$HARNESS" report --results "$OUT" --out "$OUT/tables.md"
        "$PY" - "$OUT/tables.json" "$(dirname "$HARNESS")/ANCHORS.md" \
            > "$OUT/comparison.md" <<'PYEOF'
"""optserve against the anchors, with issue 6's targets. Measured columns come
from tables.json; gp / ax / random come from ANCHORS.md when not measured here."""
import json, re, sys
rows = json.load(open(sys.argv[1]))
med = {(r["budget"], r["problem"], r["optimizer"]): r for r in rows}
anchors, budget, header = {}, None, None
for line in open(sys.argv[2]):
    m = re.match(r"### Budget (\d+)", line)
    if m:
        budget, header = int(m.group(1)), None
    elif line.startswith("### "):
        budget = None
    elif budget and line.startswith("| problem"):
        header = [c.strip() for c in line.strip().strip("|").split("|")]
    elif budget and header and line.startswith("| ") and not line.startswith("|---"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for name, cell in zip(header[1:], cells[1:]):
            m = re.match(r"(-?[\d.]+) \[.*\] / (\d+) / (\d+)", cell)
            if m:
                anchors[(budget, cells[0], name)] = dict(
                    median_log10_regret=float(m.group(1)), infeasible=int(m.group(2)),
                    seeds=int(m.group(3)), source="ANCHORS.md")


def get(b, p, o):
    r = med.get((b, p, o))
    return dict(r, source="measured") if r else anchors.get((b, p, o))


order = [r["problem"] for r in rows]
probs = sorted({r["problem"] for r in rows if r["optimizer"] == "optserve"}, key=order.index)
single = [p for p in probs if p != "zdt1_2obj"]
others = ["random_feasible", "random", "tpe", "gp", "ax"]
out = ["# optserve against the anchors\n",
       "Median log10 simple regret over the seeds (lower is better). optserve cell: "
       "median / infeasible suggestions / seeds. `*` = taken from ANCHORS.md (same harness, "
       "same seeds 0-9, not rerun here; Ax: 3 seeds, budget 30 only). `(worse)` = optserve's "
       "median is above that anchor's.\n"]
le, lt = {}, {}
for b in (30, 80):
    out += [f"\n## Budget {b}\n", "| problem | optserve | " + " | ".join(others) + " |",
            "|---|---|" + "---|" * len(others)]
    for p in probs:
        o = get(b, p, "optserve")
        if not o:
            continue
        mine = o["median_log10_regret"]
        cells = [f"**{mine:.2f}** / {o['infeasible']} / {o['seeds']}"]
        for a in others:
            r = get(b, p, a)
            if not r:
                cells.append("–")
                continue
            theirs = r["median_log10_regret"]
            le[(b, p, a)], lt[(b, p, a)] = mine <= theirs, mine < theirs
            star = "*" if r["source"] != "measured" else ""
            cells.append(f"{theirs:.2f}{star}" + ("" if mine <= theirs else " (worse)"))
        out.append(f"| {p} | " + " | ".join(cells) + " |")


def tally(b, a, ps, table):
    have = [p for p in ps if (b, p, a) in table]
    bad = [p for p in have if not table[(b, p, a)]]
    return f"{len(have) - len(bad)}/{len(have)}" + (f" (not on: {', '.join(bad)})" if bad else "")


infeasible = sum(get(b, p, "optserve")["infeasible"] for b in (30, 80) for p in probs
                 if get(b, p, "optserve"))
out += ["\n## Issue 6 targets\n",
        f"- zero infeasible suggestions: {infeasible} infeasible over all optserve runs"]
for a in ("tpe", "random_feasible", "random"):
    for b in (30, 80):
        out.append(f"- lower median than {a}, budget {b}: {tally(b, a, probs, lt)}")
out.append(f"- at or below GPSampler, budget 80 (target 8 of 10 single-objective): "
           f"{tally(80, 'gp', single, le)}")
both = [p for p in single if le.get((30, p, "gp")) and le.get((30, p, "ax"))]
out.append(f"- at or below both GPSampler and Ax, budget 30 (target 7 of 10): "
           f"{len(both)}/{len(single)} (not on: {', '.join(p for p in single if p not in both)})")
lc = get(80, "layers_conditional", "optserve")
if lc:
    v = lc["median_log10_regret"]
    out.append(f"- layers_conditional, budget 80, median regret below 0.1: {10 ** v:.3g} "
               f"-> {'met' if v < -1 else 'not met'}")
print("\n".join(out))
PYEOF
        ;;
    *)
        sed -n '2,13p' "$0"; exit 2 ;;
esac
