#!/usr/bin/env bash
# slow_gradient_variants.sh: every gradient fixture (tests/reference/fixtures/) against
# snnc-compiled code at -O0, -O2, with each codegen plan and each IR pass switched off in turn (-fno-PASS, the
# passes listed by `snnc --help`): optimized and unoptimized code must both match PyTorch to
# relative error <= 1e-4 (issue 4: passes leave loss and gradients unchanged). About 1 s per
# fixture and variant, so it runs only with tests/run.sh --slow.
set -uo pipefail
cd "$(dirname "$0")/../.."
SNNC=${SNNC:-build/snnc}
[ -x "$SNNC" ] || { echo "slow_gradient_variants: FAIL: $SNNC missing"; exit 1; }
# and codegen's plans switched off one at a time (-fno-recompute: the tape instead of row tiles)
variants="-O0;-O2;-fno-recompute;-fno-rec-merge;-fno-fuse-matmul;-fno-fuse-wgrad;-fno-time-inner;-fno-fuse-linear"
for p in $("$SNNC" --help 2>/dev/null | sed -n '/^passes/,$p' | awk 'NR > 1 && /^  [a-z]/ {print $1}'); do
  variants+=";-fno-$p"
done
echo "slow_gradient_variants: $variants"
SNNC_VARIANTS="$variants" exec bash tests/e2e/check_gradients.sh
