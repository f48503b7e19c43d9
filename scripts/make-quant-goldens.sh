#!/usr/bin/env bash
# Regenerates tests/golden/quant/: small quantised GGUF models made by llama.cpp's llama-quantize
# from the shared tiny models, and llama.cpp's logits on them (scripts/golden/llama_logits.cpp).
# A developer tool (needs a llama.cpp source tree and CPU build; not run by CI or the CMake build).
#
#   scripts/make-quant-goldens.sh LLAMA_CPP_SRC LLAMA_CPP_BUILD [OUT_DIR]
#
# LLAMA_CPP_SRC: llama.cpp's source (include/llama.h, ggml/include/gguf.h); LLAMA_CPP_BUILD: its
# CMake build with bin/llama-quantize and the shared libraries (libllama, libggml*) in bin/.
# OUT_DIR defaults to tests/golden/quant of this checkout. docs/accuracy.md ("Quantised models
# against llama.cpp") says how the committed files were made and with which llama.cpp.
#
# What it writes into OUT_DIR:
#   stories260K.{Q8_0,Q4_0,Q4_1,Q5_0,Q5_1}.gguf   llama-quantize of ../shared/models/stories260K.gguf
#   tiny-k256.{Q4_0,Q4_K_M,Q5_K_M}.gguf           llama-quantize of tiny-k256.gguf, a random-weight
#                                                 model whose rows are multiples of 256 (written by
#                                                 scripts/golden/tiny_model.cpp; not kept)
#   <model>.short.logits.gguf                     the first 16 tokens of scripts/golden/story.txt,
#                                                 logits at every position
#   <model>.long.logits.gguf                      its first 200 tokens, logits at 25 positions
# each golden with a 32-token greedy continuation and its logits (llama_logits.cpp's header).
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 LLAMA_CPP_SRC LLAMA_CPP_BUILD [OUT_DIR]" >&2
  exit 2
fi
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${3:-$REPO/tests/golden/quant}
SHARED=${FASTKV_SHARED:-$(cd "$REPO/.." && pwd)/shared}
THREADS=${THREADS:-2}

for f in "$SRC/include/llama.h" "$SRC/ggml/include/gguf.h" "$BUILD/bin/llama-quantize" \
         "$SHARED/models/stories260K.gguf"; do
  [[ -e $f ]] || { echo "error: $f not found" >&2; exit 1; }
done
# Which llama.cpp: the commit of its source tree when it is a git checkout (the llama-cpp-python
# sdist carries one), else LLAMA_CPP_VERSION from the environment.
VERSION=${LLAMA_CPP_VERSION:-$(git -C "$SRC" rev-parse --short=9 HEAD 2>/dev/null || echo unknown)}
SOURCE="llama.cpp $VERSION (CPU, weights as stored by llama-quantize, use_extra_bufts off, flash attention off, F16 KV cache); scripts/make-quant-goldens.sh"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CXX=${CXX:-g++}
INC=(-I"$SRC/include" -I"$SRC/ggml/include")
LIBS=(-L"$BUILD/bin" -Wl,-rpath,"$BUILD/bin")
"$CXX" -std=c++17 -O2 -Wall "${INC[@]}" "$REPO/scripts/golden/llama_logits.cpp" \
  "${LIBS[@]}" -lllama -lggml -lggml-base -o "$TMP/llama_logits"
"$CXX" -std=c++17 -O2 -Wall "${INC[@]}" "$REPO/scripts/golden/tiny_model.cpp" \
  "${LIBS[@]}" -lggml-base -o "$TMP/tiny_model"
"$TMP/tiny_model" "$SHARED/models/stories260K.gguf" "$TMP/tiny-k256.gguf"

mkdir -p "$OUT"
quantize() {  # SOURCE_MODEL NAME TYPE
  "$BUILD/bin/llama-quantize" "$1" "$OUT/$2.$3.gguf" "$3" > "$TMP/quantize.log" 2>&1 ||
    { cat "$TMP/quantize.log" >&2; exit 1; }
}
goldens() {  # MODEL_FILE_NAME
  local m=$1 stem=${1%.gguf}
  "$TMP/llama_logits" "$OUT/$m" "$OUT/$stem.short.logits.gguf" --text-file \
    "$REPO/scripts/golden/story.txt" --n-tokens 16 --positions all --greedy 32 \
    --source "$SOURCE" --threads "$THREADS"
  "$TMP/llama_logits" "$OUT/$m" "$OUT/$stem.long.logits.gguf" --text-file \
    "$REPO/scripts/golden/story.txt" --n-tokens 200 --positions 25 --greedy 32 \
    --source "$SOURCE" --threads "$THREADS"
}

for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1; do
  quantize "$SHARED/models/stories260K.gguf" stories260K "$t"
  goldens "stories260K.$t.gguf"
done
for t in Q4_0 Q4_K_M Q5_K_M; do
  quantize "$TMP/tiny-k256.gguf" tiny-k256 "$t"
  goldens "tiny-k256.$t.gguf"
done
echo "llama.cpp $VERSION -> $OUT"
