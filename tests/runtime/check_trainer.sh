#!/usr/bin/env bash
# check_trainer.sh: the runtime end to end, without the compiler.
#
# Links the hand-written toy model (tests/runtime/toy_model.c, softmax regression 784 -> 10)
# with build/libsnnrt.a into a trainer exactly as snnc links a generated object, and runs it on
# Fashion-MNIST (Debian's dataset-fashion-mnist) for a few dozen iterations: exit status, the
# JSON summary as the last line, the loss falling, determinism, plain and .gz data giving the
# same run, checkpoints (save, load, eval, corruption), --init-from, --batch-order, a NaN run,
# SIGINT (checkpoint, exit 130),
# an ABI mismatch, and the error cases (missing data, bad flags, corrupt IDX files). Also
# builds tests/runtime/toy_gradcheck.c, a harness with its own main, to show the library links
# without the trainer's main and that the toy's gradient is right.
# Prints one line per case; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${SNN_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
CC=${CC:-cc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "  ok   $1"; }
bad() { fail=$((fail+1)); echo "  FAIL $1"; [ -n "${2:-}" ] && sed 's/^/       | /' "$2" | tail -n 8; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name" "$T/err"; fi; }

[ -f build/libsnnrt.a ] || make -s build/libsnnrt.a || { echo "check_trainer: cannot build build/libsnnrt.a"; exit 1; }
if [ ! -e "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -e "$DATA/train-images-idx3-ubyte" ]; then
  echo "check_trainer: no Fashion-MNIST in $DATA (install dataset-fashion-mnist)"; exit 1
fi
LIBS="build/libsnnrt.a -lopenblas -lz -lm -fopenmp"
CFL="-std=gnu11 -O2 -Wall -Wextra -Werror -Iruntime"
$CC $CFL tests/runtime/toy_model.c $LIBS -o "$T/toy" || { echo "check_trainer: toy trainer does not link"; exit 1; }
$CC $CFL -DTOY_ABI_VERSION=99 tests/runtime/toy_model.c $LIBS -o "$T/toy_abi99" || exit 1
$CC $CFL tests/runtime/toy_gradcheck.c tests/runtime/toy_model.c $LIBS -o "$T/gradcheck" || exit 1
TOY="$T/toy --threads 1"

lastline() { tail -n 1 "$1"; }
# json FIELD FILE: the numeric value of FIELD in the last line of FILE
json() { lastline "$2" | sed -n "s/.*\"$1\": \\([-0-9.eE+]*\\).*/\\1/p"; }
is_json() {
  local l; l=$(lastline "$1")
  case "$l" in "{"*"}") ;; *) return 1 ;; esac
  if command -v python3 >/dev/null; then printf '%s\n' "$l" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); [d[k] for k in ("test_accuracy","train_loss","epoch_seconds","iters")]' || return 1; fi
  for k in test_accuracy train_loss epoch_seconds iters; do printf '%s' "$l" | grep -q "\"$k\": " || return 1; done
}
mean() { awk -v a="$2" -v b="$3" 'NR>=a && NR<=b {s+=$1; n++} END {printf "%.6f", s/n}' "$1"; }

echo "check_trainer: toy model on $DATA"
check "gradient of the toy model (harness with its own main)" sh -c "'$T/gradcheck' > '$T/err' 2>&1"

# ---- a short training run
$TOY --data "$DATA" --max-iters 40 --json --progress 10 --loss-log "$T/loss1.txt" > "$T/out" 2> "$T/err"
rc=$?
check "exit 0 after --max-iters 40" [ "$rc" -eq 0 ]
check "last line is a JSON summary" is_json "$T/out"
check "JSON says 40 iterations" [ "$(json iters "$T/out")" = 40 ]
check "loss log has 40 lines" [ "$(wc -l < "$T/loss1.txt")" -eq 40 ]
first=$(mean "$T/loss1.txt" 1 5); last=$(mean "$T/loss1.txt" 36 40)
check "loss fell ($first -> $last)" awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < 0.7 * f) }'
acc=$(json test_accuracy "$T/out")
check "test accuracy $acc > 0.6" awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }'

# ---- threads: row blocks (snnrt_shard.c) give the same run up to float32 rounding
"$T/toy" --threads 2 --data "$DATA" --max-iters 40 --json --progress 0 --loss-log "$T/loss2.txt" \
  > "$T/out2" 2> "$T/err2"
check "--threads 2: exit 0, JSON" is_json "$T/out2"
check "--threads 2: says how the batch is split" grep -q "each batch runs as 2 row blocks of about 64 rows" "$T/out2"
check "--threads 2: first loss $(head -1 "$T/loss2.txt") = $(head -1 "$T/loss1.txt") to 1e-5" \
  awk -v a="$(head -1 "$T/loss2.txt")" -v b="$(head -1 "$T/loss1.txt")" \
  'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }'
