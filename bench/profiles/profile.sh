#!/bin/bash
# Profiles the server under one phase of bench/throughput.py with py-spy (wall-clock
# samples of every thread; with --subprocesses, the suggestion workers too) and
# summarizes the top frames: bench/profiles/profile.sh PHASE NAME [SECONDS] [py-spy options]
# py-spy lives in a side venv: python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy
set -e
PHASE=$1; NAME=$2; SECONDS_=${3:-16}; shift 3 || true
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYSPY=${PYSPY:-/tmp/pyspy/bin/py-spy}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-/tmp}
cd "$ROOT"
"$PYTHON" bench/throughput.py --seconds "$SECONDS_" --no-storage-costs --phases "$PHASE" \
    > "$OUT/$NAME.bench" 2> "$OUT/$NAME.err" &
BENCH=$!
PID=
for _ in $(seq 300); do  # the bench names the server when the phase starts
    PID=$(grep -o "servers [0-9]*" "$OUT/$NAME.err" | cut -d' ' -f2 || true)
    [ -n "$PID" ] && break
    sleep 0.2
done
sleep 1
"$PYSPY" record -p "$PID" -d $((SECONDS_ - 2)) -r 100 -f raw "$@" -o "$OUT/$NAME.raw" > /dev/null
wait $BENCH
grep sqlite "$OUT/$NAME.bench"
python3 bench/profiles/summarize.py "$OUT/$NAME.raw" 25 > "bench/profiles/$NAME.txt"
