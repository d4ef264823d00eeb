#!/usr/bin/env bash
# test_mpi.sh BUILD_DIR: `mixprec calibrate` shared over MPI processes gives the one-process
# sensitivity table, bit for bit.
#
# Reference: the same command in one process (with 2 OpenMP threads where each rank has 1; the
# table does not depend on either). Compared: every byte of the file outside its "provenance"
# object, and inside it every field but three that say how and when the file was made:
#   created    the time of writing
#   machine    rank 0's CPU and its OpenMP thread count ("(2 threads)" vs "(1 threads)")
#   processes  the number of MPI processes, present only when there are several
# Cases: models/tiny and models/default, 6 samples x 64 tokens, 2 processes; models/tiny with
# --batch 2 --fisher and 7 samples over 3 processes (4 batches, the last one short, so one rank
# runs two and the others one), also streaming (--stream on); a run stopped after its first
# round (--stop-after) whose partial table matches the one-process partial table and that
# --resume (with 3 processes) completes into the same table (and the one-process resume of the
# one-process partial table too: the sums read back exactly); and failures: a bad --data on
# rank 1 only, an unwritable -o (checked by rank 0 only), and a command other than calibrate
# under mpirun: each must exit non-zero, within the time-out, with the message, and leave no
# file behind.
#
# A build without MPI (MXP_MPI=OFF) or a machine without mpirun FAILS this test: both come with
# scripts/deps.sh (Debian: libopenmpi-dev openmpi-bin).
set -uo pipefail
build=$1
mxp=$build/mixprec
work=$build/test_mpi
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

if ! grep -q '^MXP_MPI:BOOL=ON$' "$build/CMakeCache.txt" 2> /dev/null; then
  echo "FAIL: $build was configured without MPI (MXP_MPI is not ON): install libopenmpi-dev openmpi-bin" \
       "(scripts/deps.sh) and configure again"
  exit 1
fi
if ! command -v mpirun > /dev/null; then
  echo "FAIL: mixprec was built with MPI but there is no mpirun on PATH (Debian: openmpi-bin)"
  exit 1
fi
# CI runs as root; Open MPI refuses that unless told. Open MPI's own allocations are still
# live at exit, which LeakSanitizer would report in ASan builds.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export OMP_WAIT_POLICY=PASSIVE
mpi() {  # mpi NP ARGS...: mixprec ARGS in NP processes of one thread each
  local np=$1; shift
  OMP_NUM_THREADS=1 timeout 300 mpirun -np "$np" --oversubscribe --allow-run-as-root "$mxp" "$@"
}
one() { OMP_NUM_THREADS=2 timeout 300 "$mxp" "$@"; }

rm -rf "$work" && mkdir -p "$work"
for m in tiny default; do  # random token ids: 2 x 8 windows of 65 (the calibration split holds 8)
  /usr/bin/python3 - "models/$m/config.json" "$work/$m.tokens" <<'EOF' || exit 1
import json, random, sys
vocab = json.load(open(sys.argv[1]))["vocab_size"]
rng = random.Random(20261202)
ids = [rng.randrange(vocab) for _ in range(2 * 8 * 65)]
open(sys.argv[2], "w").write("mixprec-tokens 1\n" + " ".join(map(str, ids)) + "\n")
EOF
done

