#!/bin/bash
# Prefill on quantised weights: the AMX tiles written straight from the interleaved groups
# (NEW, this build) against session 8's plain tile + oneDNN reorder (OLD: 8806388 built in
# /tmp/oldsrc/b), and our bf16 backend, alternated round by round (the VM's speed drifts).
# FILE (default the 1B Q4_0), P (default 512), ROUNDS (default 3).
cd "$(dirname "$0")/../../.."
NEW=${NEW:-build/fastkv}
OLD=${OLD:-/tmp/oldsrc/b/fastkv}
FILE=${FILE:-/work/big/llama-1b-q4_0.gguf}
P=${P:-512}
for r in $(seq 1 "${ROUNDS:-3}"); do
  for which in old new bf16; do
    case $which in
      old) bin=$OLD; be=quant ;;
      new) bin=$NEW; be=quant ;;
      bf16) bin=$NEW; be=bf16 ;;
    esac
    ttft=$($bin bench -m "$FILE" -p "$P" -n 0 -r 2 -t 2 --methods full --backend $be \
      --bandwidth-mib 64 2>/dev/null | grep "^| full | $P | [0-9]" | head -1 | cut -d'|' -f4)
    echo "round $r $which $be TTFT$ttft s"
  done
done
