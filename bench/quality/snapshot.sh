# Sourced by the quality benchmarks' run.sh: which optserve they serve.
# Needs ROOT, REV and OUT; exports OPTSERVE_SERVICE_PATH (and OPTSERVE_BIN in a worktree).

# a worktree without its own .venv uses the main checkout's server executable
if [ -z "${OPTSERVE_BIN:-}" ] && [ ! -x .venv/bin/optserve ]; then
    OPTSERVE_BIN=$(git worktree list --porcelain | sed -n '1s/^worktree //p')/.venv/bin/optserve
    export OPTSERVE_BIN
fi

# A snapshot of commit REV (git archive + the built extension), so that edits made
# while a benchmark runs do not mix versions; REV=worktree serves the working tree.
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
