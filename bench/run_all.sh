#!/usr/bin/env bash
# run_all.sh BUILD_DIR OUT_DIR: the benchmarks of BENCHMARKS.md, in sequence, each writing its
# full output to OUT_DIR/<name>.txt (with the load average before and after). About 30 minutes
# on a 2-core machine: an estimate from the per-benchmark times in BENCHMARKS.md, not a timing
# of the whole script. The machine should be otherwise idle.
# Not run here: training the bundled models (tools/make_fixtures.sh, about 45 minutes) and the
# fresh-clone run of ./setup.sh.
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
run train_b1 "$build/bench_train" --batch 1 --iters 5 --stream
run e2e "$build/bench_e2e" --model both --repeats 3 --decode 32
run calibrate "$build/bench_calibrate" models/default --samples 16 --seq 256
run check_default "$build/mixprec" calibrate models/default --data models/default/heldout.txt -o "$out/sens_default.json" \
    --samples 32 --seq 256 --check 30 --check-samples 16 --check-csv "$out/check_default.csv"
ties=(--tie q_proj,k_proj,v_proj --tie gate_proj,up_proj)
run check_tiny "$build/mixprec" calibrate models/tiny --data models/tiny/heldout.txt -o "$out/sens_tiny.json" \
    --samples 16 --seq 128 --check 30 --check-samples 8
run profile_prefill "$build/mixprec" profile models/default --workload prefill:256 "${ties[@]}" \
    --data models/default/heldout.txt --budget 120 --check 8 --check-budget 90 --no-cache -o "$out/lat_prefill.json"
run profile_decode "$build/mixprec" profile models/default --workload decode:255 "${ties[@]}" \
    --data models/default/heldout.txt --budget 120 --check 8 --check-budget 90 --no-cache -o "$out/lat_decode.json"
run profile_085b_decode "$build/bench_profile_check" --workload decode:512 --check 6 --budget 200 --check-budget 120 \
    --no-cache -o "$out/lat_085b_decode.json"
run profile_085b_prefill "$build/bench_profile_check" --workload prefill:256 --check 4 --budget 200 --check-budget 150 \
    --no-cache -o "$out/lat_085b_prefill.json"
run optimize "$build/mixprec" optimize models/default --data models/default/heldout.txt --workload decode:128 \
    --max-ppl-increase 1% --no-cache -o "$out/optimize"
run heldout /usr/bin/python3 tools/check_heldout.py --mixprec "$build/mixprec" models/default models/tiny
