#!/bin/bash
# The cache-line aligned buffers of the bf16 attention kernel and OneDnnLinear (common/aligned.h):
# OLD (88f2e6a: only the quantised tiles aligned, the CI build of that commit) against NEW, alternated: 8K
# prefill on the 1B Q4_0 file (attention dominates), 2K prefill on the bf16 backend.
cd "$(dirname "$0")/../../.."
OLD=${OLD:-/tmp/ci.nVYM/p/build/fastkv}
NEW=${NEW:-build/fastkv}
for r in 1 2; do
  for which in old new; do
    bin=$OLD; [ $which = new ] && bin=$NEW
    t=$($bin bench -m /work/big/llama-1b-q4_0.gguf -p 8192 -n 0 -r 1 --warmup 0 -c 8200 -t 2 \
      --methods full --backend quant --bandwidth-mib 64 2>/dev/null | grep "^| full | 8192 | [0-9]" | head -1 | cut -d'|' -f4)
    echo "round $r $which quant p8192 TTFT$t s"
    t=$($bin bench -m /work/big/llama-1b-q4_0.gguf -p 2048 -n 0 -r 2 -t 2 --methods full \
      --backend bf16 --bandwidth-mib 64 2>/dev/null | grep "^| full | 2048 | [0-9]" | head -1 | cut -d'|' -f4)
    echo "round $r $which bf16 p2048 TTFT$t s"
  done
done
