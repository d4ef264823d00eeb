#!/usr/bin/env bash
# test_sens_torch.sh BUILD_DIR: `mixprec calibrate` on models/tiny (head tied to the token
# embedding: one op "lm_head") and models/default (untied: the op "model.embed_tokens" too) against an independent PyTorch
# reference (tools/torch_sens.py: its own Llama forward in float64, autograd gradients, quantizers
# re-implemented from src/quant/format.h). Compares s, s_weight and s_act of every op and format.
#
# Data: 2*N windows of T+1 random token ids (seeded). mixprec calibrates on the first half of the
# stream (src/io/data.h), which then holds exactly N windows, and `--samples N` with N equal to
# the windows available takes every one of them in stream order (no random draw); torch_sens.py
# takes the first N windows of the stream: the same samples.
#
# Tolerance per op and format, b = reference, a = mixprec:
#   |a - b| <= RTOL * |b| + ROUND * spread + FLOOR * max over ops of b (same key, same format)
# RTOL = 1e-4: f32 vs f64 arithmetic (weight terms agree to ~3e-6).
# spread: torch_sens.py's rounding sensitivity (s_spread / s_act_spread; 0 for the weight-only
# formats): how far s moves when f32-sized noise flips q8 activation roundings; ROUND = 3
# (over 8 random token sets mixprec stayed within 1.0 spread; it is a max over 16 trials).
# Measured on models/tiny (N=6, T=64): mixprec vs torch up to ~4% on s_act (q8 rounding flips),
# within 1 spread (1/3 of the tolerance); weight terms within 6e-6 relative. Reference bugs planted on
# purpose (da's sign, the total q/k/v input gradient, q8 blocks along T, a sum loss) fail by
# 50-10000x the tolerance.
# FLOOR = 1e-6: values a million times below the column's largest are not compared relatively.
#
# The ggml formats (SENS_GGML, llama-quantize's type names; models/tiny: q4_1, q5_0, q5_1,
# iq4_nl; models/default: those and the k-quants q2_K ... q6_K: every row of both models is a
# multiple of 256, the k-quants are left to the larger one for time) are not quantized by
# the reference itself: their weights come from llama.cpp's own quantizer, `llama-quantize
# --pure` of the f32 GGUF `mixprec apply` writes, read back and dequantized by llama.cpp's
# gguf-py (the f32 GGUF's weights must equal the model's: name map and q/k row order). The
# reference rounds their activations itself (q8_0 values for q4_1/q5_1/q5_0/iq4_nl, q8_K in
# blocks of 256 for the k-quants) and the same tolerance applies. Measured on models/default
# (N=3, T=32): weight terms within 1.5e-5 relative (0.09 of the tolerance); s and s_act within
# 0.33 of the tolerance (s_act up to 17% relative on small values, all inside 1 spread).
# Planted bugs: q8_0 blocks of 32 in place of q8_K for the k-quants' activations (68 values
# fail, by up to 50x the tolerance), or the q/k rows left permuted (the f32 check), fail.
# Cost: the whole test 37 s instead of 20 s without the ggml formats (busy 2-core machine).
# A missing llama-quantize or gguf-py (scripts/deps.sh installs both) is a failure, never a skip.
set -euo pipefail
build=$1
if [ -z "${SENS_MODEL:-}" ]; then  # both models, the second smaller
  SENS_MODEL=models/tiny SENS_GGML=${SENS_GGML:-Q4_1 Q5_0 Q5_1 IQ4_NL} bash "$0" "$build"
  SENS_MODEL=models/default SENS_N=${SENS_N:-3} SENS_T=${SENS_T:-32} \
    SENS_GGML=${SENS_GGML:-Q4_1 Q5_0 Q5_1 IQ4_NL Q2_K Q3_K Q4_K Q5_K Q6_K} exec bash "$0" "$build"
fi
model=$SENS_MODEL
N=${SENS_N:-6}
T=${SENS_T:-64}
SEED=${SENS_SEED:-20240531}
deps=${MXP_DEPS_DIR:-build-deps}
work=$build/sens_torch/$(basename "$model")
mkdir -p "$work"
[ -x "$deps/bin/llama-quantize" ] || { echo "FAIL: $deps/bin/llama-quantize not found (run scripts/deps.sh)"; exit 1; }
[ -d "$deps/llama.cpp/gguf-py/gguf" ] || { echo "FAIL: $deps/llama.cpp/gguf-py not found (run scripts/deps.sh)"; exit 1; }
# the ggml formats, quantized by llama.cpp
"$build/mixprec" apply "$model" uniform:f32 -o "$work/f32.gguf" > "$work/apply.log" 2>&1 || { cat "$work/apply.log"; exit 1; }
ggufs=(--gguf "$work/f32.gguf")
formats=f32,bf16,f16,q8_0,q4_0,f8_e4m3
for t in ${SENS_GGML:-}; do
  "$deps/bin/llama-quantize" --pure "$work/f32.gguf" "$work/$t.gguf" "$t" > "$work/quantize_$t.log" 2>&1 ||
    { tail -n 5 "$work/quantize_$t.log"; echo "FAIL: llama-quantize --pure $t"; exit 1; }
  ggufs+=(--gguf "$work/$t.gguf")
  formats+=,$(echo "$t" | tr A-Z a-z | sed "s/_k$/_K/")
