#!/usr/bin/env bash
# test_default_samples.sh BUILD_DIR: sample counts the user did not give adapt to short data.
# On a text whose calibration half holds fewer windows than the default 32 (but at least 4),
# `calibrate` uses every window, warns on stderr, and records the count it used; below 4
# windows it fails with a clear message and writes nothing; an explicit --samples that does
# not fit is still refused (the user asked for it). `optimize` refuses too-short data before
# it creates its output folder. (optimize on short data that fits: tests/test_optimize.sh.)
set -euo pipefail
build=${1:?usage: test_default_samples.sh BUILD_DIR}
mx="$build/mixprec"
model=models/tiny
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE
fail() { echo "FAIL test_default_samples: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 4000 $model/heldout.txt > "$tmp/short.txt"   # a few windows of 64+1 tokens per half
head -c 1200 $model/heldout.txt > "$tmp/tiny.txt"    # fewer than 4

# short text, no --samples: every window of the calibration half, with a warning
"$mx" calibrate $model --data "$tmp/short.txt" --seq 64 --formats f32,q8_0 -o "$tmp/sens.json" \
    >"$tmp/out" 2>"$tmp/err" || fail "calibrate on a short text failed: $(tail -3 "$tmp/err")"
n=$(sed -n 's/.*calibration split holds only \([0-9]*\) windows of 64+1 tokens.*/\1/p' "$tmp/err")
[ -n "$n" ] || fail "no warning about the short calibration split: $(cat "$tmp/err")"
[ "$n" -ge 4 ] && [ "$n" -lt 32 ] || fail "warning names $n windows"
grep -q "not the default 32" "$tmp/err" || fail "the warning does not say the default: $(cat "$tmp/err")"
grep -q "^calibrate: samples=$n " "$tmp/out" || fail "summary line does not report $n samples: $(cat "$tmp/out")"
/usr/bin/python3 - "$tmp/sens.json" "$n" <<'PY' || fail "sens.json does not record the samples used"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["samples"] == int(sys.argv[2]) and j["complete"], j["samples"]
PY
# the same count, windows and table as asking for it explicitly (no warning then)
"$mx" calibrate $model --data "$tmp/short.txt" --seq 64 --formats f32,q8_0 --samples "$n" -o "$tmp/sens2.json" \
    >/dev/null 2>"$tmp/err2" || fail "calibrate --samples $n failed: $(tail -3 "$tmp/err2")"
if grep -q "warning" "$tmp/err2"; then fail "an explicit --samples warned: $(cat "$tmp/err2")"; fi
/usr/bin/python3 - "$tmp/sens.json" "$tmp/sens2.json" <<'PY' || fail "default and explicit tables differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["ops"] == b["ops"] and a["reference_loss"] == b["reference_loss"]
PY

# an explicit --samples larger than the split: refused, naming what was asked
rc=0
"$mx" calibrate $model --data "$tmp/short.txt" --seq 64 --samples 32 -o "$tmp/sens3.json" >/dev/null 2>"$tmp/err3" || rc=$?
[ "$rc" != 0 ] || fail "calibrate --samples 32 on a short text succeeded"
grep -q "32 requested" "$tmp/err3" || fail "explicit --samples: $(cat "$tmp/err3")"
[ ! -e "$tmp/sens3.json" ] || fail "a refused calibration wrote its output"

# too short even for the minimum: a clear error, nothing written
rc=0
"$mx" calibrate $model --data "$tmp/tiny.txt" --seq 64 -o "$tmp/sens4.json" >/dev/null 2>"$tmp/err4" || rc=$?
[ "$rc" != 0 ] || fail "calibrate on a tiny text succeeded"
grep -q "tiny.txt: the calibration split (.* tokens) holds [0-3] windows of 64+1 tokens; at least 4 are needed" "$tmp/err4" ||
    fail "tiny text: $(cat "$tmp/err4")"
grep -q -- "--samples N" "$tmp/err4" || fail "tiny text: the message does not say what to change: $(cat "$tmp/err4")"
[ ! -e "$tmp/sens4.json" ] && [ -z "$(ls -A "$tmp" | grep -v -e '\.txt$' -e '\.json$' -e '^out$' -e '^err')" ] ||
    fail "a refused calibration left files: $(ls -A "$tmp")"

# optimize: the same refusal, before its output folder exists
rc=0
"$mx" optimize $model --data "$tmp/tiny.txt" --workload decode:64 --max-ppl-increase 1% -o "$tmp/opt" \
    >/dev/null 2>"$tmp/err5" || rc=$?
[ "$rc" != 0 ] || fail "optimize on a tiny text succeeded"
grep -q "at least 4 are needed" "$tmp/err5" || fail "optimize on a tiny text: $(cat "$tmp/err5")"
[ ! -e "$tmp/opt" ] || fail "optimize made its output folder before refusing the data"
echo "test_default_samples: OK ($n calibration windows)"
