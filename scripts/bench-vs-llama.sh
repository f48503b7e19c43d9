#!/bin/bash
# Same-run comparison of `fastkv bench` and llama.cpp's `llama-bench` on the very same GGUF files,
# with each side's peak resident set (GNU time). A developer tool for docs/benchmarks.md: it needs a
# llama.cpp build (see docs/benchmarks.md, "Against llama.cpp"), which neither CI nor the README's
# commands install.
#
#   scripts/bench-vs-llama.sh LLAMA_BIN_DIR OUT_DIR MODEL.gguf...
#
# Environment (defaults in brackets):
#   FASTKV   the fastkv binary [build/fastkv]
#   P        prompt length of the short-context test [256]
#   N        tokens decoded per test [128]
#   R        repetitions [3]
#   T        threads [2]
#   DEPTHS   comma-separated context depths for decode-at-depth tests, e.g. 8192,16384 [none]
#   METHODS  fastkv methods at depth [full,fastkv]
#   POLL     llama-bench --poll values [0,50]: 50 (its default) spins its workers between graph
#            nodes, 0 lets them sleep; on a shared machine spinning collapses under load (as
#            OMP_WAIT_POLICY=ACTIVE does for fastkv), so both are reported
#   WAIT     fastkv's OMP_WAIT_POLICY values [PASSIVE,ACTIVE]: PASSIVE sleeps at once, ACTIVE
#            spins like llama.cpp's polling, `default` leaves OMP_WAIT_POLICY unset (fastkv then
#            spins briefly, GOMP_SPINCOUNT=10000: tools/fastkv/main.cpp)
#   REPACK   llama-bench --repack value [0]; empty omits the flag (the Feb-2025 llama.cpp snapshot
#            has no --repack: it repacks Q4_0 / Q4_1 / Q8_0 for AMX whenever the CPU has AMX)
# For each model it writes OUT_DIR/NAME.llama.md (llama-bench's markdown, tg and pp at -p/-n, and
# tg at each depth with flash attention off and on), OUT_DIR/NAME.fastkv.txt (+ one .json per
# wait policy), and OUT_DIR/NAME.*.time (GNU time -v; fastkv bench's peak RSS there includes its
# bandwidth probe's 1 GiB buffer, which its own RSS column leaves out), plus OUT_DIR/versions.txt.
# Both sides run one after the other on the same file, so their ratio is measured under the same
# machine conditions; the order alternates between models (llama.cpp first on odd ones).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 LLAMA_BIN_DIR OUT_DIR MODEL.gguf..." >&2
  exit 1
fi
LLAMA_BIN=$1
OUT=$2
shift 2
FASTKV=${FASTKV:-build/fastkv}
P=${P:-256}
N=${N:-128}
R=${R:-3}
T=${T:-2}
DEPTHS=${DEPTHS:-}
METHODS=${METHODS:-full,fastkv}
POLL=${POLL:-0,50}
WAIT=${WAIT:-PASSIVE,ACTIVE}
REPACK=${REPACK-0}
repack=()
if [ -n "$REPACK" ]; then repack=(--repack "$REPACK"); fi

for tool in "$LLAMA_BIN/llama-bench" "$FASTKV" /usr/bin/time; do
  if [ ! -x "$tool" ]; then
    echo "error: $tool is not an executable" >&2
    exit 1
  fi
done
mkdir -p "$OUT"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "llama-bench: $("$LLAMA_BIN/llama-bench" --version 2>&1 | tr '\n' ' ')"
  echo "fastkv: $("$FASTKV" --version 2>&1), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "settings: P=$P N=$N R=$R T=$T DEPTHS=$DEPTHS METHODS=$METHODS POLL=$POLL REPACK=$REPACK"
} > "$OUT/versions.txt"

run_llama() {
  local m=$1 name=$2
  # --repack 0 by default: llama.cpp's AMX repacking crashed on an earlier VM (docs/benchmarks.md).
  /usr/bin/time -v -o "$OUT/$name.llama.time" \
    "$LLAMA_BIN/llama-bench" -m "$m" -p "$P" -n "$N" -r "$R" -t "$T" --poll "$POLL" "${repack[@]}" -o md \
    > "$OUT/$name.llama.md"
  if [ -n "$DEPTHS" ]; then
    /usr/bin/time -v -o "$OUT/$name.llama-depth.time" \
      "$LLAMA_BIN/llama-bench" -m "$m" -p 0 -n "$N" -d "$DEPTHS" -fa off,on -r 1 -t "$T" \
      "${repack[@]}" -o md >> "$OUT/$name.llama.md"
  fi
}

run_fastkv() {
  local m=$1 name=$2 policy
  : > "$OUT/$name.fastkv.txt"
  for policy in ${WAIT//,/ }; do
    echo "# OMP_WAIT_POLICY=$policy" >> "$OUT/$name.fastkv.txt"
    local env_wait=(env OMP_WAIT_POLICY="$policy")
    [ "$policy" = default ] && env_wait=(env -u OMP_WAIT_POLICY)
    "${env_wait[@]}" /usr/bin/time -v -o "$OUT/$name.fastkv-$policy.time" \
      "$FASTKV" bench -m "$m" -p "$P" -n "$N" -r "$R" -t "$T" --methods full \
      --json "$OUT/$name.fastkv-$policy.json" >> "$OUT/$name.fastkv.txt"
  done
  if [ -n "$DEPTHS" ]; then
    # A context for the deepest prompt and its decoded tokens (llama-bench sizes its own).
    local ctx=$(( $(tr ',' '\n' <<< "$DEPTHS" | sort -n | tail -1) + N ))
    /usr/bin/time -v -o "$OUT/$name.fastkv-depth.time" \
      "$FASTKV" bench -m "$m" -p "$DEPTHS" -n "$N" -r 1 -t "$T" -c "$ctx" --methods "$METHODS" \
      --json "$OUT/$name.fastkv-depth.json" >> "$OUT/$name.fastkv.txt"
  fi
}

i=0
for m in "$@"; do
  name=$(basename "$m" .gguf)
  i=$((i + 1))
  echo "== $name" >&2
  if [ $((i % 2)) -eq 1 ]; then
    run_llama "$m" "$name"
    run_fastkv "$m" "$name"
  else
    run_fastkv "$m" "$name"
    run_llama "$m" "$name"
  fi
  for f in "$OUT/$name".*.time; do
    printf '%s peak RSS: %s kB\n' "$(basename "$f" .time)" \
      "$(awk -F': ' '/Maximum resident/ {print $2}' "$f")" >&2
  done
done
