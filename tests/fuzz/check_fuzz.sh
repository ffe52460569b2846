#!/usr/bin/env bash
# Fuzzes the front end for a bounded time (issue 2): builds tests/fuzz/fuzz_frontend.c with
# libFuzzer, ASan and UBSan (clang-16) into build/fuzz/, runs it for SNN_FUZZ_SECONDS (30)
# seconds on a copy of tests/fuzz/corpus/ in a temporary folder, and fails on any crash,
# leak, undefined behaviour, timeout, or input rejected without a diagnostic.
#   tests/fuzz/check_fuzz.sh            (run by tests/run.sh)
#   SNN_FUZZ_SECONDS=600 tests/fuzz/check_fuzz.sh    a longer session
# A crashing input is kept as build/fuzz/crash-* ; replay it with build/fuzz/fuzz_frontend FILE.
set -euo pipefail
cd "$(dirname "$0")/../.."
CC=${SNN_FUZZ_CC:-clang-16}
SECONDS_TO_RUN=${SNN_FUZZ_SECONDS:-30}
if ! command -v "$CC" >/dev/null; then echo "check_fuzz: $CC not found (./build.sh installs it)"; exit 1; fi

# The generated lexer, parser and embedded stdlib come from the normal build.
make -s build/gen/lex.c build/gen/parse.c build/gen/stdlib_embed.c
mkdir -p build/fuzz
BIN=build/fuzz/fuzz_frontend
SRCS=(tests/fuzz/fuzz_frontend.c compiler/arena.c compiler/diag.c compiler/ast.c compiler/load.c
      compiler/sema.c build/gen/lex.c build/gen/parse.c build/gen/stdlib_embed.c)
stale=0
[ -x "$BIN" ] || stale=1
for s in "${SRCS[@]}" compiler/*.h build/gen/parse.h "$0"; do [ "$s" -nt "$BIN" ] && stale=1; done
if [ "$stale" = 1 ]; then
  echo "check_fuzz: building $BIN"
  "$CC" -g -O1 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-unused-function -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Icompiler -Ibuild/gen "${SRCS[@]}" -o "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
fi

# A dictionary from the one token table, so the fuzzer speaks the language's words.
DICT=build/fuzz/snn.dict
sed -n 's/^TOK([A-Z_]*, *"\([^"]*\)", *\(KEYWORD\|PUNCT\)).*/"\1"/p' compiler/tokens.def > "$DICT"
printf '"%s"\n' leaky synaptic rleaky atan fire detach heaviside linear clamp direct rate \
  ce_membrane adam subtract zero data steps batch epochs loss optimizer metric seed learn[n] \
  1e-3 .5 '\"' '#' >> "$DICT"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r tests/fuzz/corpus "$WORK/corpus"
echo "check_fuzz: fuzzing for ${SECONDS_TO_RUN} s ($(ls "$WORK/corpus" | wc -l) seeds)"
set +e
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$BIN" "$WORK/corpus" -max_total_time="$SECONDS_TO_RUN" -detect_leaks=1 -timeout=10 \
  -rss_limit_mb=2048 -max_len=4096 -dict="$DICT" -artifact_prefix=build/fuzz/ -print_final_stats=1 \
  > "$WORK/log" 2>&1
rc=$?
set -e
grep -E '^(#[0-9]+ *(DONE|INITED)|stat::number_of_executed_runs|stat::new_units_added)' "$WORK/log" | tail -4 || true
if [ $rc -ne 0 ]; then
  echo "check_fuzz: FAILED (exit $rc); the log ends:"
  tail -60 "$WORK/log"
  exit 1
fi
echo "check_fuzz: ok"
