#!/usr/bin/env bash
# check_trajectory.sh: training-trajectory parity with PyTorch (issue 3), model side.
#
# tests/reference/fixtures/trajectory/ holds PyTorch's first 20 Adam steps of Tutorial 5
# (784-1000-10, T = 25, batch 128) on Fashion-MNIST: initial weights, batch indices, losses.
# tests/e2e/trajcheck.c replays them through a model object with its own torch-exact Adam:
#   1. the hand-written C model (tests/e2e/handmade_model.c built as 784-1000-10): must pass;
#      this shows the fixture is reproducible by an independent float32 implementation;
#   2. the fixture's model.snn compiled by snnc (`--emit=obj`): must pass. A model snnc cannot
#      compile is a FAILURE unless SNN_E2E_ALLOW_MISSING_BACKEND=1 (then a loud SKIP).
#   3. the handmade model with a deliberate bug (HM_BUG=1, wrong surrogate): must FAIL;
#   4. the whole trainer of the product's example: `snnc examples/tutorial5.snn -o traj` (its
#      layers are named h and o like the fixture's), then `traj --init-from FIX --batch-order
#      FIX/batch_order.txt --epochs 1 --loss-log L` (the runtime's data path and Adam), L
#      compared with losses.txt by the same criterion. Same SKIP rule as 2;
#   5. the same trainer's evaluation: `traj --eval --init-from FIX --json` must give the test
#      accuracy PyTorch gives at the initial weights (meta test_accuracy_init, about a third of
#      the images tied: the tie rule) to within 5 images of 10000.
# Criterion (trajcheck's defaults): first 3 losses within 1e-3 relative, all 20 within 2 %;
# see trajcheck.c for why not the first 10 (float32 rounding makes the trajectory chaotic).
# Needs the Fashion-MNIST files (Debian dataset-fashion-mnist; build.sh installs it).
# Takes about 5 s per model on one core. Env: SNNC, LIBSNNRT, FASHION_MNIST (data dir),
# TRAINER_SNN (default examples/tutorial5.snn).
set -uo pipefail
cd "$(dirname "$0")/../.."
SNNC=${SNNC:-build/snnc}
LIBSNNRT=${LIBSNNRT:-build/libsnnrt.a}
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
CC=${CC:-cc}
FIX=tests/reference/fixtures/trajectory
CFLAGS="-std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Iruntime"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0; skipped=0

if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -f "$DATA/train-images-idx3-ubyte" ]; then
  echo "check_trajectory: FAIL: Fashion-MNIST not found in $DATA (install dataset-fashion-mnist)"; exit 1
fi
$CC $CFLAGS -c tests/e2e/trajcheck.c -o "$tmp/trajcheck.o" || { echo "check_trajectory: FAIL: trajcheck.c does not compile"; exit 1; }

echo "--- handmade C model (independent float32 implementation)"
if $CC $CFLAGS -DHM_IN=784 -DHM_HID=1000 -DHM_OUT=10 -c tests/e2e/handmade_model.c -o "$tmp/hm.o" &&
   $CC -o "$tmp/traj_hm" "$tmp/trajcheck.o" "$tmp/hm.o" -lz -lm; then
  "$tmp/traj_hm" --quiet --data "$DATA" "$FIX" || fail=1
else echo "FAIL: handmade trajectory model does not build"; fail=1; fi

echo "--- handmade C model with a wrong surrogate (HM_BUG=1): must FAIL"
if $CC $CFLAGS -DHM_BUG=1 -DHM_IN=784 -DHM_HID=1000 -DHM_OUT=10 -c tests/e2e/handmade_model.c -o "$tmp/bug.o" &&
   $CC -o "$tmp/traj_bug" "$tmp/trajcheck.o" "$tmp/bug.o" -lz -lm; then
  "$tmp/traj_bug" --quiet --data "$DATA" "$FIX" > "$tmp/bug.out"; rc=$?
  if [ $rc -eq 1 ]; then echo "  ok: caught ($(grep -c FAIL "$tmp/bug.out") failing lines)"
  else echo "FAIL: the buggy model exited $rc, expected 1"; cat "$tmp/bug.out"; fail=1; fi
else echo "FAIL: buggy handmade model does not build"; fail=1; fi

echo "--- snnc: $FIX/model.snn"
if [ ! -x "$SNNC" ] || ! "$SNNC" "$FIX/model.snn" --emit=obj -o "$tmp/model.o" > "$tmp/snnc.out" 2>&1; then
  [ -x "$SNNC" ] || echo "$SNNC does not exist (run make)" > "$tmp/snnc.out"
  if [ "${SNN_E2E_ALLOW_MISSING_BACKEND:-0}" = 1 ]; then
    echo "################################################################################"
    echo "## SKIPPED (SNN_E2E_ALLOW_MISSING_BACKEND=1): snnc cannot compile $FIX/model.snn"
    echo "## trajectory parity of snnc-compiled code is NOT being checked"
    echo "################################################################################"
    sed 's/^/   | /' "$tmp/snnc.out" | head -20; skipped=1
  else
    echo "FAIL: snnc cannot compile $FIX/model.snn:"; sed 's/^/   | /' "$tmp/snnc.out" | head -40; fail=1
  fi
