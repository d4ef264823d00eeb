#!/usr/bin/env bash
# test_calib_cache.sh BUILD_DIR: the sensitivity table does not depend on how calibration gets
# each format's weight error (src/method/sensitivity.c): fake-quantized chunk by chunk from W
# (--cache-mb 0), dequantized from quantized copies kept in the cache (the default, every copy
# fits), or some of each (--cache-mb 1: a few k-quant copies fit, the rest is quantized per
# batch); nor on the OpenMP thread count (1 or 2); nor, with --batch 3, on the weight gradients
# of the 3 samples of a batch being dotted together. Compared: every byte of sens.json outside
# "provenance" (which holds the time and the thread count).
# A random Llama made by tools/make_llama.py (hidden 256, 3 layers, ffn 704: the down
# projections take no k-quant, so the ops have different candidate lists; the bundled models'
# widths all take every format), 4 samples x 32 tokens, formats with every kind of weight error:
# element (bf16), 32-blocks (q8_0, q4_1), super-blocks (q4_K, q6_K), a per-row scale (f8_e4m3),
# and the fisher metric (its own fake-quantized weights).
set -euo pipefail
build=$1
work=$build/calib_cache
mkdir -p "$work"
export OMP_WAIT_POLICY=PASSIVE
/usr/bin/python3 tools/make_llama.py "$work/model" --hidden 256 --layers 3 --heads 8 --kv-heads 2 --ffn 704 \
    --dtype f32 > /dev/null
args=(calibrate "$work/model" --data models/default/heldout.txt --samples 4 --seq 32
      --formats f32,bf16,q8_0,q4_1,q4_K,q6_K,f8_e4m3 --fisher)
run() {  # NAME THREADS ARGS...: calibrate into $work/NAME.json
  local name=$1 threads=$2
  shift 2
  OMP_NUM_THREADS=$threads "$build/mixprec" "${args[@]}" "$@" -o "$work/$name.json" > "$work/$name.log" 2>&1 ||
    { cat "$work/$name.log"; echo "FAIL: $name: calibrate failed"; exit 1; }
}
same() {  # A B: the same table outside provenance
  /usr/bin/python3 - "$work/$1.json" "$work/$2.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for t in (a, b):
    t.pop("provenance")
if a != b:
    sys.exit("FAIL: %s and %s differ outside provenance" % tuple(sys.argv[1:3]))
print("same table: %s and %s" % tuple(sys.argv[1:3]))
EOF
}
run nocache 2 --cache-mb 0
run cache 2
run partial 2 --cache-mb 1
run nocache1 1 --cache-mb 0
run partial1 1 --cache-mb 1
same nocache cache
same nocache partial
same nocache nocache1
same nocache partial1
run b3nocache 2 --batch 3 --cache-mb 0
run b3cache 1 --batch 3
same b3nocache b3cache
echo "test_calib_cache: OK"
