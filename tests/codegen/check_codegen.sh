#!/usr/bin/env bash
# check_codegen.sh: the back end alone against PyTorch. For each leaky gradient fixture in
# tests/reference/fixtures/, the hand-built Tutorial 5 IR of the same sizes, beta and threshold
# (tests/unit/ir_fixtures.h) goes through autodiff and codegen to an object (emit_fixture.c),
# which is linked with tests/e2e/gradcheck.c and build/libsnnrt.a and checked: loss and every
# gradient to relative error <= 1e-4, spike counts exact. Both -O0 and -O3 code, and the
# hoisted variant (h.cur = linear(x) before the time loop). The front end is not involved, so
# a failure here is in IR, autodiff, codegen or the runtime's sgemm, not in parsing/lowering.
#   CC=cc  LLVM_CONFIG=llvm-config-16
set -uo pipefail
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
LLVM_CONFIG=${LLVM_CONFIG:-llvm-config-16}
for f in build/libsnnc.a build/libsnnrt.a; do
  [ -f "$f" ] || { echo "check_codegen: FAIL: $f is missing (run make)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CF="-std=gnu11 -O1 -Wall -Wextra -Wno-unused-parameter -Icompiler -Iruntime -Itests/unit"
if ! $CC $CF -o "$tmp/emit_fixture" tests/codegen/emit_fixture.c tests/unit/ir_fixtures.c \
      build/libsnnc.a $($LLVM_CONFIG --ldflags --libs) -lm; then
  echo "check_codegen: FAIL: emit_fixture does not build"; exit 1
fi
$CC -std=gnu11 -O2 -Iruntime -c tests/e2e/gradcheck.c -o "$tmp/gradcheck.o" || exit 1
pass=0; fail=0
meta() { sed -n "s/^$1 = //p" "$2/meta.txt"; }
for d in tests/reference/fixtures/leaky_*/; do
  d=${d%/}; case=$(basename "$d")
  args="$(meta in "$d") $(meta hidden "$d") $(meta out "$d") $(meta beta "$d") $(meta threshold "$d")"
  for variant in "-O 0" "-O 3" "-O 3 --hoisted"; do
    name="$case ($variant)"
    if ! "$tmp/emit_fixture" $variant $args "$tmp/m.o" > "$tmp/out" 2>&1 ||
       ! $CC -o "$tmp/gc" "$tmp/gradcheck.o" "$tmp/m.o" build/libsnnrt.a -lopenblas -lz -lm -fopenmp >> "$tmp/out" 2>&1; then
      echo "FAIL: $name: cannot build"; sed 's/^/   | /' "$tmp/out" | head -20; fail=$((fail+1)); continue
    fi
    if OMP_NUM_THREADS=1 "$tmp/gc" --quiet "$d" > "$tmp/out" 2>&1; then
      echo "ok: $name"; pass=$((pass+1))
    else
      echo "FAIL: $name"; sed 's/^/   | /' "$tmp/out" | head -30; fail=$((fail+1))
    fi
  done
done
# The 20-step Adam trajectory of the full 784-1000-10 network (tests/e2e/trajcheck.c), with
# h.cur hoisted out of the time loop, if Fashion-MNIST is installed.
traj=tests/reference/fixtures/trajectory
data=/usr/share/datasets/fashion-mnist
if [ -d "$data" ] && [ -f "$traj/losses.txt" ]; then
  if "$tmp/emit_fixture" --hoisted 784 1000 10 0.95 1 "$tmp/t5.o" > "$tmp/out" 2>&1 &&
     $CC -std=gnu11 -O2 -Iruntime -o "$tmp/tc" tests/e2e/trajcheck.c "$tmp/t5.o" build/libsnnrt.a \
         -lopenblas -lz -lm -fopenmp >> "$tmp/out" 2>&1 &&
     OMP_NUM_THREADS=1 "$tmp/tc" --quiet --data "$data" "$traj" >> "$tmp/out" 2>&1; then
    echo "ok: trajectory (784-1000-10, 20 Adam steps)"; pass=$((pass+1))
  else
    echo "FAIL: trajectory"; sed 's/^/   | /' "$tmp/out" | tail -30; fail=$((fail+1))
  fi
else
  echo "skip: trajectory ($data not installed)"
fi
echo "check_codegen: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
