#!/usr/bin/env bash
# mpi_calibrate.sh BUILD_DIR [REPEATS] [MODEL]: wall time of `mixprec calibrate` (32 samples x 256
# tokens of MODEL's heldout.txt, default models/default) in one process with 2 OpenMP threads
# against `mpirun -np 2` with 1 thread per process, runs interleaved, REPEATS (default 3) of each;
# prints every run, the medians and their ratio, and checks that the tables agree outside
# their provenance. Wall time is the whole command (model load, MPI start-up, the file);
# "pass" is the calibration pass alone as mixprec reports it (seconds= on its last line).
# MPIRUN_FLAGS adds mpirun options (e.g. "--bind-to none": Open MPI binds each of 2 processes to
# one core by default).
set -euo pipefail
build=$1
reps=${2:-3}
model=${3:-models/default}
mxp=$build/mixprec
work=$build/bench_mpi
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
args=(calibrate "$model" --data "$model/heldout.txt" --samples 32 --seq 256)
run() {  # run NAME CMD...: prints "wall pass"
  local t0 t1
  t0=$(date +%s%N)
  if ! "$@" > "$work/$name.log" 2> "$work/$name.err"; then
    tail -n 5 "$work/$name.err" >&2
    echo "mpi_calibrate: the $name run failed" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 )) $(sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' "$work/$name.log")"
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
: > "$work/one.txt"
: > "$work/mpi.txt"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
  name=one; t=$(OMP_NUM_THREADS=2 run "$mxp" "${args[@]}" -o "$work/one.json") || exit 1; echo "$t" >> "$work/one.txt"
  echo "run $r  one process x 2 threads:   wall ${t% *} ms, pass ${t#* } s"
  name=mpi; t=$(OMP_NUM_THREADS=1 run mpirun -np 2 --allow-run-as-root ${MPIRUN_FLAGS:-} "$mxp" "${args[@]}" -o "$work/mpi.json") || exit 1
  echo "$t" >> "$work/mpi.txt"
  echo "run $r  mpirun -np 2 x 1 thread:   wall ${t% *} ms, pass ${t#* } s"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
w1=$(cut -d' ' -f1 "$work/one.txt" | median); p1=$(cut -d' ' -f2 "$work/one.txt" | median)
w2=$(cut -d' ' -f1 "$work/mpi.txt" | median); p2=$(cut -d' ' -f2 "$work/mpi.txt" | median)
same=no
if cmp -s <(sed '/"provenance":/,/^\t},$/d' "$work/one.json") <(sed '/"provenance":/,/^\t},$/d' "$work/mpi.json"); then same=yes; fi
echo "mpi_calibrate: one_wall_ms=$w1 mpi_wall_ms=$w2 wall_ratio=$(awk -v a="$w1" -v b="$w2" 'BEGIN {printf "%.2f", a / b}')" \
     "one_pass_s=$p1 mpi_pass_s=$p2 pass_ratio=$(awk -v a="$p1" -v b="$p2" 'BEGIN {printf "%.2f", a / b}') same_table=$same"
