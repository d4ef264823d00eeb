#!/usr/bin/env bash
# mpi_calibrate.sh BUILD_DIR [REPEATS] [MODEL] [DATA]: wall time and peak RSS of `mixprec
# calibrate MODEL --data DATA` (default models/default and its heldout.txt) in one process with
# 2 OpenMP threads against `mpirun -np 2` with 1 thread per process, runs interleaved, REPEATS
# (default 3) of each; prints every run, the medians and their ratio, and checks that the tables
# agree outside their provenance. Wall time is the whole command (model load, MPI start-up, the
# file); "pass" is the calibration pass alone as mixprec reports it (seconds= on its last line);
# peak RSS is /usr/bin/time -v's "Maximum resident set size" of each process (each MPI rank
# under a /usr/bin/time of its own), the largest over the runs.
# CALIB_ARGS replaces the sample settings (default "--samples 32 --seq 256"), e.g.
# CALIB_ARGS="--samples 4 --seq 256 --batch 2" for a large model. MPIRUN_FLAGS adds mpirun
# options (e.g. "--bind-to none": Open MPI binds each of 2 processes to one core by default).
set -euo pipefail
build=$1
reps=${2:-3}
model=${3:-models/default}
data=${4:-$model/heldout.txt}
mxp=$build/mixprec
work=$build/bench_mpi
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
read -r -a calib <<< "${CALIB_ARGS:---samples 32 --seq 256}"
args=(calibrate "$model" --data "$data" "${calib[@]}")
tv() {  # tv NAME: the command prefix that writes each process's /usr/bin/time -v report to NAME.RANK.time
  [ -x /usr/bin/time ] && printf '%s\n' bash -c '/usr/bin/time -v -o "$0.${OMPI_COMM_WORLD_RANK:-0}.time" "$@"' "$work/$1"
  return 0
}
run() {  # run NAME CMD...: prints "wall pass rss_kb..." (one peak RSS per process)
  local t0 t1 f rss=()
  t0=$(date +%s%N)
  rm -f "$work/$name".*.time
  if ! "$@" > "$work/$name.log" 2> "$work/$name.err"; then
    tail -n 5 "$work/$name.err" >&2
    echo "mpi_calibrate: the $name run failed" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  for f in "$work/$name".*.time; do
    [ -f "$f" ] && rss+=("$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$f")")
  done
  echo "$(( (t1 - t0) / 1000000 )) $(sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' "$work/$name.log") ${rss[*]:-}"
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
mb() { awk '{m = 0; for (i = 1; i <= NF; i++) {printf "%s%.0f MB", (i > 1 ? ", " : ""), $i / 1024}}'; }
: > "$work/one.txt"
: > "$work/mpi.txt"
echo "calibrate $model --data $data ${calib[*]}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
  mapfile -t pre < <(tv one)
  name=one; t=$(OMP_NUM_THREADS=2 run "${pre[@]}" "$mxp" "${args[@]}" -o "$work/one.json") || exit 1
  echo "$t" >> "$work/one.txt"
  read -r w p rss <<< "$t"
  echo "run $r  one process x 2 threads:   wall $w ms, pass $p s, peak RSS $(echo "$rss" | mb)  (load $(cut -d' ' -f1 /proc/loadavg))"
  mapfile -t pre < <(tv mpi)
  name=mpi; t=$(OMP_NUM_THREADS=1 run mpirun -np 2 --allow-run-as-root ${MPIRUN_FLAGS:-} "${pre[@]}" "$mxp" "${args[@]}" \
                -o "$work/mpi.json") || exit 1
  echo "$t" >> "$work/mpi.txt"
  read -r w p rss <<< "$t"
  echo "run $r  mpirun -np 2 x 1 thread:   wall $w ms, pass $p s, peak RSS per process $(echo "$rss" | mb)  (load $(cut -d' ' -f1 /proc/loadavg))"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
w1=$(cut -d' ' -f1 "$work/one.txt" | median); p1=$(cut -d' ' -f2 "$work/one.txt" | median)
w2=$(cut -d' ' -f1 "$work/mpi.txt" | median); p2=$(cut -d' ' -f2 "$work/mpi.txt" | median)
r1=$(cut -d' ' -f3- "$work/one.txt" | tr ' ' '\n' | sed '/^$/d' | sort -n | tail -n 1)
r2=$(cut -d' ' -f3- "$work/mpi.txt" | tr ' ' '\n' | sed '/^$/d' | sort -n | tail -n 1)
same=no
if cmp -s <(sed '/"provenance":/,/^\t},$/d' "$work/one.json") <(sed '/"provenance":/,/^\t},$/d' "$work/mpi.json"); then same=yes; fi
echo "mpi_calibrate: one_wall_ms=$w1 mpi_wall_ms=$w2 wall_ratio=$(awk -v a="$w1" -v b="$w2" 'BEGIN {printf "%.2f", a / b}')" \
     "one_pass_s=$p1 mpi_pass_s=$p2 pass_ratio=$(awk -v a="$p1" -v b="$p2" 'BEGIN {printf "%.2f", a / b}')" \
     "one_rss_mb=$(awk -v k="${r1:-0}" 'BEGIN {printf "%.0f", k / 1024}') mpi_rss_mb_per_process=$(awk -v k="${r2:-0}" 'BEGIN {printf "%.0f", k / 1024}')" \
     "same_table=$same"
