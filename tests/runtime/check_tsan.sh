#!/usr/bin/env bash
# check_tsan.sh: the runtime's threads under ThreadSanitizer.
#
# Builds the unit tests with gcc -fsanitize=thread into build/tsan/ (the whole tree: the shard
# tests compile models through the JIT) and runs the suites that start threads: the worker
# pool (runtime_pool) and the row blocks with their team's barrier and joint products
# (runtime_shard: 2 and 3 threads, the joint x W^T and acc^T x, a second run for the same
# bits), and the optimizer (runtime_optim: chunks from a shared counter, a side task on one of
# the step's threads). Fails on any failed assertion or any ThreadSanitizer report. The JIT-compiled model
# code is not instrumented; the runtime around it is.
#   tests/runtime/check_tsan.sh     (run by tests/run.sh)
set -uo pipefail
cd "$(dirname "$0")/../.."
B=build/tsan
if ! echo 'int main(void){return 0;}' | gcc -fsanitize=thread -x c - -o /tmp/snn_tsan_probe.$$ 2>/dev/null; then
  echo "check_tsan: gcc -fsanitize=thread does not link (libtsan missing; ./build.sh installs it)"
  exit 1
fi
rm -f /tmp/snn_tsan_probe.$$
echo "check_tsan: building $B/unit_tests"
if ! CFLAGS="-O1 -g" make -s -j2 B="$B" CC="gcc -fsanitize=thread" "$B/unit_tests" >"$B.log" 2>&1; then
  tail -20 "$B.log"
  echo "check_tsan: build failed"
  exit 1
fi
fail=0
for suite in runtime_pool runtime_shard runtime_optim; do
  log=$B/$suite.log
  TSAN_OPTIONS="halt_on_error=0 exitcode=66" "$B/unit_tests" "$suite" >"$log" 2>&1
  rc=$?
  races=$(grep -c "WARNING: ThreadSanitizer" "$log")
  if [ "$rc" -ne 0 ] || [ "$races" -ne 0 ]; then
    grep -A20 "WARNING: ThreadSanitizer" "$log" | head -60
    grep -E "asserts|FAIL" "$log"
    echo "  FAIL: $suite under ThreadSanitizer (exit $rc, $races reports)"
    fail=1
  else
    echo "  ok: $suite under ThreadSanitizer ($(grep -E '^ +asserts' "$log" | awk '{print $3}') asserts, no reports)"
  fi
done
exit $fail
