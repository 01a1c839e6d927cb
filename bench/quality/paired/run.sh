#!/usr/bin/env bash
# Budget 30 on more seeds: optserve, Optuna's GPSampler and Ax on the same seeds of
# the shared suite's single-objective problems, their medians compared.
#
#   bench/quality/paired/run.sh optserve   # optserve through a real server, SEEDS seeds
#   bench/quality/paired/run.sh gp         # GPSampler, SEEDS seeds (needs torch)
#   bench/quality/paired/run.sh ax         # Ax, AX_SEEDS seeds of AX_PROBLEMS (1-6 s a suggestion)
#   bench/quality/paired/run.sh report     # results/paired.md
#
# ANCHORS.md has 10 seeds of GPSampler and 3 of Ax; at budget 30 the spread between
# seeds is as wide as the margins between optimizers. Seeds 0-9 of optserve and
# GPSampler reproduce ANCHORS.md's runs (Ax's do not, see README.md).
# The server is a snapshot of commit REV, as in bench/quality/run.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
HARNESS=${HARNESS:-$ROOT/../shared/bench/quality/harness.py}
PY=${PY:-$ROOT/.venv-quality/bin/python}
OUT=${OUT:-bench/quality/paired/results}
SEEDS=${SEEDS:-40}
AX_SEEDS=${AX_SEEDS:-40}
PROBLEMS=${PROBLEMS:-branin hartmann6 rosenbrock4 ackley5 levy4 mixed seed4_constrained hartmann6_constrained layers_conditional hartmann6_noisy}
AX_PROBLEMS=${AX_PROBLEMS:-hartmann6 ackley5 hartmann6_noisy}
DEADLINE=${DEADLINE:-600}
if [ -z "${REV:-}" ] && [ -f "$OUT/SERVICE_COMMIT" ]; then REV=$(cat "$OUT/SERVICE_COMMIT"); fi
REV=${REV:-HEAD}
export QUALITY_ADAPTERS=bench/quality/adapter.py:OptserveAdapter
. "$ROOT/bench/quality/snapshot.sh"

harness() {
    "$PY" "$HARNESS" run --workers 1 --out "$OUT" --deadline-minutes "$DEADLINE" --budgets 30 "$@"
}

case "${1:-}" in
    optserve)
        snapshot
        # shellcheck disable=SC2086
        harness --optimizers optserve --problems $PROBLEMS --seeds "$SEEDS" ;;
    gp)
        # shellcheck disable=SC2086
        harness --optimizers gp --problems $PROBLEMS --seeds "$SEEDS" ;;
    ax)
        # the harness caches a run cut at --max-run-seconds as done: Ax on a
        # constrained problem under load passes its default of 600 s
        # shellcheck disable=SC2086
        harness --optimizers ax --problems $AX_PROBLEMS --seeds "$AX_SEEDS" --max-run-seconds 3600 ;;
    report)
        "$PY" bench/quality/paired/report.py "$OUT" > "$OUT/paired.md"
        cat "$OUT/paired.md" ;;
    *)
        sed -n '2,13p' "$0"; exit 2 ;;
esac
