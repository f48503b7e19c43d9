#!/usr/bin/env bash
# The main job: install the dependencies, fetch SmolLM2-135M-Instruct, build, and answer a
# question about a long document (the GNU GPL v3, sections 0-6, ~3800 tokens) with
# `fastkv run --chat`, first with the full KV cache and then with FastKV compression.
#
# Needs network access for the model (scripts/fetch-models.sh), nothing from ../shared.
# Environment: BUILD_DIR (default build), N_PREDICT (default 128), GPL_FILE (default
# /usr/share/common-licenses/GPL-3, present on every Debian machine).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
N_PREDICT=${N_PREDICT:-128}
GPL_FILE=${GPL_FILE:-/usr/share/common-licenses/GPL-3}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf

step() { printf '\n=== %s ===\n' "$*" >&2; }
die() { printf 'main-job: error: %s\n' "$*" >&2; exit 1; }

step "dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh

step "model (scripts/fetch-models.sh)"
fetch_ok=1
scripts/fetch-models.sh || fetch_ok=0
if [ "$fetch_ok" = 0 ] && [ -f "$MODEL" ]; then
  echo "main-job: fetching failed, but $MODEL is already there from an earlier fetch; using it" >&2
  fetch_ok=1
fi

step "build (scripts/build.sh, BUILD_DIR=$BUILD_DIR)"
BUILD_DIR="$BUILD_DIR" scripts/build.sh
FASTKV="$BUILD_DIR/fastkv"
[ -x "$FASTKV" ] || die "$FASTKV was not built"

if [ "$fetch_ok" = 0 ] || [ ! -f "$MODEL" ]; then
  # The main job needs SmolLM2; ../shared is optional. When the test model is there, show at
  # least that the build runs, then fail anyway.
  fallback=../shared/models/stories260K.gguf
  if [ -f "$fallback" ]; then
    step "fallback smoke run on $fallback (NOT the main job)"
    "$FASTKV" run -m "$fallback" -p "Once upon a time" -n 40 --temp 0 || true
  fi
  die "could not fetch $MODEL (see scripts/fetch-models.sh's messages above); the main job needs it"
fi

[ -r "$GPL_FILE" ] || die "$GPL_FILE is missing (package base-files provides it on Debian)"

# The prompt: the license text up to (not including) section 7, then the question. Section 6
# ("Conveying Non-Source Forms") holds the answer: the Corresponding Source.
PROMPT_FILE="$BUILD_DIR/main-job-prompt.txt"
awk '/^ *7\. Additional Terms\./ { exit } { print }' "$GPL_FILE" > "$PROMPT_FILE"
[ -s "$PROMPT_FILE" ] || die "could not extract the license text from $GPL_FILE"
printf '\nQuestion: under this license, what must you give recipients when you convey the program in object code form? Answer briefly.\n' >> "$PROMPT_FILE"
echo "main-job: prompt $PROMPT_FILE: $(wc -w < "$PROMPT_FILE") words" >&2

# The fast path (bf16 on oneDNN, AMX where present) where the CPU has native bf16; the f32
# reference path elsewhere.
run_args=(run -m "$MODEL" --chat -f "$PROMPT_FILE" -n "$N_PREDICT" --backend auto)

step "$FASTKV ${run_args[*]} (method: full KV cache)"
"$FASTKV" "${run_args[@]}"

step "$FASTKV ${run_args[*]} --method fastkv"
"$FASTKV" "${run_args[@]}" --method fastkv
