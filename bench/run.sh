#!/usr/bin/env bash
# run.sh: the speed benchmark of issue 4 — snnc's Tutorial 5 trainer against two PyTorch
# references on the same machine, in one invocation (`./build.sh bench` runs it).
#
#   1. FMA peak: bench/fma_peak.c (-O2 -march=native), float32 GFLOP/s for each thread count;
#   2. snnc: build/snnc examples/tutorial5.snn -o build/tutorial5, then one epoch of
#      `build/tutorial5 --epochs 1 --threads N --seed S --json` for each thread count
#      (measured, not extrapolated; the fastest thread count is kept);
#   3. PyTorch references (bench/reference_tutorial5.py): (a) the tutorial's form, fc1(x) inside
#      the time loop, (b) fc1(x) hoisted by hand; each run for --iters (>= 50) timed training
#      iterations after 2 warm-up ones and EXTRAPOLATED to an epoch (468 iterations), for each
#      thread count; the faster thread count of each is kept;
#   Steps 1-3 run --repeat times (default 3), in rounds, so that every implementation meets the
#   same stretches of a shared host's speed (it drifts 10-50 % within minutes here); the table
#   keeps the fastest run of each and the highest FMA peak, and lists every run.
#   4. one table: seconds per epoch, ms per iteration, peak RSS, test accuracy, reference/snnc
#      ratios, and snnc's time as a multiple of the FLOP floor = (dense FLOPs of an epoch) /
#      (FMA peak at snnc's thread count). Dense FLOPs per iteration, B = 128, I = 784, H, O = 10:
#      fc1 forward and weight gradient once per batch (time-invariant input): 2 * 2*B*I*H;
#      fc2 forward, its weight gradient and the spike gradient at every step: 3 * 2*T*B*H*O.
#      (0.59 GFLOP per iteration, 0.28 TFLOP per epoch for Tutorial 5.)
#   With --scaling, the same for T = 25, 100, 400 (hidden 1000) and hidden 4000 (T = 25):
#   snnc with --steps T (a generated copy of the network for hidden 4000), --max-iters
#   5 x --scaling-iters (all timed, the first ones included), extrapolated; references at their best thread count, --scaling-iters
#   timed iterations (stated as fewer than 50 where so).
# The table is printed and appended to bench/RESULTS.md with the date and the command.
#
#   bench/run.sh [--iters 50] [--threads "1 2"] [--repeat 3] [--seed 0] [--scaling] [--scaling-iters 20]
#                [--ref-only] [--snnc-only] [--no-write] [--data DIR]
# Speed is a benchmark, never a test: nothing here fails on a slow result. Run it on an
# otherwise idle machine (several minutes; the tutorial-form reference at 2 threads is slow).
set -uo pipefail
cd "$(dirname "$0")/.."
ITERS=50; THREADS="1 2"; REPEAT=3; SEED=0; SCALING=0; SC_ITERS=20; RUN_REF=1; RUN_SNNC=1; WRITE=1
DATA=/usr/share/datasets/fashion-mnist; PY=${PYTHON:-/usr/bin/python3}; CC=${CC:-cc}
CMDLINE="bench/run.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --iters) ITERS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --scaling) SCALING=1; shift ;;
    --scaling-iters) SC_ITERS=$2; shift 2 ;;
    --ref-only) RUN_SNNC=0; shift ;;
    --snnc-only) RUN_REF=0; shift ;;
    --no-write) WRITE=0; shift ;;
    --data) DATA=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$ITERS" -ge 50 ] || echo "bench/run.sh: note: --iters $ITERS is below the 50 that issue 4 asks for" >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p build/bench
R="$tmp/results.jsonl"; : > "$R"
add() { # tag json-line
  "$PY" -c 'import json,sys; d=json.loads(sys.argv[2]); d["tag"]=sys.argv[1]; print(json.dumps(d))' "$1" "$2" >> "$R" 2>/dev/null ||
    echo "{\"tag\": \"$1\", \"failed\": true}" >> "$R"
}

[ "$REPEAT" -ge 1 ] 2>/dev/null || { echo "bench/run.sh: --repeat needs a count >= 1, got '$REPEAT'" >&2; exit 2; }
$CC -O2 -march=native -fopenmp bench/fma_peak.c -o build/bench/fma_peak || { echo "bench/run.sh: fma_peak does not build" >&2; exit 1; }

# 2. snnc
snnc_run() { # tag exe threads extra-args...
  local tag=$1 exe=$2 t=$3; shift 3
  echo "=== snnc $tag, $t thread(s): $exe --threads $t --seed $SEED --json $*" >&2
  if "$exe" --data "$DATA" --threads "$t" --seed "$SEED" --progress 0 --json "$@" > "$tmp/out" 2> "$tmp/err"; then
    add "$tag" "$(tail -1 "$tmp/out")"; tail -1 "$tmp/out" >&2
  else tail -5 "$tmp/err" >&2; echo "{\"tag\": \"$tag\", \"failed\": true, \"threads\": $t}" >> "$R"; fi
}
if [ $RUN_SNNC = 1 ]; then
  [ -x build/snnc ] || { echo "bench/run.sh: build/snnc missing: run ./build.sh first" >&2; exit 1; }
  build/snnc examples/tutorial5.snn -o build/tutorial5 || { echo "bench/run.sh: snnc could not compile examples/tutorial5.snn" >&2; exit 1; }
