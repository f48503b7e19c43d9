#!/bin/bash
# prefill.sh over the three 1B files at 512 tokens and the Q4_0 file at 2048 (two token blocks
# of 1024: every layer's tiles are decoded twice), three alternated rounds each.
cd "$(dirname "$0")/../../.."
for spec in q4_0:512 q8_0:512 q4_k_m:512 q4_0:2048; do
  f=${spec%%:*}; p=${spec##*:}
  echo "== llama-1b-$f.gguf -p $p"
  FILE=/work/big/llama-1b-$f.gguf P=$p docs/bench/session9/prefill.sh
done
