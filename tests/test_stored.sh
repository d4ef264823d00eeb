#!/usr/bin/env bash
# test_stored.sh BUILD_DIR: weights kept in their stored type (bf16, f16, and a quantized
# GGUF's block formats: used in place from the file and widened to f32 tile by tile,
# src/core/graph.h) give exactly the numbers of the same values converted to f32. Widening is
# exact and every product makes the same BLAS calls on the same values (src/ops/gemm.h), so
# nothing may differ by even one bit:
#  - calibrate: every byte of sens.json outside "provenance" (the reference loss, and every
#    op's terms: its weight gradients come from the backward, its weight errors from the
#    chunked quantizers, with the k-quants in the cache and not, f8_e4m3's whole rows, the
#    fisher metric's fake-quantized products, the embedding's token rows);
#  - eval: the summary line but its speeds (loss, perplexity, and against uniform q8_0 and
#    the stored type: loss MSE, KL, top-1), from the executor's f32 and fake-quant passes;
#  - generate: the greedy tokens, on the executor (one token per pass: matrix-vector tiles)
#    and on ggml (the weights widened into ggml's f32 tensors).
# Models: tools/make_llama.py's random Llama (hidden 256, 2 layers, GQA 4/2 heads, ffn 512,
# vocab 2048) in bf16 and in f16; the same values as f32 safetensors; and as GGUF in the stored
# type (mixprec apply uniform:TYPE: q/k rows in llama.cpp's order, which the accessor undoes).
# The bf16 model as q8_0 and q4_K GGUFs against f32 GGUFs of their values (calibrate and eval),
# those values checked against llama.cpp's gguf-py dequantizers.
# And a random GPT-2 (hidden 128, 2 layers, positions 128, tied head) in bf16, its safetensors
# header of odd length: every tensor at an odd address (owned realigned copies), Conv1D weights
# transposed in 16 bits, the position table widened at load.
# --seq 96 --batch 2 (192 rows) makes the k/v products (128 rows) cut along the tokens, which
# widens all of W for the call; the others are cut along W (ops/gemm.c).
set -euo pipefail
build=$1
mxp=$build/mixprec
work=$build/stored
rm -rf "$work"
mkdir -p "$work"
export OMP_WAIT_POLICY=PASSIVE
data=models/default/heldout.txt
fail=0

# to_f32 SRC DST: the folder SRC with every tensor widened to f32 (config torch_dtype float32)
to_f32() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import json, os, shutil, struct, sys
import numpy as np
src, dst = sys.argv[1:3]
os.makedirs(dst, exist_ok=True)
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
out, blobs, off = {}, [], 0
for name, t in head.items():
    if name == "__metadata__":
        continue
    b = raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]]
    if t["dtype"] == "BF16":
        x = (np.frombuffer(b, "<u2").astype(np.uint32) << 16).view("<f4")
    elif t["dtype"] == "F16":
        x = np.frombuffer(b, "<f2").astype("<f4")
    else:
        x = np.frombuffer(b, "<f4")
    blobs.append(x.tobytes())
    out[name] = {"dtype": "F32", "shape": t["shape"], "data_offsets": [off, off + len(blobs[-1])]}
    off += len(blobs[-1])
hb = json.dumps(out).encode()
hb += b" " * (-len(hb) % 8)
with open(os.path.join(dst, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
cfg = json.load(open(os.path.join(src, "config.json")))
cfg["torch_dtype"] = "float32"
json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=1)
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(src, f), dst)
EOF
}

