#!/usr/bin/env bash
# test_stream.sh BUILD_DIR: `calibrate --stream on` (each batch block by block between the
# graph's cut nodes, every block's forward run again before its backward, its mapped weight
# pages released after use: docs/DESIGN.md 1.1, "Streaming") writes the sensitivity table of
# the in-memory pass (--stream off) byte for byte; the two files may differ only in the line
# of provenance.created (the time of writing). Cases:
#  - models/tiny (tied head) and models/default, --batch 2 over 3 samples (the last batch
#    short), the fisher metric, a k-quant in the cache and f8_e4m3's whole rows;
#  - bf16 and f16 Llamas from tools/make_llama.py and the bf16 one as a GGUF (weights read in
#    place from the mapping, released and read again), with --check (the check's report on
#    stdout the same too);
#  - stopped after one batch in memory (--stop-after), resumed streaming: the same table;
#  - the choice: --max-memory 1M streams, --max-memory 64G stays in memory (the line on stderr
#    says which); --max-memory with --stream on is refused; bad sizes are refused with a
#    message naming --max-memory and exit status 2, writing nothing;
#  - peak memory: on a bf16 Llama of 16 thin layers at --seq 512 --batch 2, where the
#    activations dominate (~0.3 GB in memory), the streaming run's peak RSS is below 0.7x the
#    in-memory run's (each measured alone as a child's ru_maxrss; the bound leaves room for the
#    noise of a busy machine: ~0.2x measured); and on one where the weights dominate (16
#    layers of bf16 weights, 16 tokens, --cache-mb 0), where only the weight release lowers it;
#  - Ctrl-C during a streamed batch stops after the segment it lands in.
set -euo pipefail
build=$1
mxp=$build/mixprec
work=$build/stream
rm -rf "$work"
mkdir -p "$work"
export OMP_WAIT_POLICY=PASSIVE
data=models/default/heldout.txt
fail=0

# calib NAME ARGS...: mixprec calibrate ARGS -o $work/NAME.json (stdout NAME.out, stderr NAME.err)
calib() {
  local name=$1
  shift
  "$mxp" calibrate "$@" -o "$work/$name.json" > "$work/$name.out" 2> "$work/$name.err" ||
    { cat "$work/$name.err"; echo "FAIL: $name: calibrate failed"; fail=1; return 1; }
}
# same A B: the tables byte for byte but the line of provenance.created
same() {
  local created=$'^\t\t"created":'
  if ! cmp <(grep -v "$created" "$work/$1.json") <(grep -v "$created" "$work/$2.json"); then
    echo "FAIL: $1.json and $2.json differ"; diff "$work/$1.json" "$work/$2.json" | head -20 || true; fail=1
  elif [ "$(grep -c "$created" "$work/$1.json")" != 1 ]; then
    echo "FAIL: $1.json: no single created line to leave out"; fail=1
  else
    echo "same table: $1 and $2 ($(wc -c < "$work/$1.json") bytes)"
  fi
}
# mode NAME WORD: the stderr line says streaming or in memory
mode() {
  grep -q "^calibrate: $2" "$work/$1.err" || { echo "FAIL: $1: no line saying '$2':"; cat "$work/$1.err"; fail=1; }
}

# 1. the fixtures, batches of 2 (3 samples: the last batch short)
for m in tiny default; do
  args=(models/$m --data models/$m/heldout.txt --samples 3 --seq 48 --batch 2 --fisher
        --formats f32,bf16,q8_0,q4_K,f8_e4m3)
  calib "$m.mem" "${args[@]}" --stream off && mode "$m.mem" "in memory (--stream off)"
  calib "$m.stream" "${args[@]}" --stream on && mode "$m.stream" "streaming block by block (--stream on)"
  same "$m.mem" "$m.stream"
done