done
/usr/bin/python3 - "$work/tokens.txt" "$N" "$T" "$SEED" "$model" <<'EOF'
import json, random, sys
path, N, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
vocab = json.load(open(sys.argv[5] + "/config.json"))["vocab_size"]
rng = random.Random(int(sys.argv[4]))
ids = [rng.randrange(vocab) for _ in range(2 * N * (T + 1))]
with open(path, "w") as f:
    f.write("mixprec-tokens 1\n" + " ".join(map(str, ids)) + "\n")
EOF
start=$(date +%s%N)
# passive OpenMP waiting: results do not depend on it, but spinning threads slow this test ~5x
# when ctest runs others beside it
OMP_WAIT_POLICY=PASSIVE "$build/mixprec" calibrate "$model" --data "$work/tokens.txt" --samples "$N" --seq "$T" \
  --formats "$formats" -o "$work/mixprec.json" > "$work/mixprec.log" 2>&1 || { cat "$work/mixprec.log"; exit 1; }
mid=$(date +%s%N)
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/torch_sens.py "$model" "$work/tokens.txt" "$work/torch.json" --seq "$T" --samples "$N" \
  --gguf-py "$deps/llama.cpp/gguf-py" "${ggufs[@]}"
end=$(date +%s%N)
echo "test_sens_torch ($model): mixprec calibrate $(( (mid - start) / 1000000 )) ms, torch_sens.py $(( (end - mid) / 1000000 )) ms (N=$N T=$T)"
/usr/bin/python3 - "$work/mixprec.json" "$work/torch.json" <<'EOF'
import json, sys
RTOL, ROUND, FLOOR = 1e-4, 3.0, 1e-6
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
fail = []
def check(cond, msg):
    if not cond:
        fail.append(msg)
check(a["samples"] == b["samples"] and a["seq_len"] == b["seq_len"], "samples/seq_len differ")
check(abs(a["reference_loss"] - b["reference_loss"]) <= 1e-5 * abs(b["reference_loss"]),
      "reference loss %.9g vs torch %.9g" % (a["reference_loss"], b["reference_loss"]))
names_a = [o["name"] for o in a["ops"]]
names_b = [o["name"] for o in b["ops"]]
check(names_a == names_b, "op lists differ: %s vs %s" % (names_a, names_b))
check(a["formats"] == b["formats"], "format lists differ: %s vs %s" % (a["formats"], b["formats"]))
bo = {o["name"]: o for o in b["ops"]}
compared = 0
for key, spread_key in (("s", "s_spread"), ("s_weight", None), ("s_act", "s_act_spread")):
    for f in b["formats"][1:]:  # all but f32 (0 on both sides)
        col = max(o[key].get(f, 0.0) for o in b["ops"])
        worst = None  # (ratio of |diff| to the tolerance, op, a, b, rel)
        for o in a["ops"]:
            r = bo.get(o["name"])
            if r is None:
                continue
            check((f in o[key]) == (f in r[key]), "%s %s: format present on one side only" % (o["name"], f))
            if f not in o[key] or f not in r[key]:
                continue
            x, y = o[key][f], r[key][f]
            sp = r[spread_key][f] if spread_key else 0.0
            tol = RTOL * abs(y) + ROUND * sp + FLOOR * col
            d = abs(x - y)
            compared += 1
            rel = d / abs(y) if y else (0.0 if d == 0 else float("inf"))
            q = d / tol if tol > 0 else (0.0 if d == 0 else float("inf"))
            if worst is None or q > worst[0]:
                worst = (q, o["name"], x, y, rel, sp)
            check(d <= tol, "%s %s %s: mixprec %.9g torch %.9g |diff| %.3g > tol %.3g (rel %.3g, spread %.3g)"
                  % (key, f, o["name"], x, y, d, tol, rel, sp))
        maxrel = max((abs(o[key][f] - bo[o["name"]][key][f]) / abs(bo[o["name"]][key][f])
                      for o in a["ops"] if f in o[key] and o["name"] in bo and bo[o["name"]][key].get(f)), default=0.0)
        if worst:
            print("  %-8s %-8s worst rel %.2e  worst |diff|/tol %.3f at %s (mixprec %.6g torch %.6g, spread %.3g)"
                  % (key, f, maxrel, worst[0], worst[1], worst[2], worst[3], worst[5]))
for m in fail:
    print("FAIL: " + m)
print("test_sens_torch: %s (%d values compared, reference loss mixprec %.7f torch %.7f)"
      % ("FAIL" if fail else "OK", compared, a["reference_loss"], b["reference_loss"]))
sys.exit(1 if fail else 0)
EOF
