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

snapshot() {
    if [ "$REV" = worktree ]; then
        unset OPTSERVE_SERVICE_PATH
        echo "serving the working tree ($(git rev-parse --short HEAD), dirty: $(git status --porcelain service | wc -l) files)"
        return
    fi
    local sha snap
    sha=$(git rev-parse --short "$REV")
    snap=$ROOT/bench/quality/results/raw/service-$sha
    if [ ! -d "$snap/optserve" ]; then
        mkdir -p "$snap.tmp"
        git archive "$REV" service/optserve | tar -x -C "$snap.tmp" --strip-components=1
        cp service/optserve/_sampler*.so "$snap.tmp/optserve/"
        mv "$snap.tmp" "$snap"
    fi
    export OPTSERVE_SERVICE_PATH=$snap
    echo "serving commit $sha from $snap"
    mkdir -p "$OUT"
    echo "$sha" > "$OUT/SERVICE_COMMIT"
}

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
        "$PY" "$HARNESS" report --results "$OUT" --out "$OUT/tables.md" ;;
    *)
        sed -n '2,13p' "$0"; exit 2 ;;
esac