# 2. bf16 and f16 models, and the bf16 one as a GGUF (q/k rows in llama.cpp's order), with the check
for type in bf16 f16; do
  /usr/bin/python3 tools/make_llama.py "$work/$type" --hidden 256 --layers 3 --heads 4 --kv-heads 2 --ffn 512 \
    --dtype $type --seed 3 > /dev/null
done
"$mxp" apply "$work/bf16" uniform:bf16 -o "$work/bf16.gguf" > /dev/null 2>&1 || { echo "FAIL: apply uniform:bf16"; fail=1; }
for m in bf16 f16 bf16.gguf; do
  args=("$work/$m" --data "$data" --samples 2 --seq 64 --check 3 --check-samples 2)
  calib "$m.mem" "${args[@]}" --stream off
  calib "$m.stream" "${args[@]}" --stream on
  same "$m.mem" "$m.stream"
  sed 's/ seconds=.*//' "$work/$m.mem.out" > "$work/$m.mem.report"
  sed 's/ seconds=.*//' "$work/$m.stream.out" > "$work/$m.stream.report"
  cmp -s "$work/$m.mem.report" "$work/$m.stream.report" && grep -q '^check: ' "$work/$m.mem.report" ||
    { echo "FAIL: $m: the check's report differs or is missing"; diff "$work/$m.mem.report" "$work/$m.stream.report" || true; fail=1; }
done

# 3. stopped in memory after one batch, resumed streaming
args=(models/tiny --data models/tiny/heldout.txt --samples 3 --seq 48 --batch 2 --fisher
      --formats f32,bf16,q8_0,q4_K,f8_e4m3)
if "$mxp" calibrate "${args[@]}" --stream off --stop-after 2 -o "$work/resumed.json" > /dev/null 2>&1; then
  echo "FAIL: --stop-after 2 did not stop"; fail=1
fi
[ -f "$work/resumed.json.partial" ] || { echo "FAIL: --stop-after 2 left no partial table"; fail=1; }
calib resumed "${args[@]}" --stream on --resume && same tiny.mem resumed

# 4. the choice, and bad input
small=(models/tiny --data models/tiny/heldout.txt --samples 2 --seq 32)
calib small "${small[@]}" --max-memory 1M && mode small "streaming block by block: in memory the activations"
calib huge "${small[@]}" --max-memory 64G && mode huge "in memory: activations and buffers"
calib default_rule "${small[@]}" && mode default_rule "in memory: .*(half of MemAvailable)"
same small huge
for bad in 0 -1 abc 12X 8GBx 1.5G "" 99999999999T; do
  if "$mxp" calibrate "${small[@]}" --max-memory "$bad" -o "$work/bad.json" > /dev/null 2> "$work/bad.err"; then
    echo "FAIL: --max-memory '$bad' was accepted"; fail=1
  else
    rc=$?
    [ $rc = 2 ] && grep -q -- "--max-memory" "$work/bad.err" ||
      { echo "FAIL: --max-memory '$bad': exit $rc, message: $(cat "$work/bad.err")"; fail=1; }
  fi
  [ ! -e "$work/bad.json" ] || { echo "FAIL: --max-memory '$bad' wrote a table"; fail=1; }
done
if "$mxp" calibrate "${small[@]}" --max-memory 1G --stream on -o "$work/bad.json" > /dev/null 2> "$work/bad.err"; then
  echo "FAIL: --max-memory with --stream on was accepted"; fail=1
fi
grep -q -- "--max-memory" "$work/bad.err" || { echo "FAIL: --max-memory with --stream on: $(cat "$work/bad.err")"; fail=1; }
if "$mxp" calibrate "${small[@]}" --stream maybe -o "$work/bad.json" > /dev/null 2> "$work/bad.err"; then
  echo "FAIL: --stream maybe was accepted"; fail=1
fi
grep -q -- "--stream" "$work/bad.err" || { echo "FAIL: --stream maybe: $(cat "$work/bad.err")"; fail=1; }

