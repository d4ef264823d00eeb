#!/usr/bin/env bash
# run_all.sh BUILD_DIR OUT_DIR: every benchmark of BENCHMARKS.md, in sequence, each writing its
# full output to OUT_DIR/<name>.txt (with the load average before and after). Takes about an
# hour on a 2-core machine; the machine should be otherwise idle.
set -uo pipefail
build=${1:?usage: run_all.sh BUILD_DIR OUT_DIR}
out=${2:?usage: run_all.sh BUILD_DIR OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE
run() {  # run NAME COMMAND...
  local name=$1; shift
  { echo "\$ $*"; echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)";
    "$@"; echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"; } > "$out/$name.txt" 2>&1
  echo "$name: done ($(tail -n 1 "$out/$name.txt"))"
}
run kernels "$build/bench_kernels"
run train_b1 "$build/bench_train" --batch 1 --iters 5
run e2e "$build/bench_e2e" --model both --repeats 3 --decode 32
run calibrate "$build/bench_calibrate" models/default --samples 16 --seq 256
run check_default "$build/mixprec" calibrate models/default --data models/default/heldout.txt -o "$out/sens_default.json" \
    --samples 32 --seq 256 --check 30 --check-samples 16 --check-csv "$out/check_default.csv"