acc2=$(json test_accuracy "$T/out2")
check "--threads 2: test accuracy $acc2 within 0.01 of $acc" \
  awk -v a="$acc2" -v b="$acc" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01) }'
check "progress lines with it/s and ETA on stderr" grep -q "iter 40/40 .*it/s  ETA" "$T/err"
check "epoch summary with train and test accuracy" grep -q "train acc .* test acc" "$T/out"
check "peak RSS reported" grep -q "peak RSS" "$T/out"

# ---- determinism, seeds, plain files
$TOY --data "$DATA" --max-iters 40 --progress 0 --loss-log "$T/loss2.txt" > /dev/null 2> "$T/err"
check "same seed, same losses" cmp -s "$T/loss1.txt" "$T/loss2.txt"
$TOY --data "$DATA" --max-iters 40 --progress 0 --seed 5 --loss-log "$T/loss3.txt" > /dev/null 2> "$T/err"
check "another seed, other losses" sh -c "! cmp -s '$T/loss1.txt' '$T/loss3.txt'"
mkdir "$T/plain"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ -e "$DATA/$f.gz" ]; then gzip -dc "$DATA/$f.gz" > "$T/plain/$f"; else cp "$DATA/$f" "$T/plain/$f"; fi
done
$TOY --data "$T/plain" --max-iters 40 --progress 0 --loss-log "$T/loss4.txt" > /dev/null 2> "$T/err"
check "plain IDX files give the same run as .gz" cmp -s "$T/loss1.txt" "$T/loss4.txt"

# ---- checkpoints
$TOY --data "$DATA" --max-iters 20 --save "$T/a.ckpt" --json --progress 0 > "$T/out" 2> "$T/err"
check "--save writes a checkpoint" [ -s "$T/a.ckpt" ]
$TOY --data "$DATA" --load "$T/a.ckpt" --eval --json > "$T/out2" 2> "$T/err"
check "--load --eval reproduces the test accuracy" [ "$(json test_accuracy "$T/out")" = "$(json test_accuracy "$T/out2")" ]
cp "$T/a.ckpt" "$T/b.ckpt"
printf '\x55' | dd of="$T/b.ckpt" bs=1 seek=5000 conv=notrunc status=none
$TOY --data "$DATA" --load "$T/b.ckpt" --eval > /dev/null 2> "$T/err"; rc=$?
check "corrupt checkpoint refused (exit 1, checksum)" sh -c "[ $rc -eq 1 ] && grep -q 'checksum mismatch' '$T/err'"

# ---- --init-from and --batch-order
mkdir "$T/zeros"
head -c $((7840 * 4)) /dev/zero > "$T/zeros/fc.weight.f32"
head -c 40 /dev/zero > "$T/zeros/fc.bias.f32"
printf '\x00\x00\x80\x3f' > "$T/zeros/fc.scale.f32"
$TOY --data "$DATA" --init-from "$T/zeros" --eval --json > "$T/out" 2> "$T/err"
tl=$(json test_loss "$T/out")
check "--init-from zeros: test loss ln 10 ($tl)" awk -v l="$tl" 'BEGIN { exit !(l > 2.302580 && l < 2.302590) }'
head -c 4 /dev/zero > "$T/zeros/fc.bias.f32"
$TOY --data "$DATA" --init-from "$T/zeros" --eval > /dev/null 2> "$T/err"; rc=$?
check "--init-from wrong size refused" sh -c "[ $rc -eq 1 ] && grep -q 'fc.bias.f32 has 4 bytes' '$T/err'"
awk 'BEGIN { for (b = 0; b < 3; b++) { s = ""; for (i = 0; i < 128; i++) s = s (i ? " " : "") (b * 1000 + i * 7); print s } }' > "$T/order.txt"
$TOY --data "$DATA" --batch-order "$T/order.txt" --json --loss-log "$T/loss5.txt" > "$T/out" 2> "$T/err"; rc=$?
check "--batch-order: 3 batches" sh -c "[ $rc -eq 0 ] && [ \"\$(wc -l < '$T/loss5.txt')\" -eq 3 ]"

