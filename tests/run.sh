#!/usr/bin/env bash
# Runs every test tier and prints one closing line "tests: N passed, N failed".
#   tests/run.sh [--slow] [--update]
# Tiers (each found by scanning folders, so adding a case is adding a file):
#   unit      build/unit_tests (CUnit, tests/unit/test_*.c)
#   golden    tests/golden.sh (tests/parse, tests/errors, tests/ir)
#   checks    every tests/*/check_*.sh (end to end, fixtures, fuzz); those named
#             slow_*.sh run only with --slow
set -uo pipefail
cd "$(dirname "$0")/.."
export SNN_SLOW=0 SNN_UPDATE=0
for a in "$@"; do
  case "$a" in
    --slow) SNN_SLOW=1 ;;
    --update) SNN_UPDATE=1 ;;
    *) echo "tests/run.sh: unknown flag '$a' (use --slow, --update)" >&2; exit 2 ;;
  esac
done
passed=0; failed=0; failures=()
run_tier() {
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then passed=$((passed+1)); echo "--- $name: ok ($((SECONDS-t0)) s)"
  else failed=$((failed+1)); failures+=("$name"); echo "--- $name: FAILED ($((SECONDS-t0)) s)"; fi
}
run_tier unit build/unit_tests
run_tier golden tests/golden.sh
for s in tests/*/check_*.sh; do [ -e "$s" ] && run_tier "$s" bash "$s"; done
if [ "$SNN_SLOW" = 1 ]; then
  for s in tests/*/slow_*.sh; do [ -e "$s" ] && run_tier "$s" bash "$s"; done
fi
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
