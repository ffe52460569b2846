#!/usr/bin/env bash
# check_gradcheck_harness.sh: tests the gradient-check harness and cross-checks the fixtures,
# without the compiler.
#
# tests/e2e/handmade_model.c is a plain C forward/backward-through-time of the fixture network,
# written by hand. For every gradient fixture in tests/reference/fixtures/ it is compiled with
# the fixture's sizes and neuron settings (from meta.txt) and linked with tests/e2e/gradcheck.c:
#   - it must PASS: an implementation independent of PyTorch agrees with the PyTorch fixtures
#     in float32 (so the fixtures and the harness are right, and 1e-4 is a fair tolerance);
#   - built with a deliberate bug (HM_BUG=1 wrong surrogate, HM_BUG=2 reset not detached) it
#     must FAIL with exit status 1: the harness catches wrong gradients;
#   - run on a fixture with a truncated parameter file it must exit 2.
# Needs only a C compiler. Run by tests/run.sh (any tests/*/check_*.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
CFLAGS="-std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -Iruntime"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0; n=0

meta() { sed -n "s/^$2 *= *//p" "$1/meta.txt" | head -1; }   # meta DIR KEY (KEY is a regex: . matches .)

$CC $CFLAGS -c tests/e2e/gradcheck.c -o "$tmp/gradcheck.o" || { echo "FAIL: gradcheck.c does not compile"; exit 1; }

build_handmade() { # fixture_dir out_exe [extra -D flags]
  local d=$1 exe=$2; shift 2
  local defs="-DHM_IN=$(meta "$d" in) -DHM_HID=$(meta "$d" hidden) -DHM_OUT=$(meta "$d" out)"
  defs+=" -DHM_BETA=(float)$(meta "$d" beta) -DHM_THR=(float)$(meta "$d" threshold)"
  if [ "$(meta "$d" neuron)" = synaptic ]; then defs+=" -DHM_SYNAPTIC=1 -DHM_ALPHA=(float)$(meta "$d" alpha)"; fi
  if [ "$(meta "$d" learn_beta)" = h ]; then defs+=" -DHM_LEARN_BETA=1"; fi
  # shellcheck disable=SC2086
  $CC $CFLAGS $defs "$@" -c tests/e2e/handmade_model.c -o "$exe.o" &&
    $CC -o "$exe" "$tmp/gradcheck.o" "$exe.o" -lm
}

for d in tests/reference/fixtures/*/; do
  d=${d%/}
  [ -f "$d/meta.txt" ] && [ -f "$d/x.f32" ] || continue   # gradient fixtures only
  case=$(basename "$d")
  # the handmade model knows leaky and synaptic with reset by subtraction and the ATan surrogate,
  # direct input and the ce_membrane loss
  if [ "$(meta "$d" reset)" != subtract ] || [ "$(meta "$d" surrogate)" != atan ] ||
     [ "$(meta "$d" encoding)" != direct ] || [ "$(meta "$d" loss_fn | cut -d" " -f1)" != ce_membrane ] ||
     [ "$(meta "$d" neuron)" != "$(meta "$d" neuron.o)" ] ||
     { [ "$(meta "$d" neuron)" != leaky ] && [ "$(meta "$d" neuron)" != synaptic ]; }; then
    echo "  (not a handmade-model case: $case; checked against snnc only)"; continue
  fi
  n=$((n+1))
  if ! build_handmade "$d" "$tmp/hm_$case"; then echo "FAIL: handmade model for $case does not build"; fail=1; continue; fi
  if "$tmp/hm_$case" --quiet "$d"; then :; else echo "FAIL: handmade model disagrees with fixture $case"; fail=1; fi
  for bug in 1 2; do
    build_handmade "$d" "$tmp/bug${bug}_$case" -DHM_BUG=$bug || { fail=1; continue; }
    "$tmp/bug${bug}_$case" --quiet "$d" > "$tmp/out" 2>&1; rc=$?
    if [ $rc -eq 1 ]; then echo "  ok: HM_BUG=$bug on $case is caught ($(grep -c FAIL "$tmp/out") FAIL lines)"
    else echo "FAIL: HM_BUG=$bug on $case exited $rc, expected 1"; cat "$tmp/out"; fail=1; fi
  done
done
[ $n -gt 0 ] || { echo "FAIL: no gradient fixtures found"; exit 1; }

# A broken fixture (truncated parameter file) is an error of its own: exit 2.
d=tests/reference/fixtures/leaky_7_5_3_b4_t6
cp -r "$d" "$tmp/broken"
head -c 100 "$d/h.weight.f32" > "$tmp/broken/h.weight.f32"
"$tmp/hm_leaky_7_5_3_b4_t6" "$tmp/broken" > "$tmp/out" 2>&1; rc=$?
if [ $rc -eq 2 ] && grep -q "expected exactly 140 bytes" "$tmp/out"; then echo "  ok: truncated param file is rejected"
else echo "FAIL: truncated param file gave exit $rc"; cat "$tmp/out"; fail=1; fi
# An extra gradient the model does not have (h.beta for a model without it) is an error too.
cp -r "$d" "$tmp/extra"
cp "$d/h.bias.f32" "$tmp/extra/grad.h.beta.f32"
"$tmp/hm_leaky_7_5_3_b4_t6" "$tmp/extra" > "$tmp/out" 2>&1; rc=$?
if [ $rc -eq 2 ]; then echo "  ok: a fixture gradient the model lacks is rejected"
else echo "FAIL: extra fixture gradient gave exit $rc"; cat "$tmp/out"; fail=1; fi

if [ $fail -eq 0 ]; then echo "check_gradcheck_harness: $n fixtures agree with the handmade C model; bugs caught"; fi
exit $fail
