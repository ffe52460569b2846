#!/usr/bin/env bash
# Golden-file tests, found by scanning folders (SNN_UPDATE=1 rewrites the expected files):
#   tests/parse/X.snn   snnc --emit=ast     must equal X.ast  (exit 0)
#   tests/errors/X.snn  snnc --check        stderr must equal X.err (exit 1)
#   tests/errors_lower/X.snn  snnc --emit=ir  stderr must equal X.err (exit 1): programs that
#                       pass --check but that the back end refuses (lowering diagnostics)
#   tests/ir/X.snn      snnc --emit=ir      must equal X.ir; --emit=ir-grad must equal X.irgrad
# Paths are relative to the repository root so diagnostics are stable.
set -uo pipefail
cd "$(dirname "$0")/.."
SNNC=${SNNC:-build/snnc}
pass=0; fail=0
check() { # check NAME EXPECTED-FILE WANT-RC CMD...   (compares stdout+stderr as the case says)
  local name=$1 expected=$2 want_rc=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "${SNN_UPDATE:-0}" = 1 ]; then printf '%s\n' "$out" > "$expected"; fi
  if [ "$rc" -ne "$want_rc" ]; then
    echo "FAIL $name: exit $rc, expected $want_rc"; printf '%s\n' "$out" | head -20; fail=$((fail+1)); return
  fi
  if [ ! -f "$expected" ]; then echo "FAIL $name: no $expected (run ./build.sh test --update)"; fail=$((fail+1)); return; fi
  if ! diff -u "$expected" <(printf '%s\n' "$out") > /tmp/golden.diff.$$; then
    echo "FAIL $name"; head -40 /tmp/golden.diff.$$; fail=$((fail+1))
  else pass=$((pass+1)); fi
  rm -f /tmp/golden.diff.$$
}
for f in tests/parse/*.snn; do [ -e "$f" ] || continue; check "$f" "${f%.snn}.ast" 0 $SNNC "$f" --emit=ast; done
for f in tests/errors/*.snn; do [ -e "$f" ] || continue; check "$f" "${f%.snn}.err" 1 $SNNC "$f" --check; done
for f in tests/errors_lower/*.snn; do [ -e "$f" ] || continue; check "$f" "${f%.snn}.err" 1 $SNNC "$f" --emit=ir; done
for f in tests/ir/*.snn; do
  [ -e "$f" ] || continue
  check "$f (ir)" "${f%.snn}.ir" 0 $SNNC "$f" --emit=ir
  check "$f (ir-grad)" "${f%.snn}.irgrad" 0 $SNNC "$f" --emit=ir-grad
done
echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
