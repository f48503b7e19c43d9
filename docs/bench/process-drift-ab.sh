#!/usr/bin/env bash
# Before (3524eb1+probe columns, no mallopt) and after (mallopt in main), same command, in turns.
M=/work/main/models/SmolLM2-135M-Instruct.Q4_1.gguf
for v in before after before after; do
  echo "== $v, load $(cut -d' ' -f1-3 /proc/loadavg)"
  /tmp/measure-exp/fastkv-$v-fix bench -m $M -p 1024 -n 64 --methods full,fastkv -r 6 --interleave 2>/dev/null | tail -4
done
