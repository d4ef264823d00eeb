#!/usr/bin/env bash
# make_fixtures.sh BUILD_DIR [WHICH] [WORKDIR]: regenerate the committed test fixtures
#   models/tiny     3.15M parameters (dim 256, 4 layers, 4 heads, ffn 512, tied embeddings,
#                   vocab 2048, 128 positions); about 6 minutes on 2 cores
#   models/default  5.57M parameters (dim 256, 6 layers, 8 heads with 2 KV heads (GQA),
#                   ffn 768, untied head, vocab 2048, 256 positions); about 40-60 minutes on 2 shared cores
# Every width is a multiple of 256 so that every linear op can take every format, the k-quants'
# super-blocks of 256 included.
# WHICH: tiny, default or all (default: all). WORKDIR (default: build-fixtures) receives the
# corpus (tools/make_corpus.sh) and the tokenizer (tools/train_bpe.py); neither is committed.
# Everything is seeded: the corpus, the tokenizer and the training batches are the same on
# every run. Weights are bit-identical for the same thread count and build; the executor is
# meant to be thread-count independent, but the figures in train_log.json were measured with
# OMP_NUM_THREADS=2. Needs the bible-kjv package and BUILD_DIR/mixprec-train.
set -euo pipefail
build=${1:?usage: make_fixtures.sh BUILD_DIR [tiny|default|all] [WORKDIR]}
which=${2:-all}
work=${3:-build-fixtures}
cd "$(dirname "$0")/.."
train="$build/mixprec-train"
[ -x "$train" ] || { echo "make_fixtures.sh: $train not found (build it first)" >&2; exit 1; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE

tools/make_corpus.sh "$work/corpus"
if [ ! -f "$work/tokenizer/tokenizer.json" ]; then
    /usr/bin/python3 tools/train_bpe.py --input "$work/corpus/train.txt" --vocab 2048 --out "$work/tokenizer"
fi

# Held-out text shipped beside each model (books never seen in training; see make_corpus.sh).
mkdir -p models/tiny models/default
cp "$work/corpus/heldout.txt" models/default/heldout.txt
# tiny: Ruth and Ecclesiastes only (about 43 KB), so its test runs in seconds
awk '/^(Ruth|Ecclesiastes) [0-9]+$/ {keep = 1} /^(Daniel|Romans|Hebrews) [0-9]+$/ {keep = 0} keep' \
    "$work/corpus/heldout.txt" > models/tiny/heldout.txt

common=(--tokenizer "$work/tokenizer" --train "$work/corpus/train.txt" --seed 1)
if [ "$which" = tiny ] || [ "$which" = all ]; then
    rm -f models/tiny/train-checkpoint.safetensors
    "$train" "${common[@]}" --heldout models/tiny/heldout.txt --out models/tiny \
        --dim 256 --layers 4 --heads 4 --ffn 512 --seq 128 --tied \
        --steps 400 --batch 8 --lr 3e-3 --warmup 40 --eval-every 100 --ckpt-every 100 --log-every 20
fi
if [ "$which" = default ] || [ "$which" = all ]; then
    # resumes after an interruption (checkpoint every 50 steps)
    resume=()
    [ -f models/default/train-checkpoint.safetensors ] && resume=(--resume)
    "$train" "${common[@]}" --heldout models/default/heldout.txt --out models/default \
        --dim 256 --layers 6 --heads 8 --kv-heads 2 --ffn 768 --seq 256 \
        --steps 1200 --batch 8 --lr 2e-3 --warmup 100 --eval-every 100 --ckpt-every 50 --log-every 20 "${resume[@]}"
fi
