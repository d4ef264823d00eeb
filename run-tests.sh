#!/usr/bin/env bash
# run-tests.sh: install dependencies, then build and run the whole test suite three ways:
# release build (ctest), AddressSanitizer+UBSan build (ctest), and every libFuzzer target for a
# bounded time. The last line is "N passed, N failed" over all of it.
set -uo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }
export OMP_WAIT_POLICY=PASSIVE
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
passed=0; failed=0
tally() {  # tally LOGFILE: add ctest's counts
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of" "$1" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  local total fails; total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
  fails=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/')
  # a skipped test is not a pass: nothing in the suite may skip, so it counts as a failure
  local skips; skips=$(grep -c '\*\*\*Skipped' "$1" || true)
  passed=$((passed + total - fails - skips)); failed=$((failed + fails + skips))
}
run_suite() {  # run_suite NAME BUILD_DIR CMAKE_ARGS...
  local name=$1 dir=$2; shift 2
  echo "=== $name build ($dir)"
  if ! { cmake -S . -B "$dir" -G Ninja "$@" > "$dir.cmake.log" 2>&1 && ninja -C "$dir" > "$dir.build.log" 2>&1; }; then
    tail -n 40 "$dir.cmake.log" "$dir.build.log" 2>/dev/null; echo "$name: BUILD FAILED"; failed=$((failed + 1)); return
  fi
  echo "=== $name tests"
  (cd "$dir" && ctest --output-on-failure --timeout 1500) 2>&1 | tee "$dir.ctest.log"
  tally "$dir.ctest.log"
}
mkdir -p build-ci
run_suite release build-ci/release -DCMAKE_BUILD_TYPE=Release -DMXP_WERROR=ON
run_suite asan build-ci/asan -DCMAKE_BUILD_TYPE=Debug -DMXP_SANITIZE=ON -DMXP_WERROR=ON
echo "=== fuzz (${FUZZ_SECONDS}s per target)"
if CC=clang cmake -S . -B build-ci/fuzz -G Ninja -DMXP_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug > build-ci/fuzz.cmake.log 2>&1 \
   && ninja -C build-ci/fuzz > build-ci/fuzz.build.log 2>&1; then
  if bash fuzz/run.sh "$FUZZ_SECONDS" build-ci/fuzz > build-ci/fuzz.log 2>&1; then
    grep -E "^fuzz_.*exit" build-ci/fuzz.log; echo "fuzz: ok"; passed=$((passed + 1))
  else
    tail -n 60 build-ci/fuzz.log; echo "fuzz: FAILED"; failed=$((failed + 1))
  fi
else
  tail -n 40 build-ci/fuzz.build.log; echo "fuzz build FAILED"; failed=$((failed + 1))
fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