fi

# 3. references
ref_run() { # tag form threads iters extra-args...
  local tag=$1 form=$2 t=$3 it=$4; shift 4
  echo "=== PyTorch $form, $t thread(s), $it timed iterations $*" >&2
  if "$PY" bench/reference_tutorial5.py --form "$form" --threads "$t" --iters "$it" --seed "$SEED" \
       --data "$DATA" "$@" > "$tmp/out" 2> "$tmp/err"; then
    add "$tag" "$(tail -1 "$tmp/out")"; tail -1 "$tmp/out" >&2
  else tail -5 "$tmp/err" >&2; echo "{\"tag\": \"$tag\", \"failed\": true, \"threads\": $t}" >> "$R"; fi
}
# rounds of 1. FMA peak, 2. snnc, 3. references
for round in $(seq "$REPEAT"); do
  echo "=== round $round of $REPEAT" >&2
  for t in $THREADS; do
    echo "=== FMA peak, $t thread(s)" >&2
    add "fma" "$(build/bench/fma_peak "$t" 1.0)"
  done
  if [ $RUN_SNNC = 1 ]; then
    for t in $THREADS; do snnc_run snnc build/tutorial5 "$t" --epochs 1; done
  fi
  if [ $RUN_REF = 1 ]; then
    for t in $THREADS; do
      ref_run ref_tutorial tutorial "$t" "$ITERS" --eval
      ref_run ref_hoisted hoisted "$t" "$ITERS" --eval
    done
  fi
done

# 4. scaling
if [ $SCALING = 1 ]; then
  best_threads() { "$PY" - "$R" "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r.get("tag") == sys.argv[2] and not r.get("failed")]
key = lambda r: r.get("epoch_seconds") or r.get("seconds_per_epoch") or 1e99
print(min(rows, key=key)["threads"] if rows else 1)
EOF
  }
  for cfg in "25 1000" "100 1000" "400 1000" "25 4000"; do
    set -- $cfg; T=$1; H=$2
    if [ $RUN_SNNC = 1 ]; then
      exe=build/tutorial5
      if [ "$H" != 1000 ]; then
        # the Tutorial 5 network with another hidden width
        sed "s/\b1000\b/$H/g" tests/reference/fixtures/trajectory/model.snn > "$tmp/h$H.snn"
        build/snnc "$tmp/h$H.snn" -o "build/bench/tutorial5_h$H" && exe=build/bench/tutorial5_h$H
      fi
      # five times the references' count: snnc's measure includes its first iterations (pool
      # start, first touches, kernel choices), the references' 2 warm-up ones are untimed
      snnc_run "scale_snnc_T${T}_H${H}" "$exe" "$(best_threads snnc)" --epochs 1 --steps "$T" --max-iters "$((SC_ITERS * 5))"
    fi
    if [ $RUN_REF = 1 ]; then
      ref_run "scale_ref_tutorial_T${T}_H${H}" tutorial "$(best_threads ref_tutorial)" "$SC_ITERS" --steps "$T" --hidden "$H"
      ref_run "scale_ref_hoisted_T${T}_H${H}" hoisted "$(best_threads ref_hoisted)" "$SC_ITERS" --steps "$T" --hidden "$H"
    fi
  done
fi

# 5. table
"$PY" - "$R" "$CMDLINE" "$ITERS" "$SC_ITERS" "$REPEAT" > "$tmp/section.md" <<'EOF'
import json, sys, datetime, platform, os
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cmd, iters, sc_iters, repeat = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
B, I, O, EPOCH_ITERS = 128, 784, 10, 60000 // 128
def flops_iter(T, H): return 2 * 2 * B * I * H + 3 * 2 * T * B * H * O
peak = {}
for r in rows:
    if r.get("tag") == "fma" and not r.get("failed"):
        peak[r["threads"]] = max(peak.get(r["threads"], 0.0), r["gflops"])
def best(tag):
    ok = [r for r in rows if r.get("tag") == tag and not r.get("failed")]
    return min(ok, key=epoch_s) if ok else None
def epoch_s(r):
    if r is None: return None
    if r.get("impl") == "pytorch-reference": return r["seconds_per_epoch"]
    full = r.get("iters_last_epoch", 0) >= EPOCH_ITERS
    return r["epoch_seconds"] if full else r["ms_per_iter"] * EPOCH_ITERS / 1e3
def extrap(r):
    if r is None: return ""
    if r.get("impl") == "pytorch-reference": return "extrapolated from %d iters" % r["iters"]
    return "measured" if r.get("iters_last_epoch", 0) >= EPOCH_ITERS else "extrapolated from %d iters" % r.get("iters_last_epoch", 0)
def acc(r):
    a = None if r is None else r.get("test_accuracy")
    if a is None: return "n/a"
    return "%.2f %%" % (a * 100 if a <= 1 else a)
