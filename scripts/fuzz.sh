#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs them.
#
#   scripts/fuzz.sh                 # fuzz_gguf for $FUZZ_SECONDS (default 60): half of it on
#                                   # small inputs, half with the ../shared seeds too; then
#                                   # fuzz_tokenizer (when fuzz/fuzz_tokenizer.cpp exists) for
#                                   # half as long
#   FUZZ_SECONDS=600 scripts/fuzz.sh
#
# The working corpus is assembled in fuzz-corpus-work/ (git-ignored) from the committed seeds
# (fuzz/corpus/<target>/) and, for fuzz_gguf, from ../shared: each model and vocabulary file
# truncated to its first 256 KiB (header and metadata; the reader rejects the cut files because
# their tensor data lies outside them, which exercises that path) and stories260K.gguf whole;
# for fuzz_tokenizer, from the tokenizer test strings (../shared/tokenizer/*.inp).
# New inputs the fuzzer finds stay in fuzz-corpus-work/ between runs.
#
# Exits non-zero when a fuzzer reports a crash, a sanitizer error, a leak, a timeout or an
# out-of-memory; the reproducer is written to fuzz-corpus-work/artifacts/ (replay it with
# `build-fuzz/fuzz_gguf <file>`).
#
# Environment: FUZZ_SECONDS (60), FUZZ_BUILD_DIR (build-fuzz), FUZZ_WORK (fuzz-corpus-work),
# FASTKV_SHARED (../shared), CXX (clang++).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz}
work=${FUZZ_WORK:-$repo/fuzz-corpus-work}
shared=${FASTKV_SHARED:-$repo/../shared}
cxx=${CXX:-clang++}

die() { echo "fuzz.sh: $*" >&2; exit 2; }

command -v "$cxx" >/dev/null || die "$cxx not found (the fuzzers need clang with libFuzzer)"
case "$seconds" in '' | *[!0-9]*) die "FUZZ_SECONDS must be a whole number of seconds" ;; esac

echo "== building the fuzzers in $build"
# Without OpenMP (single-threaded parsers need none): clang would otherwise pick up libomp only
# where it happens to be installed, and the package audit rightly flags that.
cmake -S . -B "$build" -G Ninja -DFASTKV_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(fuzz_gguf)
[[ -f fuzz/fuzz_tokenizer.cpp ]] && targets+=(fuzz_tokenizer)
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]}"

# ---- corpus -------------------------------------------------------------------------------
# gguf/: the committed seeds plus everything the fuzzer has found (small inputs);
# gguf-shared/: the seeds made from ../shared (large inputs).
mkdir -p "$work/gguf" "$work/gguf-shared" "$work/artifacts"
if compgen -G "fuzz/corpus/gguf/*" >/dev/null; then cp -f fuzz/corpus/gguf/* "$work/gguf/"; fi
max_len=$((1200 * 1024))
if [[ -d $shared ]]; then
  for f in "$shared"/models/*.gguf "$shared"/tokenizer/*.gguf; do
    [[ -f $f ]] || continue
    head -c $((256 * 1024)) "$f" >"$work/gguf-shared/$(basename "$f" .gguf).head"
  done
  if [[ -f $shared/models/stories260K.gguf ]]; then
    cp -f "$shared/models/stories260K.gguf" "$work/gguf-shared/stories260K.gguf"
    size=$(stat -c %s "$shared/models/stories260K.gguf")
    ((size + 4096 > max_len)) && max_len=$((size + 4096))
  fi
else
  echo "fuzz.sh: warning: $shared not found; fuzzing from the committed seeds only" >&2
fi

# fuzz_tokenizer's vocabulary: from the same ../shared as the seeds (FASTKV_SHARED).
export FASTKV_FUZZ_VOCAB=${FASTKV_FUZZ_VOCAB:-$shared/tokenizer/ggml-vocab-gpt-2.gguf}

# Undefined behaviour must stop the fuzzer like a crash does (UBSan only logs by default).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

status=0
execs=0
run_fuzzer() {  # label binary seconds max_len(or "") corpus-dirs... -- [extra flags...]
  local label=$1 name=$2 secs=$3 len=$4
  shift 4
  local dirs=()
  while (($#)) && [[ $1 != -- ]]; do dirs+=("$1"); shift; done
  (($#)) && shift
  local log="$work/$label.log" rc=0
  local args=("${dirs[@]}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$name-" "$@")
  [[ -n $len ]] && args+=(-max_len="$len")
  echo "== $name ($label) for ${secs}s${len:+, max_len $len}; log $log"
  "$build/$name" "${args[@]}" >"$log" 2>&1 || rc=$?
  grep -E '^#[0-9]+.*(INITED|DONE)|^(==[0-9]+==)?ERROR|^SUMMARY|^stat::number_of_executed_units' \
    "$log" || true
  local n
  n=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -1)
  execs=$((execs + ${n:-0}))
  if ((rc != 0)); then
    echo "fuzz.sh: $name FAILED (exit $rc); log: $log; reproducers:" >&2
    ls -1 "$work/artifacts" | sed "s|^|  $work/artifacts/|" >&2
    status=1
  fi
}

# fuzz_gguf: half the time on small inputs (thousands of runs a second), half with the large
# seeds from ../shared as well (hundreds a second: every run parses a whole vocabulary).
small_secs=$(((seconds + 1) / 2))
run_fuzzer gguf-small fuzz_gguf "$small_secs" $((64 * 1024)) "$work/gguf" \
  -- -dict=fuzz/gguf.dict
run_fuzzer gguf-shared fuzz_gguf $((seconds - small_secs)) "$max_len" \
  "$work/gguf" "$work/gguf-shared" -- -dict=fuzz/gguf.dict
if [[ -x $build/fuzz_tokenizer ]]; then
  mkdir -p "$work/tokenizer"
  if compgen -G "fuzz/corpus/tokenizer/*" >/dev/null; then
    cp -f fuzz/corpus/tokenizer/* "$work/tokenizer/"
  fi
  # The tokenizer test strings of ../shared, each file as one input (first byte: flags = 0).
  for f in "$shared"/tokenizer/*.inp; do
    [[ -f $f ]] || continue
    { printf '\0'; cat "$f"; } >"$work/tokenizer/shared-$(basename "$f" .gguf.inp).txt"
  done
  run_fuzzer tokenizer fuzz_tokenizer "$small_secs" "" "$work/tokenizer"
fi
echo "== $execs inputs run in all; $( ((status)) && echo FAILED || echo no crashes)"
exit $status