# ---- NaN: a learning rate so large the logits overflow
$TOY --data "$DATA" --lr 1e38 --max-iters 30 --save "$T/n.ckpt" --save-every 1 --json --progress 0 > "$T/out" 2> "$T/err"; rc=$?
check "NaN loss: exit 3, iteration named" sh -c "[ $rc -eq 3 ] && grep -q 'training loss is .* at epoch 1, iteration [0-9]' '$T/err'"
check "NaN loss: last good checkpoint kept and loadable" sh -c "grep -q 'last good checkpoint' '$T/err' && $TOY --data '$DATA' --load '$T/n.ckpt' --eval > /dev/null 2>&1"
check "NaN loss: JSON status" grep -q '"status": "nonfinite_loss"' "$T/out"

# ---- SIGINT: stop after the current iteration, checkpoint, exit 130. The signal is sent once
# training has begun (the first progress line), not after a fixed delay: on a loaded machine
# start-up alone can outlast one, and a signal before main installs its handler just kills.
$TOY --data "$DATA" --epochs 100000 --save "$T/i.ckpt" --progress 1 > /dev/null 2> "$T/err" &
pid=$!
for _ in $(seq 600); do grep -q 'iter ' "$T/err" 2>/dev/null && break; sleep 0.1; done
kill -INT "$pid"; wait "$pid"; rc=$?
check "SIGINT: exit 130, checkpoint saved and loadable" sh -c "[ $rc -eq 130 ] && grep -q 'interrupted at epoch' '$T/err' && $TOY --data '$DATA' --load '$T/i.ckpt' --eval > /dev/null 2>&1"

# ---- errors
$T/toy_abi99 --data "$DATA" > /dev/null 2> "$T/err"; rc=$?
check "ABI version mismatch refused" sh -c "[ $rc -eq 1 ] && grep -q 'ABI version 99' '$T/err'"
$TOY --data "$T/nope" > /dev/null 2> "$T/err"; rc=$?
check "missing data dir: exit 1, path named" sh -c "[ $rc -eq 1 ] && grep -q '$T/nope' '$T/err'"
$TOY --bogus > /dev/null 2> "$T/err"; rc=$?
check "unknown flag: exit 2, flag named" sh -c "[ $rc -eq 2 ] && grep -q -- \"'--bogus'\" '$T/err'"
$TOY --epochs abc > /dev/null 2> "$T/err"; rc=$?
check "bad value: exit 2, flag named" sh -c "[ $rc -eq 2 ] && grep -q -- '--epochs' '$T/err'"
$TOY --lr > /dev/null 2> "$T/err"; rc=$?
check "missing value: exit 2" sh -c "[ $rc -eq 2 ] && grep -q -- '--lr needs a value' '$T/err'"
$TOY --help > "$T/out" 2> "$T/err"; rc=$?
check "--help: exit 0, lists flags and defaults" sh -c "[ $rc -eq 0 ] && grep -q -- '--max-iters N' '$T/out' && grep -q 'fashion-mnist' '$T/out'"

mkdir "$T/bad"
cp "$T/plain/"* "$T/bad/"
head -c 100000 "$T/plain/train-images-idx3-ubyte" > "$T/bad/train-images-idx3-ubyte"
$TOY --data "$T/bad" > /dev/null 2> "$T/err"; rc=$?
check "truncated IDX: exit 1, file named" sh -c "[ $rc -eq 1 ] && grep -q 'train-images-idx3-ubyte: truncated' '$T/err'"
rm "$T/bad/train-images-idx3-ubyte"
head -c 2000000 "$DATA/train-images-idx3-ubyte.gz" > "$T/bad/train-images-idx3-ubyte.gz" 2>/dev/null \
  || gzip -c "$T/plain/train-images-idx3-ubyte" | head -c 2000000 > "$T/bad/train-images-idx3-ubyte.gz"
$TOY --data "$T/bad" > /dev/null 2> "$T/err"; rc=$?
check "truncated .gz: exit 1, file named" sh -c "[ $rc -eq 1 ] && grep -q 'train-images-idx3-ubyte.gz: truncated' '$T/err'"
cp "$T/plain/train-images-idx3-ubyte" "$T/bad/"; rm "$T/bad/train-images-idx3-ubyte.gz"
printf '\x01' | dd of="$T/bad/train-labels-idx1-ubyte" bs=1 seek=0 conv=notrunc status=none
$TOY --data "$T/bad" > /dev/null 2> "$T/err"; rc=$?
check "wrong magic: exit 1, file named" sh -c "[ $rc -eq 1 ] && grep -q 'train-labels-idx1-ubyte: not an IDX file' '$T/err'"
cp "$T/plain/t10k-labels-idx1-ubyte" "$T/bad/train-labels-idx1-ubyte"
$TOY --data "$T/bad" > /dev/null 2> "$T/err"; rc=$?
check "image/label count mismatch: exit 1" sh -c "[ $rc -eq 1 ] && grep -q '60000 images but .* 10000 labels' '$T/err'"

echo "check_trainer: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