def f(x, fmt="%.3f"): return "n/a" if x is None else fmt % x
out = ["## Speed, %s" % datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "",
       "Command: `%s` (host %s, %s CPUs). FMA peak (bench/fma_peak.c): %s." % (
           cmd.strip(), platform.node(), os.cpu_count(),
           ", ".join("%d thread(s) %.0f GFLOP/s" % (t, g) for t, g in sorted(peak.items())) or "not measured"),
       "References: %d timed iterations, extrapolated to %d per epoch; snnc: one measured epoch. "
       "Each at its fastest thread count, the fastest of %d round(s) (FMA peak: the highest)." % (
           iters, EPOCH_ITERS, repeat), ""]
sn = best("snnc")
out.append("| implementation | threads | s / epoch | how | ms / iter | peak RSS (MB) | test acc. | time / snnc | x FLOP floor |")
out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
fl_epoch = flops_iter(25, 1000) * EPOCH_ITERS
for name, tag in (("snnc", "snnc"), ("PyTorch (a) tutorial form", "ref_tutorial"), ("PyTorch (b) fc1 hoisted", "ref_hoisted")):
    r = best(tag)
    if r is None:
        out.append("| %s | | not run | | | | | | |" % name); continue
    e = epoch_s(r)
    ratio = "%.1fx" % (e / epoch_s(sn)) if sn and tag != "snnc" else ("1" if tag == "snnc" else "n/a")
    floor = fl_epoch / (peak[r["threads"]] * 1e9) if r["threads"] in peak else None
    out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
        name, r["threads"], f(e), extrap(r), f(r.get("ms_per_iter"), "%.2f"),
        f(r.get("peak_rss_mb"), "%.0f"), acc(r), ratio, f(e / floor if floor else None, "%.2f")))
out.append("")
# snnc at each thread count it ran, against the floor at that count: where the 2-thread run
# loses to the FMA loop's scaling shows here
by_t = {}
for r in rows:
    if r.get("tag") == "snnc" and not r.get("failed") and (r["threads"] not in by_t or epoch_s(r) < epoch_s(by_t[r["threads"]])):
        by_t[r["threads"]] = r
if by_t:
    parts = ["%d thread(s) %s s/epoch = %s x the FLOP floor at %d thread(s)" % (
        t, f(epoch_s(r)), f(epoch_s(r) / (fl_epoch / (peak[t] * 1e9)) if t in peak else None, "%.2f"), t)
        for t, r in sorted(by_t.items())]
    line = "snnc by thread count (fastest round each): " + "; ".join(parts)
    if 1 in by_t and 2 in by_t and 1 in peak and 2 in peak:
        line += "; 2 threads are %.2fx faster than 1, the FMA loop %.2fx" % (
            epoch_s(by_t[1]) / epoch_s(by_t[2]), peak[2] / peak[1])
    out += [line + ".", ""]
out.append("All runs: " + "; ".join("%s %st: %s s/epoch" % (r["tag"], r.get("threads", "?"), f(epoch_s(r)) if not r.get("failed") else "FAILED")
                                   for r in rows if r.get("tag") in ("snnc", "ref_tutorial", "ref_hoisted")) + ".")
sc = [r for r in rows if r.get("tag", "").startswith("scale_")]
if sc:
    out += ["", "Scaling (snnc --max-iters %d, all of them timed; references %d timed iterations after 2 untimed; all extrapolated per epoch):" % (5 * sc_iters, sc_iters), "",
            "| T | hidden | dense GFLOP / iter | snnc ms / iter | (a) ms / iter | (b) ms / iter | (a) / snnc | (b) / snnc | snnc x FLOP floor |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for T, H in ((25, 1000), (100, 1000), (400, 1000), (25, 4000)):
        g = lambda k: next((r for r in sc if r["tag"] == "scale_%s_T%d_H%d" % (k, T, H) and not r.get("failed")), None)
        s, a, b = g("snnc"), g("ref_tutorial"), g("ref_hoisted")
        ms = lambda r: None if r is None else r.get("ms_per_iter")
        rt = lambda x, y: "n/a" if x is None or y is None else "%.1fx" % (x / y)
        fi = flops_iter(T, H)
        fl = None if s is None or s["threads"] not in peak else ms(s) / (fi / (peak[s["threads"]] * 1e9) * 1e3)
        out.append("| %d | %d | %.2f | %s | %s | %s | %s | %s | %s |" % (T, H, fi / 1e9, f(ms(s), "%.2f"), f(ms(a), "%.1f"),
                   f(ms(b), "%.1f"), rt(ms(a), ms(s)), rt(ms(b), ms(s)), f(fl, "%.2f")))
out.append("")
print("\n".join(out))
EOF
cat "$tmp/section.md"
if [ $WRITE = 1 ]; then
  [ -f bench/RESULTS.md ] || printf '# Benchmark results\n\nAppended by bench/*.sh; newest last.\n\n' > bench/RESULTS.md
  cat "$tmp/section.md" >> bench/RESULTS.md
  echo "bench/run.sh: appended to bench/RESULTS.md" >&2
fi
