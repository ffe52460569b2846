#!/usr/bin/env bash
# check_tutorial5.sh: the README's main job in small: compile examples/tutorial5.snn with snnc,
# train it for 30 iterations on Fashion-MNIST, and check that the run exits 0, ends with a JSON
# summary, and that the loss fell and stayed finite. Also checks that every --emit stage prints
# something readable and that the trainer rejects a bad flag with exit 2.
set -uo pipefail
cd "$(dirname "$0")/../.."
SNNC=${SNNC:-build/snnc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "check_tutorial5: FAIL: $*"; exit 1; }

t0=$(date +%s.%N)
"$SNNC" examples/tutorial5.snn -o "$tmp/train" || fail "snnc could not compile examples/tutorial5.snn"
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "compile time: %.2f s\n", b - a }'

"$tmp/train" --max-iters 30 --threads 2 --json > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err"; fail "trainer exited non-zero"; }
json=$(tail -n 1 "$tmp/out")
echo "$json"
python_free_get() { echo "$json" | sed -n "s/.*\"$1\": *\([-0-9.eE+a-z]*\).*/\1/p"; }
first=$(python_free_get first_loss); last=$(python_free_get last_loss); acc=$(python_free_get test_accuracy)
iters=$(python_free_get iters)
[ -n "$first" ] && [ -n "$last" ] && [ -n "$acc" ] || fail "JSON summary lacks first_loss/last_loss/test_accuracy"
[ "$iters" = 30 ] || fail "expected 30 iterations, got '$iters'"
awk -v f="$first" -v l="$last" 'BEGIN { exit !(l == l && l < 0.8 * f) }' || fail "loss did not fall: first $first, last $last"
awk -v a="$acc" 'BEGIN { exit !(a > 0.3) }' || fail "test accuracy $acc after 30 iterations is not above chance"

# --profile at 2 threads: the table before the JSON line, a column per row block, the joint
# products' phases in it, and each block's forward_backward within the iteration's wall clock
"$tmp/train" --max-iters 20 --threads 2 --profile --json > "$tmp/prof" 2> "$tmp/err" || { cat "$tmp/err"; fail "trainer --profile exited non-zero"; }
grep -q '^profile: 20 training iterations, 2 row blocks' "$tmp/prof" || fail "--profile printed no table for 2 blocks: $(cat "$tmp/prof")"
tail -n 1 "$tmp/prof" | grep -q '^{' || fail "--profile: the JSON line is not last"
for label in "forward_backward" "joint products: tiles" "joint products: waiting for other threads" "optimizer step"; do
  grep -q "  $label" "$tmp/prof" || fail "--profile: no line '$label'"
done
it=$(sed -n 's/^  iteration (wall clock) *\([0-9.]*\)$/\1/p' "$tmp/prof")
read -r fb0 fb1 <<< "$(sed -n 's/^  forward_backward *\([0-9.]*\) *\([0-9.]*\)$/\1 \2/p' "$tmp/prof")"
awk -v i="$it" -v a="$fb0" -v b="$fb1" 'BEGIN { exit !(a > 0 && b > 0 && a < i && b < i) }' \
  || fail "--profile: forward_backward $fb0 / $fb1 us against an iteration of $it us"

for stage in tokens ast ir ir-grad llvm; do
  "$SNNC" examples/tutorial5.snn --emit=$stage > "$tmp/emit.$stage" 2>&1 || fail "--emit=$stage failed"
  [ -s "$tmp/emit.$stage" ] || fail "--emit=$stage printed nothing"
done
grep -q 'linear %x, %h.weight, %h.bias' "$tmp/emit.ir" || fail "--emit=ir does not show the input layer"
grep -q 'func backward' "$tmp/emit.ir-grad" || fail "--emit=ir-grad shows no backward function"
grep -q 'define.*forward_backward' "$tmp/emit.llvm" || fail "--emit=llvm has no forward_backward"

# codegen's plan: recompute in row tiles by default, the tape with -fno-recompute; the first
# losses of the two agree (the same mathematics; sums in another order)
"$SNNC" examples/tutorial5.snn --emit=loops > "$tmp/loops" || fail "--emit=loops failed"
grep -q 'in tiles of 32 rows' "$tmp/loops" || fail "--emit=loops shows no row tiles"
grep -q 'recomputes %h.sub.1' "$tmp/loops" || fail "--emit=loops: the membrane is not recomputed"
"$SNNC" examples/tutorial5.snn -fno-recompute --emit=loops > "$tmp/loops.tape" || fail "-fno-recompute --emit=loops failed"
grep -q 'recomputes' "$tmp/loops.tape" && fail "-fno-recompute still recomputes"
grep -q '%h.sub.1->tape' "$tmp/loops.tape" || fail "-fno-recompute: no membrane tape"
grep -q '16 rows in the lanes' "$tmp/loops" || fail "--emit=loops: forward's loop does not keep rows in its lanes"
grep -q '16 rows in the lanes' "$tmp/loops.tape" && fail "-fno-recompute: the taped membrane cannot be stored [N, B], yet rows are in the lanes"
"$SNNC" examples/tutorial5.snn -fno-recompute -o "$tmp/train.tape" || fail "snnc -fno-recompute failed"
"$tmp/train" --max-iters 5 --threads 1 --loss-log "$tmp/l1" > /dev/null 2>&1 || fail "trainer (recompute) failed"
"$tmp/train.tape" --max-iters 5 --threads 1 --loss-log "$tmp/l2" > /dev/null 2>&1 || fail "trainer (tape) failed"
paste "$tmp/l1" "$tmp/l2" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4 * $2) bad = 1 } END { exit bad }' \
  || fail "recompute and tape trainers disagree: $(paste "$tmp/l1" "$tmp/l2" | tr '\n' ' ')"

"$tmp/train" --no-such-flag > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "trainer: unknown flag gave exit $rc, expected 2"
"$SNNC" examples/tutorial5.snn --no-such-flag > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "snnc: unknown flag gave exit $rc, expected 2"
echo "check_tutorial5: ok (loss $first -> $last, test accuracy $acc after 30 iterations)"
