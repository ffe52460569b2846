#!/usr/bin/env bash
# check_torch_init.sh: the trainer starts where PyTorch starts, for the same seed.
#
# tests/reference/fixtures/trajectory holds torch.manual_seed(0) + nn.Linear(784,1000) +
# nn.Linear(1000,10) (tests/reference/gen_fixtures.py; the same construction as
# bench/reference_tutorial5.py) and the first 20 batches of randperm(60000) of a generator
# seeded 1 (the reference's order for seed 0). The trainer of examples/tutorial5.snn, run with
# --seed 0 --dump-init DIR (write the initial parameters and the first epoch's order, then
# stop: no training), must give exactly those bytes: every parameter file, and the first 20 of
# its 468 batches (drop-last). Also: --seed 2^32 is --seed 0 (torch keeps the low 32 bits),
# --seed 1 differs, --batch-order is dumped as given, a missing DIR is an error naming it.
# Needs build/snnc and the Fashion-MNIST files; about a second per trainer run.
set -uo pipefail
cd "$(dirname "$0")/../.."
SNNC=${SNNC:-build/snnc}
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
FIX=tests/reference/fixtures/trajectory
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "  ok   $1"; }
bad() { fail=$((fail+1)); echo "  FAIL $1"; [ -n "${2:-}" ] && sed 's/^/       | /' "$2" | tail -n 8; }

if [ ! -e "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -e "$DATA/train-images-idx3-ubyte" ]; then
  echo "check_torch_init: no Fashion-MNIST in $DATA (install dataset-fashion-mnist)"; exit 1
fi
"$SNNC" examples/tutorial5.snn -o "$T/train" 2> "$T/err" || { bad "snnc compiles examples/tutorial5.snn" "$T/err"; exit 1; }
dump() { # dump DIR FLAGS...: the trainer's starting point into DIR
  local d=$1; shift; mkdir -p "$d"
  "$T/train" --data "$DATA" --threads 1 --progress 0 --dump-init "$d" "$@" > "$T/out" 2> "$T/err"
}
same_params() { # same_params DIR_A DIR_B: the same .f32 files, byte for byte
  local a=$1 b=$2 f
  [ "$(cd "$a" && ls *.f32)" = "$(cd "$b" && ls *.f32)" ] || return 1
  for f in "$a"/*.f32; do cmp -s "$f" "$b/$(basename "$f")" || return 1; done
}

if dump "$T/s0" --seed 0; then ok "--dump-init runs (seed 0)"; else bad "--dump-init runs (seed 0)" "$T/err"; fi
for p in h.weight h.bias o.weight o.bias; do
  if cmp "$T/s0/$p.f32" "$FIX/$p.f32" > "$T/err" 2>&1; then ok "seed 0: $p = torch's, bit for bit"
  else bad "seed 0: $p = torch's, bit for bit" "$T/err"; fi
done
if same_params "$T/s0" "$FIX"; then ok "seed 0: the parameter set is the fixture's"; else bad "seed 0: the parameter set is the fixture's"; fi
n=$(wc -l < "$T/s0/batch_order.txt" 2>/dev/null || echo 0)
if [ "$n" = 468 ]; then ok "epoch order: 468 batches of 128"; else bad "epoch order: 468 batches of 128 (got $n lines)"; fi
if head -n 20 "$T/s0/batch_order.txt" | cmp -s - "$FIX/batch_order.txt"; then
  ok "seed 0: first 20 batches = torch.randperm of Generator().manual_seed(1)"
else bad "seed 0: first 20 batches = torch.randperm of Generator().manual_seed(1)"; fi
if sort -n <(tr ' ' '\n' < "$T/s0/batch_order.txt") | uniq -d | grep -q .; then
  bad "epoch order: no example twice"; else ok "epoch order: no example twice"; fi

dump "$T/s32" --seed 4294967296 || bad "--dump-init runs (seed 2^32)" "$T/err"
if same_params "$T/s32" "$T/s0" && cmp -s "$T/s32/batch_order.txt" "$T/s0/batch_order.txt"; then
  ok "seed 2^32 = seed 0 (torch seeds MT19937 with the low 32 bits)"
else bad "seed 2^32 = seed 0 (torch seeds MT19937 with the low 32 bits)"; fi
dump "$T/s1" --seed 1 || bad "--dump-init runs (seed 1)" "$T/err"
if ! cmp -s "$T/s1/h.weight.f32" "$T/s0/h.weight.f32" && ! cmp -s "$T/s1/batch_order.txt" "$T/s0/batch_order.txt"; then
  ok "seed 1: other weights, other order"
else bad "seed 1: other weights, other order"; fi

dump "$T/bo" --seed 0 --batch-order "$FIX/batch_order.txt" || bad "--dump-init with --batch-order runs" "$T/err"
if cmp -s "$T/bo/batch_order.txt" "$FIX/batch_order.txt"; then ok "--batch-order is dumped as given"
else bad "--batch-order is dumped as given"; fi

"$T/train" --data "$DATA" --progress 0 --dump-init "$T/missing/dir" > "$T/out" 2> "$T/err"
rc=$?
if [ "$rc" = 1 ] && grep -q "$T/missing/dir" "$T/err"; then ok "--dump-init into a missing directory: exit 1, names it"
else bad "--dump-init into a missing directory: exit 1, names it (rc $rc)" "$T/err"; fi

echo "check_torch_init: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