elif [ ! -f "$LIBSNNRT" ]; then echo "FAIL: $LIBSNNRT is missing (run make)"; fail=1
elif ! $CC -o "$tmp/traj_snnc" "$tmp/trajcheck.o" "$tmp/model.o" "$LIBSNNRT" -lopenblas -lz -lm -fopenmp > "$tmp/ld.out" 2>&1; then
  echo "FAIL: link failed:"; sed 's/^/   | /' "$tmp/ld.out" | head -40; fail=1
else
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$tmp/traj_snnc" --data "$DATA" "$FIX" || fail=1
fi
TRAINER_SNN=${TRAINER_SNN:-examples/tutorial5.snn}
echo "--- snnc trainer: $TRAINER_SNN -o traj; traj --init-from --batch-order --loss-log"
if [ ! -x "$SNNC" ] || ! "$SNNC" "$TRAINER_SNN" -o "$tmp/traj" > "$tmp/snnc.out" 2>&1; then
  [ -x "$SNNC" ] || echo "$SNNC does not exist (run make)" > "$tmp/snnc.out"
  if [ "${SNN_E2E_ALLOW_MISSING_BACKEND:-0}" = 1 ]; then
    echo "## SKIPPED (SNN_E2E_ALLOW_MISSING_BACKEND=1): snnc cannot build the trainer; trainer trajectory NOT checked"
    skipped=1
  else
    echo "FAIL: snnc cannot build a trainer from $TRAINER_SNN:"; sed 's/^/   | /' "$tmp/snnc.out" | head -40; fail=1
  fi
else
  # the same criterion as trajcheck: first 3 within 1e-3, all within 2 %; on one thread, and on
  # two (the batch as two row blocks, runtime/snnrt_shard.c: the same mathematics, other sums)
  for th in 1 2; do
    if ! "$tmp/traj" --data "$DATA" --init-from "$FIX" --batch-order "$FIX/batch_order.txt" \
         --epochs 1 --steps 25 --batch 128 --threads $th --progress 0 \
         --loss-log "$tmp/losses$th.txt" > "$tmp/train.out" 2>&1; then
      echo "FAIL: the trainer failed (--threads $th):"; tail -20 "$tmp/train.out" | sed 's/^/   | /'
      fail=1; continue
    fi
    if awk -v first=3 -v tf=1e-3 -v ta=0.02 -v th=$th '
         NR == FNR { want[FNR - 1] = $1; n = FNR; next }
         { got[FNR - 1] = $1; m = FNR }
         END {
           if (m != n) { printf "FAIL: the trainer logged %d losses, the fixture has %d\n", m, n; exit 1 }
           bad = 0
           for (i = 0; i < n; i++) {
             r = got[i] - want[i]; if (r < 0) r = -r; r /= (want[i] < 0 ? -want[i] : want[i])
             tol = i < first ? tf : ta
             if (!(r <= tol)) { bad = 1; printf "  FAIL step %2d loss %s want %s rel %.2e (tol %g)\n", i, got[i], want[i], r, tol }
             if (r > worst) worst = r
           }
           printf "  trainer trajectory, %d thread(s): %s (worst relative error %.2e)\n", th, bad ? "FAIL" : "PASS", worst
           exit bad
         }' "$FIX/losses.txt" "$tmp/losses$th.txt"; then :; else fail=1; fi
  done
fi

if [ -x "$tmp/traj" ]; then
  echo "--- snnc trainer: --eval --init-from (rate accuracy at the initial weights)"
  want=$(sed -n 's/^test_accuracy_init = //p' "$FIX/meta.txt")
  if ! "$tmp/traj" --eval --data "$DATA" --init-from "$FIX" --threads 1 --json > "$tmp/eval.out" 2>&1; then
    echo "FAIL: --eval failed:"; tail -20 "$tmp/eval.out" | sed 's/^/   | /'; fail=1
  else
    got=$(tail -1 "$tmp/eval.out" | sed -n 's/.*"test_accuracy": \([0-9.e+-]*\).*/\1/p')
    if awk -v g="$got" -v w="$want" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(g != "" && d <= 0.0005) }'; then
      echo "  ok: test accuracy $got, PyTorch $want"
    else echo "FAIL: test accuracy at the initial weights: trainer '$got', PyTorch $want"; fail=1; fi
  fi
fi

[ $fail -eq 0 ] && echo "check_trajectory: ok$([ $skipped = 1 ] && echo ' (snnc part SKIPPED)')"
exit $fail
