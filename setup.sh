#!/usr/bin/env bash
# setup.sh: install dependencies, build mixprec, and run the main job on the bundled default
# model. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
ninja -C build
./build/mixprec info models/default | sed -n 1,6p
./build/mixprec optimize models/default --data models/default/heldout.txt \
    --workload decode:128 --max-ppl-increase 1% -o out
echo "report: out/report.html"
