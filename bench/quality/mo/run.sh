#!/usr/bin/env bash
# Extra quality problems (two objectives, linear-constrained two objectives, a
# constraint metric) on the shared harness, through run.py.
#
#   bench/quality/mo/run.sh smoke    # 1 seed, budget 30, every problem x optimizer -> results/raw/smoke
#   bench/quality/mo/run.sh full     # 10 seeds, budgets 30 80, --workers 1
#   bench/quality/mo/run.sh report   # results/tables.md (+ tables.json, summary.json)
#
# The server is served from a snapshot of commit REV (default HEAD, or the one in
# results/SERVICE_COMMIT when resuming), as bench/quality/run.sh does, so that
# edits during a run do not mix optimizer versions. Runs are cached per file: to
# measure another commit, delete its runs and give REV (e.g. REV=HEAD).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
PY=${PY:-$ROOT/.venv-quality/bin/python}
OUT=${OUT:-bench/quality/mo/results}
SEEDS=${SEEDS:-10}
DEADLINE=${DEADLINE:-600}
OPTIMIZERS=${OPTIMIZERS:-optserve tpe nsga2 random_feasible}
PROBLEMS=${PROBLEMS:-branincurrin branincurrin_lc zdt1_2obj branin_cm}
if [ -z "${REV:-}" ] && [ -f "$OUT/SERVICE_COMMIT" ]; then REV=$(cat "$OUT/SERVICE_COMMIT"); fi
REV=${REV:-HEAD}

. "$ROOT/bench/quality/snapshot.sh"

run() {
    snapshot
    # shellcheck disable=SC2086
    "$PY" bench/quality/mo/run.py run --workers 1 --out "$OUT" --deadline-minutes "$DEADLINE" \
        --optimizers $OPTIMIZERS --problems $PROBLEMS "$@"
}

case "${1:-}" in
    smoke)
        OUT=$OUT/raw/smoke run --seeds 1 --budgets 30 ;;
    full)
        run --seeds "$SEEDS" --budgets 30 80 ;;
    report)
        "$PY" bench/quality/mo/run.py report --results "$OUT" --out "$OUT/tables.md" ;;
    *)
        sed -n '2,12p' "$0"; exit 2 ;;
esac
