#!/bin/bash
# Peak RSS of a long prefill on the 1B Q4_0 file (the RSS column of `fastkv bench`, which leaves
# out its 64 MiB bandwidth probe; /usr/bin/time's maxrss includes it), at 8K and 16K tokens.
cd "$(dirname "$0")/../../.."
B=${BUILD:-build}
for P in 8192 16384; do
  echo "== -p $P"
  /usr/bin/time -f "maxrss %M KiB" $B/fastkv bench -m /work/big/llama-1b-q4_0.gguf -p $P -n 16 \
    -r 1 --warmup 0 -c $((P + 32)) --methods full --backend quant -t 2 --bandwidth-mib 64 2>&1 |
    grep -E "^\| full \| $P \| [0-9]|maxrss"
done