# runs MODEL NAME TYPE: calibrate, eval and generate MODEL into $work/NAME.*
runs() {
  local m=$1 name=$2 type=$3
  "$mxp" calibrate "$m" --data "$data" --samples 4 --seq 96 --batch 2 --fisher \
    --formats f32,bf16,f16,q8_0,q4_K,f8_e4m3 -o "$work/$name.sens.json" > "$work/$name.log" 2>&1 &&
  "$mxp" calibrate "$m" --data "$data" --samples 2 --seq 64 --cache-mb 0 \
    --formats f32,q4_0,q5_K -o "$work/$name.sens0.json" >> "$work/$name.log" 2>&1 &&
  "$mxp" eval "$m" --data "$data" --seq 64 --samples 4 --formats uniform:q8_0 --backend native 2>> "$work/$name.log" |
    grep '^eval:' | sed 's/ prefill_tps=.*//' > "$work/$name.eval_q8" &&
  "$mxp" eval "$m" --data "$data" --seq 64 --samples 4 --formats "uniform:$type" --backend native 2>> "$work/$name.log" |
    grep '^eval:' | sed 's/ prefill_tps=.*//' > "$work/$name.eval_st" &&
  "$mxp" generate "$m" --prompt "In the beginning" --tokens 12 --backend native 2>> "$work/$name.log" |
    grep -av '^generate:' > "$work/$name.gen_native" &&
  "$mxp" generate "$m" --prompt "In the beginning" --tokens 12 2>> "$work/$name.log" |
    grep -av '^generate:' > "$work/$name.gen_ggml" ||
    { cat "$work/$name.log"; echo "FAIL: $name: a command failed"; fail=1; }
}

