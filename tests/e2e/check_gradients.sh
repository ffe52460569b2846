#!/usr/bin/env bash
# check_gradients.sh: gradient parity of snnc-compiled models with PyTorch (issue 3).
#
# For each fixture directory tests/reference/fixtures/<case>/ that has a model.snn:
#   build/snnc model.snn --emit=obj -o $tmp/<case>.o
#   cc tests/e2e/gradcheck.c $tmp/<case>.o build/libsnnrt.a -lopenblas -lz -lm -fopenmp
#   gradcheck <fixture dir>     (loss and every gradient to relative error <= 1e-4)
# The fixtures come from tests/reference/gen_fixtures.py (PyTorch, float64) and are
# committed; torch is not needed here.
#
# A model that snnc cannot compile is a FAILURE. Until the back end lands, setting
# SNN_E2E_ALLOW_MISSING_BACKEND=1 turns that one failure into a loud SKIP (the integrator
# removes this escape once `--emit=obj` works). Harness and fixtures are tested without the
# compiler by tests/e2e/check_gradcheck_harness.sh.
#   SNNC_VARIANTS="-O0;-O2" (extra snnc flag sets, each checked)  GRADCHECK_VERBOSE=1 (every line)
#   SNNC=path (default build/snnc)  LIBSNNRT=path (default build/libsnnrt.a)  GRADCHECK_TOL=x (1e-4)
set -uo pipefail
cd "$(dirname "$0")/../.."
SNNC=${SNNC:-build/snnc}
CC=${CC:-cc}
LIBSNNRT=${LIBSNNRT:-build/libsnnrt.a}
TOL=${GRADCHECK_TOL:-1e-4}
ALLOW=${SNN_E2E_ALLOW_MISSING_BACKEND:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0; skip=0; failed=()

loud_skip() {
  echo "################################################################################"
  echo "## SKIPPED (SNN_E2E_ALLOW_MISSING_BACKEND=1): $*"
  echo "## gradient parity with PyTorch is NOT being checked for this case"
  echo "################################################################################"
}

if ! $CC -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Iruntime -c tests/e2e/gradcheck.c -o "$tmp/gradcheck.o"; then
  echo "check_gradients: FAIL: tests/e2e/gradcheck.c does not compile"; exit 1
fi

# SNNC_VARIANTS: ';'-separated sets of extra snnc flags, each checked (default: one, no flags);
# tests/e2e/slow_gradient_variants.sh runs -O0, -O2 and each pass switched off.
IFS=';' read -ra VARIANTS <<< "${SNNC_VARIANTS:-}"
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=("")
QUIET=--quiet; [ "${GRADCHECK_VERBOSE:-0}" = 1 ] && QUIET=

for d in tests/reference/fixtures/*/; do
  d=${d%/}
  [ -f "$d/model.snn" ] && [ -f "$d/x.f32" ] || continue   # gradient fixtures (not trajectory/)
  for v in "${VARIANTS[@]}"; do
  case=$(basename "$d")${v:+ [$v]}
  echo "--- $case"
  # shellcheck disable=SC2086
  if [ ! -x "$SNNC" ] || ! "$SNNC" "$d/model.snn" $v --emit=obj -o "$tmp/m.o" > "$tmp/snnc.out" 2>&1; then
    [ -x "$SNNC" ] || echo "$SNNC does not exist (run make)" > "$tmp/snnc.out"
    if [ "$ALLOW" = 1 ]; then
      loud_skip "$case: snnc cannot compile $d/model.snn"; sed 's/^/   | /' "$tmp/snnc.out" | head -20
      skip=$((skip+1)); continue
    fi
    echo "FAIL: $case: snnc cannot compile $d/model.snn:"; sed 's/^/   | /' "$tmp/snnc.out" | head -40
    fail=$((fail+1)); failed+=("$case"); continue
  fi
  if [ ! -f "$LIBSNNRT" ]; then
    echo "FAIL: $case: $LIBSNNRT is missing (run make)"; fail=$((fail+1)); failed+=("$case"); continue
  fi
  if ! $CC -o "$tmp/gc" "$tmp/gradcheck.o" "$tmp/m.o" "$LIBSNNRT" -lopenblas -lz -lm -fopenmp > "$tmp/ld.out" 2>&1; then
    echo "FAIL: $case: link failed:"; sed 's/^/   | /' "$tmp/ld.out" | head -40
    fail=$((fail+1)); failed+=("$case"); continue
  fi
  if OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$tmp/gc" $QUIET --tol "$TOL" "$d"; then pass=$((pass+1))
  else fail=$((fail+1)); failed+=("$case"); fi
  done
done

total=$((pass+fail+skip))
[ $total -gt 0 ] || { echo "check_gradients: FAIL: no fixture has a model.snn"; exit 1; }
echo "check_gradients: $pass passed, $fail failed, $skip SKIPPED of $total fixture builds${failed:+ (failed: ${failed[*]})}"
[ $skip -gt 0 ] && echo "check_gradients: WARNING: $skip fixtures SKIPPED because snnc could not compile them (SNN_E2E_ALLOW_MISSING_BACKEND=1)"
[ $fail -eq 0 ]
