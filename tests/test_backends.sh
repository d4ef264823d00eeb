#!/usr/bin/env bash
# test_backends.sh BUILD_DIR: the speeds of `eval` and `generate` come from ggml (the whole
# model as one ggml graph, llama.cpp's engine) by default and from mixprec's executor with
# --backend native; what they compute does not depend on it:
#   - generate, greedy, f32, models/default: the same tokens (the same text) on both; ggml
#     says backend=ggml; a context longer than the model's positions goes to the executor
#     with a note by default and is refused with an explicit --backend ggml.
#   - eval --formats: the same losses, KL and top-1 on both (the executor computes them);
#     the speed engine is named; a format without a ggml type (f8_e4m3) is "not timed on
#     ggml" (n/a), never a failure; a bad --backend is a usage error.
set -euo pipefail
build=${1:?usage: test_backends.sh BUILD_DIR}
mx="$build/mixprec"
model=models/default
data=$model/heldout.txt
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE
fail() { echo "FAIL test_backends: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- generate ----
for b in ggml native; do
    "$mx" generate $model --prompt "And God said" --tokens 48 --backend $b >"$tmp/gen.$b" 2>"$tmp/err.$b" ||
        fail "generate --backend $b exited $?: $(cat "$tmp/err.$b")"
    grep -Eq "tokens=48 .*tokens_per_s=[0-9.]+ backend=$b\$" "$tmp/err.$b" || fail "generate --backend $b: $(cat "$tmp/err.$b")"
done
cmp -s "$tmp/gen.ggml" "$tmp/gen.native" ||
    fail "greedy f32 tokens differ: ggml '$(cat "$tmp/gen.ggml")' vs executor '$(cat "$tmp/gen.native")'"
"$mx" generate $model --prompt "And God said" --tokens 48 >/dev/null 2>"$tmp/err.def" || fail "generate exited $?"
grep -q "backend=ggml\$" "$tmp/err.def" || fail "generate does not default to ggml: $(cat "$tmp/err.def")"
"$mx" generate $model --prompt "x" --tokens 300 >/dev/null 2>"$tmp/err.long" || fail "a long generate failed: $(cat "$tmp/err.long")"
grep -q "note: the context exceeds the model's positions" "$tmp/err.long" && grep -q "backend=native\$" "$tmp/err.long" ||
    fail "a context past the model's positions: $(cat "$tmp/err.long")"
if "$mx" generate $model --prompt "x" --tokens 300 --backend ggml >/dev/null 2>"$tmp/err.refused"; then
    fail "generate --backend ggml past the model's positions accepted"
fi
grep -q "exceed the model's 256 positions.*--backend native" "$tmp/err.refused" || fail "unclear refusal: $(cat "$tmp/err.refused")"
set +e
"$mx" generate $model --prompt "x" --backend cuda >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || fail "generate --backend cuda: exit $rc, want 2"

# ---- eval ----
ev() { "$mx" eval $model --data $data --seq 64 --samples 4 --decode-tokens 16 "$@" 2>/dev/null; }
ev --formats uniform:q8_0 >"$tmp/ev.ggml" || fail "eval (ggml speeds) exited $?"
ev --formats uniform:q8_0 --backend native >"$tmp/ev.native" || fail "eval --backend native exited $?"
grep -q "^speeds timed on: ggml .* threads, KV cache f16" "$tmp/ev.ggml" || fail "eval speeds not on ggml: $(cat "$tmp/ev.ggml")"
grep -q "^speeds timed on: mixprec executor" "$tmp/ev.native" || fail "eval --backend native: $(cat "$tmp/ev.native")"
python3 - "$tmp/ev.ggml" "$tmp/ev.native" <<'PY' || fail "eval results differ between backends"
import re, sys
kv = lambda f: dict(re.findall(r"(\w+)=(\S+)", next(l for l in open(f) if l.startswith("eval: "))))
g, n = kv(sys.argv[1]), kv(sys.argv[2])
bad = [k for k in ("loss", "ppl", "ref_loss", "loss_mse", "kl", "top1") if g[k] != n[k]]
assert not bad, f"accuracy differs: {[(k, g[k], n[k]) for k in bad]}"
for side in (g, n):
    for k in ("prefill_tps", "decode_tps"):
        assert float(side[k]) > 0, f"{k} = {side[k]}"
print(f"test_backends: eval q8_0 prefill/decode tok/s ggml {g['prefill_tps']}/{g['decode_tps']}, "
      f"native {n['prefill_tps']}/{n['decode_tps']} (under whatever load the machine has)")
PY
ev --formats uniform:f8_e4m3 >"$tmp/ev.f8" || fail "eval of f8_e4m3 with ggml speeds failed"
grep -q "^formats: not timed on ggml: f8_e4m3 has no ggml type" "$tmp/ev.f8" || fail "no f8_e4m3 note: $(cat "$tmp/ev.f8")"
grep -q "prefill_tps=nan decode_tps=nan" "$tmp/ev.f8" && grep -Eq "^formats .* n/a +n/a" "$tmp/ev.f8" ||
    fail "f8_e4m3 speeds not marked untimed: $(cat "$tmp/ev.f8")"
set +e
"$mx" eval $model --data $data --backend cuda >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || fail "eval --backend cuda: exit $rc, want 2"
echo "test_backends: ok"
