#!/usr/bin/env bash
# bench/vs_llama_mixes.sh BUILD_DIR OUT_DIR: mixprec's plans against llama.cpp's own quantization
# mixes at the same file size, all judged by llama.cpp.
#
# On models/default: llama-quantize turns mixprec's f32 GGUF into llama.cpp's mixes (Q8_0, Q6_K,
# Q5_K_M, Q4_K_M, Q4_0, Q3_K_M); mixprec calibrates every ggml format, and for each mix solves
# the least-loss plan whose GGUF is no larger (`solve --max-bytes`: the plan ops' budget, the
# linear weights and the token embeddings, is the mix's file size minus what mixprec's GGUF holds
# besides them: norms and metadata); llama.cpp then scores every GGUF on the same held-out windows against the f32 GGUF:
# KL divergence, loss, top-1 agreement (tools/llama_eval.mjs kl).
set -euo pipefail
build=${1:?usage: bench/vs_llama_mixes.sh BUILD_DIR OUT_DIR}
out=${2:?usage: bench/vs_llama_mixes.sh BUILD_DIR OUT_DIR}
mxp=$build/mixprec
deps=${MXP_DEPS_DIR:-build-deps}
model=models/default
data=$model/heldout.txt
T=256 W=16
formats=f32,bf16,f16,q8_0,q4_0,q4_1,q5_0,q5_1,q2_K,q3_K,q4_K,q5_K,q6_K
mkdir -p "$out"
export MIXPREC_CACHE_DIR=${MIXPREC_CACHE_DIR:-$out/cache}
echo "vs_llama_mixes: $(date -u +%F), $("$mxp" --version | tr '\n' ' '), load $(cut -d' ' -f1-3 /proc/loadavg)"

"$mxp" tokenize $model --data $data -o "$out/ids.txt" > /dev/null
# the first 2*W*(T+1) ids: the evaluation half holds exactly W windows of T+1
awk -v n=$((2 * W * (T + 1))) 'NR == 1 { print; next } { for (i = 1; i <= NF && c < n; i++) printf "%s%s", $i, (++c % 16 ? " " : "\n") } END { print "" }' \
    "$out/ids.txt" > "$out/windows.txt"
"$mxp" apply $model uniform:f32 -o "$out/f32.gguf" > /dev/null
size() { stat -c %s "$1"; }
mixes=(Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M)
for mix in "${mixes[@]}"; do
  "$deps/bin/llama-quantize" "$out/f32.gguf" "$out/llama_$mix.gguf" "$mix" > "$out/quantize_$mix.log" 2>&1
done

"$mxp" calibrate $model --data $data --formats $formats -o "$out/sens.json" > "$out/calibrate.log" 2>&1
"$mxp" profile $model --workload decode:128 --formats $formats --budget 30 --tie q_proj,k_proj,v_proj --tie gate_proj,up_proj --quiet -o "$out/latency.json" > "$out/profile.log" 2>&1
# bytes of the f32 GGUF that are not plan-op weights (norms, metadata): every matrix is one
linear=$("$mxp" info $model | awk '$1 ~ /\.weight$/ && $3 ~ /^\[[0-9]+,$/ {
           gsub(/[\[\],]/, "", $3); gsub(/[\[\],]/, "", $4); s += $3 * $4 * 4 } END { printf "%.0f", s }')
fixed=$(( $(size "$out/f32.gguf") - linear ))
ggufs=()
for mix in "${mixes[@]}"; do
  budget=$(( $(size "$out/llama_$mix.gguf") - fixed ))
  if [ "$budget" -le 0 ] || ! "$mxp" solve "$out/sens.json" "$out/latency.json" --max-bytes "$budget" \
        -o "$out/plan_$mix.json" > "$out/solve_$mix.log" 2>&1; then
    echo "$mix: no mixprec plan fits $(size "$out/llama_$mix.gguf") bytes ($(tail -n 1 "$out/solve_$mix.log" 2>/dev/null))"
    continue
  fi
  "$mxp" apply $model "$out/plan_$mix.json" -o "$out/mixprec_$mix.gguf" > /dev/null
  ggufs+=("$out/llama_$mix.gguf" "$out/mixprec_$mix.gguf")
done
node tools/llama_eval.mjs kl "$out/windows.txt" --seq $T "$out/f32.gguf" "${ggufs[@]}" > "$out/kl.txt"
echo
echo "| GGUF | size (bytes) | KL vs f32 (nats/token) | loss | top-1 vs f32 |"
echo "|---|---|---|---|---|"
while read -r line; do
  f=$(echo "$line" | sed -nE 's/.*model=([^ ]+).*/\1/p')
  name=$(basename "$f" .gguf | sed 's/^llama_/llama.cpp /; s/^mixprec_/mixprec at the size of /')
  echo "| $name | $(size "$f") | $(echo "$line" | sed -nE 's/.* kl=([^ ]+).*/\1/p') | $(echo "$line" | sed -nE 's/.* loss=([^ ]+).*/\1/p') | $(echo "$line" | sed -nE 's/.* top1=([^ ]+).*/\1/p') |"
done < "$out/kl.txt"
echo "(llama.cpp scored every GGUF: $W held-out windows of $T tokens of $data, $((W * T)) tokens)"
