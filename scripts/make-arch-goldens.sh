#!/usr/bin/env bash
# Regenerates tests/golden/arch/: llama.cpp's logits for the Gemma 3 and Qwen3 architectures, and
# its token ids for Gemma 3's vocabulary. A developer tool (needs a llama.cpp source tree and CPU
# build; not run by CI or the CMake build), like scripts/make-quant-goldens.sh.
#
#   scripts/make-arch-goldens.sh LLAMA_CPP_SRC LLAMA_CPP_BUILD [OUT_DIR]
#
# Needs models/gemma-3-270m-q4_k_m.gguf (scripts/fetch-models.sh gemma3). OUT_DIR defaults to
# tests/golden/arch of this checkout. What it writes there:
#   tiny-gemma3.F16.gguf, tiny-qwen3.F16.gguf     scripts/golden/tiny_model.cpp's random-weight
#                                                 models (F32, then llama-quantize to F16)
#   tiny-*.F16.short.logits.gguf                  the first 16 tokens of scripts/golden/story.txt,
#                                                 logits at every position, 32 greedy tokens
#   tiny-*.F16.long.logits.gguf                   its first 200 tokens (12.5 windows of the
#                                                 tiny Gemma 3's 16), logits at 25 positions
#   gemma-3-270m-q4_k_m.short.logits.gguf         the first 16 tokens of story.txt, logits at 4
#                                                 positions, 4 greedy tokens
#   gemma-3-270m-q4_k_m.long.logits.gguf          the first 1024 tokens of ../shared's Paul
#                                                 Graham essay addiction.txt (2 windows of 512),
#                                                 logits at 4 positions, 4 greedy tokens
#   gemma-3-270m.tokenizer.out                    llama.cpp's ids of every string of the shared
#                                                 tokenizer inputs (ggml-vocab-*.gguf.inp, all
#                                                 the same file) in Gemma 3's vocabulary
# The real model's logits rows are 262144 wide (512 KiB each in F16), hence the few positions.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 LLAMA_CPP_SRC LLAMA_CPP_BUILD [OUT_DIR]" >&2
  exit 2
fi
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${3:-$REPO/tests/golden/arch}
SHARED=${FASTKV_SHARED:-$(cd "$REPO/.." && pwd)/shared}
THREADS=${THREADS:-2}
GEMMA=$REPO/models/gemma-3-270m-q4_k_m.gguf

for f in "$SRC/include/llama.h" "$SRC/ggml/include/gguf.h" "$BUILD/bin/llama-quantize" \
         "$SHARED/models/stories260K.gguf" "$SHARED/tokenizer/ggml-vocab-llama-spm.gguf.inp" \
         "$SHARED/data/PaulGrahamEssays/addiction.txt" "$GEMMA"; do
  [[ -e $f ]] || { echo "error: $f not found (models/: scripts/fetch-models.sh gemma3)" >&2; exit 1; }
done
VERSION=${LLAMA_CPP_VERSION:-$(git -C "$SRC" rev-parse --short=9 HEAD 2>/dev/null || echo unknown)}
SOURCE="llama.cpp $VERSION (CPU, weights as stored, use_extra_bufts off, flash attention off, F16 KV cache); scripts/make-arch-goldens.sh"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CXX=${CXX:-g++}
INC=(-I"$SRC/include" -I"$SRC/ggml/include")
LIBS=(-L"$BUILD/bin" -Wl,-rpath,"$BUILD/bin")
for tool in llama_logits llama_tokens; do
  "$CXX" -std=c++17 -O2 -Wall "${INC[@]}" "$REPO/scripts/golden/$tool.cpp" \
    "${LIBS[@]}" -lllama -lggml -lggml-base -o "$TMP/$tool"
done
"$CXX" -std=c++17 -O2 -Wall "${INC[@]}" "$REPO/scripts/golden/tiny_model.cpp" \
  "${LIBS[@]}" -lggml-base -o "$TMP/tiny_model"

mkdir -p "$OUT"
logits() {  # MODEL OUT_NAME TEXT N_TOKENS POSITIONS GREEDY
  "$TMP/llama_logits" "$1" "$OUT/$2" --text-file "$3" --n-tokens "$4" --positions "$5" \
    --greedy "$6" --source "$SOURCE" --threads "$THREADS"
}
story=$REPO/scripts/golden/story.txt
for arch in gemma3 qwen3; do
  "$TMP/tiny_model" "$SHARED/models/stories260K.gguf" "$TMP/tiny-$arch.gguf" "$arch"
  "$BUILD/bin/llama-quantize" "$TMP/tiny-$arch.gguf" "$OUT/tiny-$arch.F16.gguf" F16 \
    > "$TMP/quantize.log" 2>&1 || { cat "$TMP/quantize.log" >&2; exit 1; }
  logits "$OUT/tiny-$arch.F16.gguf" "tiny-$arch.F16.short.logits.gguf" "$story" 16 all 32
  logits "$OUT/tiny-$arch.F16.gguf" "tiny-$arch.F16.long.logits.gguf" "$story" 200 25 32
done
logits "$GEMMA" gemma-3-270m-q4_k_m.short.logits.gguf "$story" 16 4 4
logits "$GEMMA" gemma-3-270m-q4_k_m.long.logits.gguf \
  "$SHARED/data/PaulGrahamEssays/addiction.txt" 1024 4 4
"$TMP/llama_tokens" "$GEMMA" "$SHARED/tokenizer/ggml-vocab-llama-spm.gguf.inp" \
  "$OUT/gemma-3-270m.tokenizer.out"
echo "llama.cpp $VERSION -> $OUT"
