#!/usr/bin/env bash
# The second problem set (bench/quality/second/second_problems.py, held out from
# tuning) on the shared harness, through run.py: optserve against Optuna TPE,
# Optuna random and uniform random over the feasible set.
#
#   bench/quality/second/run.sh smoke    # 1 seed, budget 30, every problem, optserve + tpe
#   bench/quality/second/run.sh full     # SEEDS (default 10) seeds, budgets 30 80
#   bench/quality/second/run.sh report   # results/tables.md (+ tables.json)
#
# The server is served from a snapshot of commit REV (default HEAD, or the one in
# $OUT/SERVICE_COMMIT when resuming), as bench/quality/run.sh does. Runs are
# cached per file: rerunning resumes (and SEEDS=10 after SEEDS=5 adds seeds 5-9).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
PY=${PY:-$ROOT/.venv-quality/bin/python}
OUT=${OUT:-bench/quality/second/results}
DEADLINE=${DEADLINE:-600}
OPTIMIZERS=${OPTIMIZERS:-optserve tpe random_feasible random}
if [ -z "${REV:-}" ] && [ -f "$OUT/SERVICE_COMMIT" ]; then REV=$(cat "$OUT/SERVICE_COMMIT"); fi
REV=${REV:-HEAD}
export QUALITY_ADAPTERS=bench/quality/adapter.py:OptserveAdapter
. "$ROOT/bench/quality/snapshot.sh"

run() {
    snapshot
    "$PY" bench/quality/second/run.py run --workers 1 --out "$OUT" \
        --deadline-minutes "$DEADLINE" --problems all "$@"
}

case "${1:-}" in
    smoke)
        # shellcheck disable=SC2086
        OUT=bench/quality/results/raw/second-smoke run --optimizers optserve tpe \
            --seeds 1 --budgets 30 ;;
    full)
        # shellcheck disable=SC2086
        run --optimizers $OPTIMIZERS --seeds "${SEEDS:-10}" --budgets 30 80 ;;
    report)
        "$PY" bench/quality/second/run.py report --results "$OUT" ;;
    *)
        sed -n '2,12p' "$0"; exit 2 ;;
esac
