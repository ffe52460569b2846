#!/usr/bin/env bash
# snnc's one entry point. Installs any missing Debian package, then:
#   ./build.sh            build build/snnc, build/libsnnrt.a, build/unit_tests
#   ./build.sh test       build and run every fast test (add --slow for whole training runs,
#                         --update to rewrite golden files); exits non-zero if any fails
#   ./build.sh run        compile examples/tutorial5.snn and train it for one epoch on Fashion-MNIST
#   ./build.sh bench      run bench/run.sh (snnc against the PyTorch references)
#   ./build.sh clean
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential llvm-16-dev clang-16 libclang-rt-16-dev re2c bison libcunit1-dev
          zlib1g-dev libopenblas-dev dataset-fashion-mnist)

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "build.sh: installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  install_missing "${PACKAGES[@]}"
  make -s -j"$(nproc)" all
}

cmd=${1:-build}; shift || true
case "$cmd" in
  build) build ;;
  test)  build; exec tests/run.sh "$@" ;;
  run)
    build
    build/snnc examples/tutorial5.snn -o build/tutorial5
    exec build/tutorial5 --epochs 1 "$@" ;;
  bench) build; exec bench/run.sh "$@" ;;
  clean) make -s clean ;;
  *) echo "build.sh: unknown command '$cmd' (use: build, test, run, bench, clean)" >&2; exit 2 ;;
esac
