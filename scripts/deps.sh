#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages mixprec needs to build, test and regenerate its
# fixtures. Run as root (or with sudo available). Safe to run again.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git
      libopenblas-openmp-dev libglpk-dev libcjson-dev libopenmpi-dev openmpi-bin
      clang libclang-rt-14-dev
      python3 python3-torch python3-numpy
      bible-kjv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm (tokenizer parity tests): Debian's packages unless a node with npm is
# already there (e.g. from another repository, whose nodejs conflicts with Debian's npm).
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# llama.cpp, the engine mixprec's GGUFs are deployed with, for the tests and benchmarks that
# make it the judge: node-llama-cpp (pinned) from npm gives its prebuilt CPU libraries and, in
# its git bundle, the matching llama.cpp source, from which llama-bench and llama-quantize are
# compiled against those libraries. Everything goes to build-deps/ (or $MXP_DEPS_DIR), never
# into the repository's tracked files.
NLC_VERSION=3.21.1
repo=$(cd "$(dirname "$0")/.." && pwd)
deps=${MXP_DEPS_DIR:-$repo/build-deps}
nlc=$deps/nlc
if ! node -e "process.exit(require('$nlc/node_modules/node-llama-cpp/package.json').version === '$NLC_VERSION' ? 0 : 1)" 2> /dev/null; then
  echo "installing node-llama-cpp $NLC_VERSION into $nlc" >&2
  rm -rf "$nlc" && mkdir -p "$nlc"
  echo '{"private": true}' > "$nlc/package.json"
  (cd "$nlc" && npm install -E --no-audit --no-fund --ignore-scripts --omit=optional \
      "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/linux-x64@$NLC_VERSION" >&2)
fi
libs=$nlc/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
src=$deps/llama.cpp
if [ ! -f "$src/tools/llama-bench/llama-bench.cpp" ]; then
  rm -rf "$src"
  git clone -q "$nlc/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$src" 2> /dev/null
fi
bin=$deps/bin
mkdir -p "$bin"
# The prebuilt ggml loads its CPU backend (one per instruction set, chosen at run time) from
# the executable's folder.
for f in "$libs"/libggml-cpu-*.so; do ln -sf "$f" "$bin/"; done
build_tool() {  # build_tool NAME SOURCE_DIR FILES...: compile a llama.cpp tool against the libraries
  local name=$1 dir=$2; shift 2
  [ -x "$bin/$name" ] && [ "$bin/$name" -nt "$src/$dir" ] && return 0
  echo "compiling $name (llama.cpp $(git -C "$src" describe --tags --always 2> /dev/null))" >&2
  local files=() f
  for f in "$@"; do files+=("$src/$dir/$f"); done
  g++ -O2 -DNDEBUG -std=c++17 -w -I"$src/include" -I"$src/ggml/include" -I"$src/common" -I"$src/$dir" \
      "${files[@]}" -o "$bin/$name.tmp" -L"$libs" -l:libllama.v0.4.0.so -l:libllama-common.so \
      -l:libggml.v0.4.0.so -l:libggml-base.so -Wl,-rpath,"$libs"
  mv "$bin/$name.tmp" "$bin/$name"
}
build_tool llama-bench tools/llama-bench llama-bench.cpp main.cpp
build_tool llama-quantize tools/quantize quantize.cpp main.cpp
