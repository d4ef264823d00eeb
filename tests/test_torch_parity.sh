#!/usr/bin/env bash
# test_torch_parity.sh BUILD_DIR: forward and backward of every model family against PyTorch.
# tools/torch_ref.py writes tiny random models and PyTorch's logits, loss and gradients;
# tool_parity loads each model with mixprec and compares (tolerances in tests/tool_parity.c).
set -euo pipefail
build=$1
out=$build/torch_refs
/usr/bin/python3 tools/torch_ref.py "$out" > "$build/torch_refs.log"
fail=0
for name in llama2 llama3 mistral mistral_swa qwen2 gpt2 gpt2_hub llama_wide; do
  if ! "$build/tool_parity" "$out/$name" "$out/$name/refs.safetensors"; then echo "FAIL: $name"; fail=1; fi
done
for name in llama2 mistral; do
  if ! "$build/tool_parity" "$out/$name/model.gguf" "$out/$name/refs_gguf.safetensors"; then echo "FAIL: $name GGUF"; fail=1; fi
done
exit $fail