# 5. peak RSS where the activations dominate
/usr/bin/python3 tools/make_llama.py "$work/deep" --hidden 128 --layers 16 --heads 4 --kv-heads 2 --ffn 256 \
  --dtype bf16 --seed 4 > /dev/null
deep=("$work/deep" --data "$data" --samples 2 --seq 512 --batch 2 --formats f32,q8_0)
# peak NAME ARGS...: calibrate in a child, print its peak RSS in kB. (In an AddressSanitizer
# build the quarantine would keep up to 256 MB of freed blocks resident: it is turned off.)
peak() {
  local name=$1
  shift
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0 \
  /usr/bin/python3 - "$mxp" calibrate "$@" -o "$work/$name.json" <<'EOF' 2> "$work/$name.err"
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
if r.returncode:
    sys.exit("calibrate failed: exit %d" % r.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
EOF
}
# below_07 NAME WHAT ARGS...: the streaming run's peak RSS below 0.7x the in-memory run's, the
# tables the same
below_07() {
  local name=$1 what=$2 mem_kb stream_kb
  shift 2
  if mem_kb=$(peak "$name.mem" "$@" --stream off) && stream_kb=$(peak "$name.stream" "$@" --stream on); then
    same "$name.mem" "$name.stream"
    echo "peak RSS, $what: in memory $mem_kb kB, streaming $stream_kb kB"
    if [ $((stream_kb * 10)) -ge $((mem_kb * 7)) ]; then
      echo "FAIL: streaming peak RSS $stream_kb kB is not below 0.7x the in-memory $mem_kb kB"; fail=1
    fi
  else
    cat "$work/$name.mem.err" "$work/$name.stream.err" 2> /dev/null; echo "FAIL: the peak RSS runs failed"; fail=1
  fi
}
below_07 deep "16 layers, 2 x 512 tokens" "${deep[@]}"

# 6. peak RSS where the weights dominate (bf16, 16 layers, 16 tokens, no cache): streaming
#    releases each block's mapped pages, in memory they stay; below 0.7x as well. (Loading
#    hashes the file in 64 MiB pieces, so a streaming peak stays above ~64 MiB: the file is
#    0.2 GB to be well clear of that.)
/usr/bin/python3 tools/make_llama.py "$work/wide" --hidden 768 --layers 16 --heads 12 --kv-heads 3 --ffn 2048 \
  --dtype bf16 --seed 5 > /dev/null
wide=("$work/wide" --data "$data" --samples 2 --seq 16 --formats f32,q8_0 --cache-mb 0)
below_07 wide "16 layers of bf16 weights (a 0.2 GB file), 16 tokens" "${wide[@]}"

# 7. Ctrl-C in the middle of a streamed batch (one batch of 16 x 512 tokens, ~3 s here) stops
#    there, after the segment it is in, not at the batch's end: non-zero, says so, no table
"$mxp" calibrate "${deep[@]:0:3}" --samples 16 --seq 512 --batch 16 --formats f32,q8_0 --stream on \
  -o "$work/int.json" > /dev/null 2> "$work/int.err" &
pid=$!
for _ in $(seq 1500); do grep -q "forward 1/" "$work/int.err" 2> /dev/null && break; sleep 0.02; done
kill -INT $pid
rc=0
wait $pid || rc=$?
if [ $rc = 0 ] || ! grep -q "interrupted during a batch" "$work/int.err" || [ -e "$work/int.json" ] ||
   [ -e "$work/int.json.partial" ]; then
  echo "FAIL: Ctrl-C during a streamed batch: exit $rc, files: $(ls "$work" | grep '^int\.json' | tr '\n' ' ')"
  tr '\r' '\n' < "$work/int.err" | tail -3; fail=1
else
  echo "Ctrl-C during a streamed batch: stopped at $(tr '\r' '\n' < "$work/int.err" | grep -o 'forward [0-9]*/[0-9]*' | tail -1)"
fi

[ "$fail" = 0 ] || { echo "test_stream: FAILED"; exit 1; }
echo "test_stream: OK"
