#!/bin/bash
# Decode at 8K depth on the 1B Q4_0 file: llama.cpp (current, 0c1e570: the Feb-2025 snapshot's
# llama-bench has no -d) with flash attention off and on, then fastkv's full cache and FastKV at
# its defaults (TSP layer floor(L/2) - 1, 20% propagated, 10% of the KV kept).
cd "$(dirname "$0")/../../.."
O=docs/bench/session8
B=${BUILD:-build}
/work/llama-ref/build/bin/llama-bench -m /work/big/llama-1b-q4_0.gguf -p 0 -n 64 -d 8192 -fa 0,1 \
  -t 2 -r 1 --repack 0 > $O/depth-8k.llama.md 2>&1
$B/fastkv bench -m /work/big/llama-1b-q4_0.gguf -p 8192 -n 64 -r 1 -c 8256 -t 2 \
  --methods full,fastkv > $O/depth-8k.fastkv.txt 2>&1
