#!/usr/bin/env bash
# Parallel mode of the quality benchmark (bench/quality/parallel/run.py):
# q suggestions open at once, answered in a seeded random order; optserve
# against Optuna TPE with constant_liar=True.
#
#   bench/quality/parallel/run.sh smoke     # 1 seed, budget 30, q=4, branin + seed4_constrained
#   bench/quality/parallel/run.sh baseline  # 5 seeds, budget 80, q=1 8, single-objective problems
#   bench/quality/parallel/run.sh full      # 10 seeds, budgets 30 80, q=1 4 8
#   bench/quality/parallel/run.sh batch     # as full, but create_suggestions(count=q) per batch
#   bench/quality/parallel/run.sh report    # results/tables.md (+ tables_batch.md if batch ran)
#
# The server is served from a snapshot of commit REV (default HEAD, or the one in
# $OUT/SERVICE_COMMIT when resuming), as bench/quality/run.sh does. Runs are
# cached per file: rerunning resumes, and `full` reuses the baseline's runs.
# SEEDS, DEADLINE (minutes), OPTIMIZERS, PROBLEMS override the defaults.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
PY=${PY:-$ROOT/.venv-quality/bin/python}
OUT=${OUT:-bench/quality/parallel/results}
DEADLINE=${DEADLINE:-600}
OPTIMIZERS=${OPTIMIZERS:-optserve tpe_cl}
PROBLEMS=${PROBLEMS:-all}
if [ -z "${REV:-}" ] && [ -f "$OUT/SERVICE_COMMIT" ]; then REV=$(cat "$OUT/SERVICE_COMMIT"); fi
REV=${REV:-HEAD}
export QUALITY_ADAPTERS=bench/quality/adapter.py:OptserveAdapter
. "$ROOT/bench/quality/snapshot.sh"

run() {
    snapshot
    # shellcheck disable=SC2086
    "$PY" bench/quality/parallel/run.py run --workers 1 --out "$OUT" \
        --deadline-minutes "$DEADLINE" --optimizers $OPTIMIZERS --problems $PROBLEMS "$@"
}

case "${1:-}" in
    smoke)
        OUT=bench/quality/results/raw/parallel-smoke PROBLEMS="branin seed4_constrained" \
            run --seeds 1 --budgets 30 --q 4 ;;
    baseline)
        run --seeds "${SEEDS:-5}" --budgets 80 --q 1 8 ;;
    full)
        run --seeds "${SEEDS:-10}" --budgets 30 80 --q 1 4 8 ;;
    batch)
        run --seeds "${SEEDS:-10}" --budgets 30 80 --q 4 8 --mode batch ;;
    report)
        "$PY" bench/quality/parallel/run.py report --results "$OUT"
        if ls "$OUT"/runs/*__batch.json > /dev/null 2>&1; then
            "$PY" bench/quality/parallel/run.py report --results "$OUT" --mode batch
        fi ;;
    *)
        sed -n '2,15p' "$0"; exit 2 ;;
esac
