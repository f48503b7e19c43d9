#!/bin/bash
# The 8B-shaped Q4_K_M file (fastkv synth --like llama-3.1-8b --type q8_0, then the Feb-2025
# llama.cpp's `llama-quantize --allow-requantize ... Q4_K_M 2`): fastkv's quant and bf16 backends
# at 512 tokens with decode, their peak RSS, and llama-bench (Feb-2025 build) on the same file.
#   F (the file), BUILD (default build), LLAMA_BENCH (default /work/llama-feb/build/bin/llama-bench)
cd "$(dirname "$0")/../../.."
B=${BUILD:-build}
F=${F:-/work/big/llama-8b-q4_k_m.gguf}
for be in quant bf16; do
  echo "== fastkv --backend $be"
  /usr/bin/time -f "maxrss %M KiB" "$B/fastkv" bench -m "$F" -p 512 -n 32 -r 2 --warmup 0 -t 2 \
    --methods full --backend "$be" --bandwidth-mib 64 -c 560 2>&1 | grep -E "^\| full \| 512 \||maxrss"
done
echo "== llama-bench"
/usr/bin/time -f "maxrss %M KiB" "${LLAMA_BENCH:-/work/llama-feb/build/bin/llama-bench}" -m "$F" \
  -p 512 -n 32 -r 1 -t 2 2>&1 | grep -E "^\| |maxrss|build"
