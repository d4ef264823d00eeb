#!/bin/bash
# fuzz/run.sh SECONDS BUILD_DIR: run every fuzz target (fuzz/fuzz_NAME.c) for SECONDS each.
#
# Builds nothing: BUILD_DIR must come from
#   CC=clang cmake -S . -B BUILD_DIR -G Ninja -DMXP_FUZZ=ON && ninja -C BUILD_DIR
# Seeds are the committed tiny inputs in fuzz/corpus/NAME/ when that folder exists (the loader
# seeds are regenerated with `BUILD_DIR/test_loaders --write-seeds fuzz/corpus`; those of the
# targets that build their valid inputs in code -- sens, latency, st_index, gguf_model -- with
# `MXP_FUZZ_WRITE_SEEDS=fuzz/corpus/NAME BUILD_DIR/fuzz_NAME -runs=0`), and
# fuzz/NAME.dict is used as a dictionary when present; new inputs go to a temporary corpus
# in $TMPDIR (default /tmp), so the committed one does not grow. Crash inputs are kept in BUILD_DIR/fuzz-artifacts/.
# OpenMP runs 2 threads (OMP_NUM_THREADS overrides) that sleep when idle: spinning threads
# slow targets that run the model (fuzz_forward) tenfold on a busy machine.
# Exits non-zero if any target crashes or is missing.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 SECONDS BUILD_DIR" >&2
    exit 2
fi
secs=$1
build=$(cd "$2" && pwd) || exit 2
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=${TMPDIR:-/tmp}
if ! work=$(mktemp -d "$tmp/mxp_fuzz.XXXXXX"); then
    echo "fuzz/run.sh: cannot create a temporary folder in $tmp (set TMPDIR to a writable folder)" >&2
    exit 2
fi
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/fuzz-artifacts"
status=0
targets=()
for src in "$root"/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    targets+=("${t#fuzz_}")
done
for t in "${targets[@]}"; do
    bin="$build/fuzz_$t"
    if [ ! -x "$bin" ]; then
        echo "fuzz/run.sh: missing $bin (configure with CC=clang -DMXP_FUZZ=ON)" >&2
        status=1
        continue
    fi
    mkdir -p "$work/$t"
    dict=()
    [ -f "$root/fuzz/$t.dict" ] && dict=(-dict="$root/fuzz/$t.dict")
    echo "== fuzz_$t for ${secs}s" >&2
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${dict[@]}" -artifact_prefix="$build/fuzz-artifacts/$t-" \
        "$work/$t" $([ -d "$root/fuzz/corpus/$t" ] && echo "$root/fuzz/corpus/$t") > "$work/$t.log" 2>&1
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_executed_units|^stat::peak_rss_mb|ERROR|SUMMARY' "$work/$t.log" >&2
    echo "fuzz_$t: exit $rc, corpus $(ls "$work/$t" | wc -l) inputs" >&2
    if [ $rc -ne 0 ]; then
        tail -n 60 "$work/$t.log" >&2
        status=1
    fi
done
if [ $status -eq 0 ]; then echo "fuzz: OK (${secs}s per target)"; else echo "fuzz: FAILED"; fi
exit $status