# same_table ONE MPI NP: the files agree as the header says; NP: the processes of the MPI run
# (1: both from one process)
same_table() {
  /usr/bin/python3 - "$@" <<'EOF'
import json, re, sys
a_path, b_path, np = sys.argv[1], sys.argv[2], int(sys.argv[3])
a, b = open(a_path, "rb").read(), open(b_path, "rb").read()
# the provenance object (cJSON writes it as one block of lines, its own closing brace alone)
prov = re.compile(rb'\n\t"provenance":\t\{\n.*?\n\t\},?\n', re.S)
if len(prov.findall(a)) != 1 or len(prov.findall(b)) != 1:
    sys.exit("no single provenance block in %s or %s" % (a_path, b_path))
ra, rb = prov.sub(b"\n", a), prov.sub(b"\n", b)
if ra != rb:
    la, lb = ra.split(b"\n"), rb.split(b"\n")
    i = next(i for i in range(min(len(la), len(lb))) if la[i] != lb[i])
    sys.exit("%s and %s differ outside provenance, first at line %d:\n  %r\n  %r" % (a_path, b_path, i + 1, la[i], lb[i]))
pa, pb = json.loads(a)["provenance"], json.loads(b)["provenance"]
if "processes" in pa or pb.get("processes") != (np if np > 1 else None):
    sys.exit("provenance.processes: one process %r, MPI %r (want absent, %d)" % (pa.get("processes"), pb.get("processes"), np))
allowed = {"created", "machine", "processes"}
diff = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k) and k not in allowed)
if diff:
    sys.exit("provenance fields differ: %s" % ", ".join(diff))
print("same table: %s and %s (%d bytes outside provenance)" % (a_path, b_path, len(ra)))
EOF
}

# 1. the table, two models, 2 processes
for m in tiny default; do
  args=(calibrate "models/$m" --data "$work/$m.tokens" --samples 6 --seq 64)
  one "${args[@]}" -o "$work/$m.one.json" > "$work/$m.one.log" 2>&1 || { cat "$work/$m.one.log"; fail "$m: one process"; continue; }
  if ! mpi 2 "${args[@]}" -o "$work/$m.mpi.json" > "$work/$m.mpi.log" 2> "$work/$m.mpi.err"; then
    cat "$work/$m.mpi.log" "$work/$m.mpi.err"; fail "$m: mpirun -np 2"; continue
  fi
  same_table "$work/$m.one.json" "$work/$m.mpi.json" 2 || fail "$m: 2 processes vs one"
  # rank 0 alone prints: one summary line on stdout
  [ "$(grep -c '^calibrate: samples=6 ' "$work/$m.mpi.log")" = 1 ] || fail "$m: not one summary line: $(cat "$work/$m.mpi.log")"
done

# 2. batches of 2 over 3 processes, the last batch short, fisher too
args=(calibrate models/tiny --data "$work/tiny.tokens" --samples 7 --seq 64 --batch 2 --fisher)
if one "${args[@]}" -o "$work/b.one.json" > "$work/b.one.log" 2>&1 &&
   mpi 3 "${args[@]}" -o "$work/b.mpi.json" > "$work/b.mpi.log" 2>&1; then
  same_table "$work/b.one.json" "$work/b.mpi.json" 3 || fail "batch 2, 3 processes vs one"
else
  cat "$work/b.one.log" "$work/b.mpi.log"; fail "batch 2, 3 processes: a run failed"
fi

#    the same processes streaming (--stream on: each batch block by block, calibrate's
#    per-sample path, nothing MPI-specific): the one-process in-memory table
if mpi 3 "${args[@]}" --stream on -o "$work/s.mpi.json" > "$work/s.mpi.log" 2>&1; then
  same_table "$work/b.one.json" "$work/s.mpi.json" 3 || fail "streaming, 3 processes vs one in memory"
else
  cat "$work/s.mpi.log"; fail "streaming, 3 processes: the run failed"
fi

# 3. stopped after the first round (2 processes x 2 samples), then --resume with 3 processes
one "${args[@]}" --stop-after 3 -o "$work/r.one.json" > "$work/r.one.log" 2>&1
[ $? -ne 0 ] && [ -f "$work/r.one.json.partial" ] || fail "one process --stop-after 3: no partial table and exit 1"
#    (one process resuming: the sums in the partial table read back exactly)
cp "$work/r.one.json.partial" "$work/r1.one.json.partial"
if one "${args[@]}" --resume -o "$work/r1.one.json" > "$work/r1.one.log" 2>&1; then
  same_table "$work/b.one.json" "$work/r1.one.json" 1 || fail "stopped + --resume in one process vs one uninterrupted run"