# gpt2 DIR: a random GPT2LMHeadModel in bf16 (models/default's tokenizer, vocab 2048)
gpt2() {
  /usr/bin/python3 - "$1" <<'EOF'
import json, os, shutil, struct, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
C, L, V, P = 128, 2, 2048, 128
rng = np.random.default_rng(5)
ts = [("transformer.wte.weight", (V, C), 0.02), ("transformer.wpe.weight", (P, C), 0.01)]
for i in range(L):
    h = "transformer.h.%d." % i
    ts += [(h + "ln_1.weight", (C,), 1), (h + "ln_1.bias", (C,), 0.01),
           (h + "attn.c_attn.weight", (C, 3 * C), 0.02), (h + "attn.c_attn.bias", (3 * C,), 0.01),
           (h + "attn.c_proj.weight", (C, C), 0.02), (h + "attn.c_proj.bias", (C,), 0.01),
           (h + "ln_2.weight", (C,), 1), (h + "ln_2.bias", (C,), 0.01),
           (h + "mlp.c_fc.weight", (C, 4 * C), 0.02), (h + "mlp.c_fc.bias", (4 * C,), 0.01),
           (h + "mlp.c_proj.weight", (4 * C, C), 0.02), (h + "mlp.c_proj.bias", (C,), 0.01)]
ts += [("transformer.ln_f.weight", (C,), 1), ("transformer.ln_f.bias", (C,), 0.01)]
head, blobs, off = {}, [], 0
for name, shape, scale in ts:
    x = np.ones(shape, np.float32) if scale == 1 else (rng.standard_normal(shape) * scale).astype(np.float32)
    u = x.view(np.uint32)
    b = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype("<u2").tobytes()
    head[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
hb = json.dumps(head).encode()
hb += b" " * (1 - len(hb) % 2)  # odd: the data starts at an odd offset
with open(os.path.join(d, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
cfg = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "bos_token_id": V - 1,
       "eos_token_id": V - 1, "layer_norm_epsilon": 1e-5, "model_type": "gpt2", "n_ctx": P, "n_embd": C,
       "n_head": 2, "n_inner": None, "n_layer": L, "n_positions": P, "scale_attn_weights": True,
       "reorder_and_upcast_attn": False, "scale_attn_by_inverse_layer_idx": False,
       "tie_word_embeddings": True, "torch_dtype": "bfloat16", "vocab_size": V}
json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join("models/default", f), d)
EOF
}

same_json() {  # A B: the same table outside provenance
  /usr/bin/python3 - "$1" "$2" <<'EOF' || fail=1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for t in (a, b):
    t.pop("provenance")
if a != b:
    sys.exit("FAIL: %s and %s differ outside provenance" % tuple(sys.argv[1:3]))
EOF
}

same_file() {  # A B
  if ! cmp -s "$1" "$2"; then
    echo "FAIL: $1 and $2 differ:"; cat "$1" "$2"; fail=1
  fi
}

for type in bf16 f16; do
  /usr/bin/python3 tools/make_llama.py "$work/$type" --hidden 256 --layers 2 --heads 4 --kv-heads 2 --ffn 512 \
    --dtype "$type" --seed 7 > /dev/null
  to_f32 "$work/$type" "$work/${type}_f32"
  "$mxp" apply "$work/$type" "uniform:$type" -o "$work/$type.gguf" > /dev/null 2>&1 ||
    { echo "FAIL: apply uniform:$type"; fail=1; continue; }
  runs "$work/${type}_f32" "${type}_f32" "$type"
  for m in "$type" "$type.gguf"; do
    runs "$work/$m" "$m" "$type"
    same_json "$work/${type}_f32.sens.json" "$work/$m.sens.json"
    same_json "$work/${type}_f32.sens0.json" "$work/$m.sens0.json"
    for f in eval_q8 eval_st gen_native gen_ggml; do same_file "$work/${type}_f32.$f" "$work/$m.$f"; done
    [ "$fail" = 0 ] && echo "$m: calibrate, eval and generate equal those of its f32 copy: $(cat "$work/$m.eval_q8")"
  done
done
# quantized GGUFs (a block format and a k-quant, q/k rows in llama.cpp's order) used in place,
# against an f32 GGUF of the same values (`apply uniform:f32`), whose every value is first
# checked against llama.cpp's own dequantizers (gguf-py's numpy code: an independent reference).
# A GGUF runs its ops in the file's formats, so the tokens generate produces are not compared.
deps=${MXP_DEPS_DIR:-build-deps}
[ -d "$deps/llama.cpp/gguf-py/gguf" ] || { echo "FAIL: $deps/llama.cpp/gguf-py not found (run scripts/deps.sh)"; exit 1; }
for type in q8_0 q4_K; do
  "$mxp" apply "$work/bf16" "uniform:$type" -o "$work/$type.gguf" > /dev/null 2>&1 &&
  "$mxp" apply "$work/$type.gguf" uniform:f32 -o "$work/${type}_f32.gguf" > /dev/null 2>&1 ||
    { echo "FAIL: apply uniform:$type / uniform:f32"; fail=1; continue; }
  /usr/bin/python3 - "$work/$type.gguf" "$work/${type}_f32.gguf" "$deps/llama.cpp/gguf-py" <<'EOF' || fail=1
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize
q = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
f = {t.name: t for t in GGUFReader(sys.argv[2]).tensors}
blocks = [n for n, t in q.items() if GGMLQuantizationType(t.tensor_type).name not in ("F32", "F16", "BF16")]
bad = [n for n, t in q.items() if f[n].tensor_type != 0 or not np.array_equal(
       np.asarray(dequantize(t.data, GGMLQuantizationType(t.tensor_type)), np.float32).reshape(-1),
       np.asarray(f[n].data, np.float32).reshape(-1))]
if q.keys() != f.keys() or len(blocks) < 10 or bad:
    sys.exit("FAIL: %s: tensors not equal to gguf-py's dequantization: %s" % (sys.argv[2], bad or "(names/count)"))
print("%s: its %d block-format tensors equal gguf-py's dequantization" % (sys.argv[2].split("/")[-1], len(blocks)))
EOF
  runs "$work/${type}_f32.gguf" "${type}_f32" "$type"
  runs "$work/$type.gguf" "$type" "$type"
  same_json "$work/${type}_f32.sens.json" "$work/$type.sens.json"
  same_json "$work/${type}_f32.sens0.json" "$work/$type.sens0.json"
  for f in eval_q8 eval_st; do same_file "$work/${type}_f32.$f" "$work/$type.$f"; done
  [ "$fail" = 0 ] && echo "$type.gguf: calibrate and eval equal those of its f32 copy: $(cat "$work/$type.eval_st")"
done
gpt2 "$work/gpt2"
to_f32 "$work/gpt2" "$work/gpt2_f32"
runs "$work/gpt2_f32" gpt2_f32 bf16
runs "$work/gpt2" gpt2 bf16
same_json "$work/gpt2_f32.sens.json" "$work/gpt2.sens.json"
same_json "$work/gpt2_f32.sens0.json" "$work/gpt2.sens0.json"
for f in eval_q8 eval_st gen_native gen_ggml; do same_file "$work/gpt2_f32.$f" "$work/gpt2.$f"; done
[ "$fail" = 0 ] && echo "gpt2: calibrate, eval and generate equal those of its f32 copy: $(cat "$work/gpt2.eval_q8")"
[ "$fail" = 0 ] && echo "test_stored: OK"
exit $fail
