#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages mixprec needs to build, test and regenerate its
# fixtures. Run as root (or with sudo available). Safe to run again.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
      libopenblas-openmp-dev libglpk-dev libcjson-dev
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
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