else
  cat "$work/r1.one.log"; fail "one process --resume"
fi
mpi 2 "${args[@]}" --stop-after 3 -o "$work/r.mpi.json" > "$work/r.mpi.log" 2> "$work/r.mpi.err"
rc=$?
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || [ ! -f "$work/r.mpi.json.partial" ] || [ -e "$work/r.mpi.json" ]; then
  cat "$work/r.mpi.err"; fail "mpirun --stop-after 3: exit $rc, want a partial table only and a non-zero exit"
else
  grep -q "interrupted after 4 of 7 samples; the partial table is in" "$work/r.mpi.err" ||
    fail "mpirun --stop-after 3: no message saying where the partial table is: $(cat "$work/r.mpi.err")"
  [ "$(grep -c "interrupted after" "$work/r.mpi.err")" = 1 ] || fail "mpirun --stop-after 3: the message is not from rank 0 alone"
  [ "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["samples"])' "$work/r.mpi.json.partial")" = 4 ] ||
    fail "mpirun --stop-after 3: the partial table does not hold the 4 samples of one round"
  same_table "$work/r.one.json.partial" "$work/r.mpi.json.partial" 2 || fail "partial tables differ"
  if mpi 3 "${args[@]}" --resume -o "$work/r.mpi.json" > "$work/r.res.log" 2>&1; then
    same_table "$work/b.one.json" "$work/r.mpi.json" 3 || fail "stopped + --resume under MPI vs one uninterrupted process"
    [ ! -e "$work/r.mpi.json.partial" ] || fail "--resume left the partial table behind"
  else
    cat "$work/r.res.log"; fail "mpirun --resume"
  fi
fi

# 4. failures end every rank, with the message
#    a bad --data on rank 1 alone (mpirun's MPMD form gives each rank its own arguments)
ok_args=(calibrate models/tiny --data "$work/tiny.tokens" --samples 6 --seq 64 -o "$work/f1.json")
bad_args=(calibrate models/tiny --data "$work/missing.tokens" --samples 6 --seq 64 -o "$work/f1.json")
OMP_NUM_THREADS=1 timeout 300 mpirun --oversubscribe --allow-run-as-root -np 1 "$mxp" "${ok_args[@]}" : \
  -np 1 "$mxp" "${bad_args[@]}" > "$work/f1.log" 2>&1
rc=$?
{ [ $rc -ne 0 ] && [ $rc -ne 124 ]; } || fail "bad --data on rank 1: exit $rc (124: a rank was left waiting)"
grep -q "error (rank 1 of 2):.*missing.tokens" "$work/f1.log" || fail "bad --data on rank 1: no message naming the file: $(cat "$work/f1.log")"
[ ! -e "$work/f1.json" ] && [ ! -e "$work/f1.json.partial" ] || fail "bad --data on rank 1: a file was written"
#    -o in a folder that does not exist: only rank 0 checks it
mpi 2 calibrate models/tiny --data "$work/tiny.tokens" --samples 6 --seq 64 -o "$work/no/such/dir/s.json" > "$work/f2.log" 2>&1
rc=$?
{ [ $rc -ne 0 ] && [ $rc -ne 124 ]; } || fail "unwritable -o: exit $rc (124: a rank was left waiting)"
grep -q "no/such/dir" "$work/f2.log" || fail "unwritable -o: no message naming the path: $(cat "$work/f2.log")"
#    other commands refuse to run N times over
mpi 2 info models/tiny > "$work/f3.log" 2>&1
rc=$?
{ [ $rc -ne 0 ] && [ $rc -ne 124 ]; } || fail "info under mpirun -np 2: exit $rc"
grep -q "info runs in one process" "$work/f3.log" || fail "info under mpirun: no message: $(cat "$work/f3.log")"

if [ $fails -ne 0 ]; then
  echo "test_mpi: $fails failure(s)"
  exit 1
fi
echo "test_mpi: ok"
