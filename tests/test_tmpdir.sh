#!/usr/bin/env bash
# test_tmpdir.sh BUILD_DIR: temporary files go where TMPDIR says (default /tmp). Test programs
# that need a scratch folder run with TMPDIR set to a fresh folder: they pass, and leave
# nothing behind there; with TMPDIR pointing at a folder that does not exist or cannot be
# written they fail with a message naming it (they do not fall back to a fixed /tmp path).
# fuzz/run.sh refuses an unwritable TMPDIR the same way, before it runs anything.
set -euo pipefail
build=${1:?usage: test_tmpdir.sh BUILD_DIR}
fail() { echo "FAIL test_tmpdir: $*" >&2; exit 1; }
base=$(mktemp -d)
trap 'chmod -R u+w "$base" 2>/dev/null; rm -rf "$base"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE

for t in test_data test_loaders test_safetensors_write; do
    fresh="$base/fresh_$t"
    mkdir "$fresh"
    TMPDIR="$fresh" "$build/$t" >"$base/out" 2>&1 || fail "$t with TMPDIR=$fresh: $(tail -5 "$base/out")"
    left=$(ls -A "$fresh")
    [ -z "$left" ] || fail "$t left files in TMPDIR: $left"

    # a TMPDIR that does not exist: a clear failure naming it
    rc=0
    TMPDIR="$base/missing" "$build/$t" >"$base/out" 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "$t passed with TMPDIR=$base/missing"
    grep -q "cannot create a temporary folder in $base/missing (TMPDIR)" "$base/out" ||
        fail "$t: message does not name TMPDIR: $(grep FAIL "$base/out" | head -3)"
done

# a read-only TMPDIR (root may write anyway: only checked when the folder really refuses)
ro="$base/readonly"
mkdir "$ro"
chmod a-w "$ro"
if ! touch "$ro/probe" 2>/dev/null; then
    rc=0
    TMPDIR="$ro" "$build/test_data" >"$base/out" 2>&1 || rc=$?
    [ "$rc" != 0 ] && grep -q "cannot create a temporary folder in $ro (TMPDIR)" "$base/out" ||
        fail "test_data with a read-only TMPDIR: exit $rc, $(grep FAIL "$base/out" | head -3)"
fi
rm -f "$ro/probe"

# fuzz/run.sh: refuses before running anything
rc=0
TMPDIR="$base/missing" bash fuzz/run.sh 1 "$build" >"$base/out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "fuzz/run.sh with a missing TMPDIR exited $rc, expected 2: $(cat "$base/out")"
grep -q "cannot create a temporary folder in $base/missing" "$base/out" || fail "fuzz/run.sh message: $(cat "$base/out")"
echo "test_tmpdir: OK"
