#!/bin/bash
# fuzz/campaign.sh SECONDS BUILD_DIR OUT_DIR [TARGET...]: a long fuzzing campaign. Runs each
# target (default: every fuzz/fuzz_NAME.c) for SECONDS on one core, one after another, keeping
# its growing corpus in OUT_DIR/corpus/NAME (a later campaign continues from it) and crash
# inputs in OUT_DIR/artifacts/. Prints one summary line per target: executions, corpus size
# before and after, new coverage features, crashes. BUILD_DIR as for fuzz/run.sh. The time-out
# per input is $FUZZ_TIMEOUT seconds (default 60: a campaign usually runs at low priority
# beside other work, where 10 s of wall time can pass without the input getting the CPU).
set -u
if [ $# -lt 3 ]; then
    echo "usage: $0 SECONDS BUILD_DIR OUT_DIR [TARGET...]" >&2
    exit 2
fi
secs=$1
build=$(cd "$2" && pwd) || exit 2
out=$3
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in "$root"/fuzz/fuzz_*.c; do t=$(basename "$src" .c); targets+=("${t#fuzz_}"); done
fi
status=0
for t in "${targets[@]}"; do
    bin="$build/fuzz_$t"
    [ -x "$bin" ] || { echo "fuzz_$t: missing $bin"; status=1; continue; }
    mkdir -p "$out/corpus/$t"
    before=$(ls "$out/corpus/$t" | wc -l)
    t0=$(date +%s)
    dict=()
    [ -f "$root/fuzz/$t.dict" ] && dict=(-dict="$root/fuzz/$t.dict")
    "$bin" -max_total_time="$secs" -max_len=65536 -timeout="${FUZZ_TIMEOUT:-60}" -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" \
        $([ -d "$root/fuzz/corpus/$t" ] && echo "$root/fuzz/corpus/$t") > "$out/logs/$t.log" 2>&1
    rc=$?
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$out/logs/$t.log" | tail -n 1)
    ft=$(grep -oE 'ft: [0-9]+' "$out/logs/$t.log" | tail -n 1 | cut -d' ' -f2)
    crashes=$(ls "$out/artifacts" | grep -cE "^$t-(crash|leak|timeout|oom)-")
    slow=$(ls "$out/artifacts" | grep -c "^$t-slow-unit-")
    echo "fuzz_$t: $(( $(date +%s) - t0 ))s, exit $rc, ${execs:-?} executions, corpus $before -> $(ls "$out/corpus/$t" | wc -l) inputs, ${ft:-?} features, $crashes crash/leak/timeout/oom inputs, $slow slow inputs (kept, not failures)"
    [ $rc -eq 0 ] || status=1
done
exit $status
