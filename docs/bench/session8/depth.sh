#!/bin/bash
# Decode at depth D (default 8192; run with D=8192 and D=16384) on the 1B Q4_0 file: llama.cpp
# (current, 0c1e570: the Feb-2025 snapshot's llama-bench has no -d) with flash attention off and
# on, then fastkv's full cache and FastKV at its defaults (TSP layer floor(L/2) - 1, 20%
# propagated, 10% of the KV kept).
cd "$(dirname "$0")/../../.."
O=docs/bench/session8
B=${BUILD:-build}
D=${D:-8192}
K=$((D / 1024))k
/work/llama-ref/build/bin/llama-bench -m /work/big/llama-1b-q4_0.gguf -p 0 -n 64 -d $D -fa 0,1 \
  -t 2 -r 1 --repack 0 > $O/depth-$K.llama.md 2>&1
$B/fastkv bench -m /work/big/llama-1b-q4_0.gguf -p $D -n 64 -r 1 -c $((D + 64)) -t 2 \
  --methods full,fastkv > $O/depth-$K.fastkv.txt 2>&1
