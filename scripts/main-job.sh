#!/usr/bin/env bash
# The main job: install the dependencies, fetch SmolLM2-135M-Instruct, build the `fastkv`
# front end (only that: the test command builds the rest), and ask a question about a long
# document — a fact planted in the middle of the GNU GPL v3 (sections 0-6, ~3,900 tokens) —
# first with the full KV cache, then with FastKV. Ends with one table: the two answers (checked
# against the planted fact), time to first token, prefill and decode speed, tokens that reach
# the last layer, KV cache size, and the ratios.
#
# Needs network access for the model (scripts/fetch-models.sh), nothing from ../shared.
# Environment: BUILD_DIR (default build), N_PREDICT (default 32), GPL_FILE (default
# /usr/share/common-licenses/GPL-3, present on every Debian machine), FASTKV_ARGS (extra
# `fastkv run` arguments for the FastKV run, e.g. "--tsp-layer 19").
# The table is printed by Debian's /usr/bin/python3 (standard library only; installed by
# scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
N_PREDICT=${N_PREDICT:-32}
GPL_FILE=${GPL_FILE:-/usr/share/common-licenses/GPL-3}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
PYTHON=/usr/bin/python3

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

step "build the fastkv front end (scripts/build.sh fastkv, BUILD_DIR=$BUILD_DIR)"
BUILD_DIR="$BUILD_DIR" scripts/build.sh fastkv
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

# The document: the license up to (not including) section 7, with one planted sentence halfway
# through; then the question. The answer exists only in the planted sentence.
NEEDLE="  Note from the Debian maintainer: the signing key of this package is kept in a safe in the town of Quillmere."
QUESTION="Question: according to the note from the Debian maintainer, in which town is the signing key kept? Answer with the name of the town."
EXPECTED=Quillmere
work="$BUILD_DIR/main-job"
mkdir -p "$work"
PROMPT_FILE="$work/prompt.txt"
awk '/^ *7\. Additional Terms\./ { exit } { print }' "$GPL_FILE" >"$work/license.txt"
[ -s "$work/license.txt" ] || die "could not extract the license text from $GPL_FILE"
half=$(($(wc -l <"$work/license.txt") / 2))
{
  head -n "$half" "$work/license.txt"
  printf '\n%s\n\n' "$NEEDLE"
  tail -n +"$((half + 1))" "$work/license.txt"
  printf '\n%s\n' "$QUESTION"
} >"$PROMPT_FILE"
echo "main-job: prompt $PROMPT_FILE: $(wc -w <"$PROMPT_FILE") words; the planted fact is on line $((half + 2)) of $(wc -l <"$PROMPT_FILE")" >&2

# --backend auto (the default): this Q4_1 file stays quantised (--backend quant: its blocks read
# in place, integer dots for decode, bf16 tiles for prefill where the CPU has native bf16).
run_args=(run -m "$MODEL" --chat -f "$PROMPT_FILE" -n "$N_PREDICT")

step "$FASTKV ${run_args[*]} --method full"
"$FASTKV" "${run_args[@]}" --method full --json "$work/full.json"

# shellcheck disable=SC2086  # FASTKV_ARGS is a list of words
step "$FASTKV ${run_args[*]} --method fastkv ${FASTKV_ARGS:-}"
# shellcheck disable=SC2086
"$FASTKV" "${run_args[@]}" --method fastkv ${FASTKV_ARGS:-} --json "$work/fastkv.json"

step "what FastKV bought on this prompt"
"$PYTHON" scripts/compare-runs.py --expect "$EXPECTED" "$work/full.json" "$work/fastkv.json"
cat <<'NOTE'

The fact sits halfway through the document. Moved elsewhere, FastKV's default settings lose it
more often than the full cache does on this 135M-parameter model: over 5 depths x 2 planted facts,
full KV answered 9 of 10 and FastKV (TSP layer 14, 20% of tokens propagated, 10% KV) 4 of 10
(docs/fastkv.md, "The main job's question"; docs/accuracy.md has the needle-in-a-haystack grid).
NOTE
