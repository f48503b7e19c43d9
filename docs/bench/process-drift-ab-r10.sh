#!/usr/bin/env bash
# Before / after the mallopt change, -r 10 interleaved, under perf stat; machine nearly idle.
M=/work/main/models/SmolLM2-135M-Instruct.Q4_1.gguf
for v in before after; do
  echo "== $v, load $(cut -d' ' -f1-3 /proc/loadavg)"
  perf stat -e page-faults,minor-faults,major-faults -- /tmp/measure-exp/fastkv-$v-fix bench -m $M -p 1024 -n 64 --methods full,fastkv -r 10 --interleave --json /tmp/measure-exp/ab2-$v.json 2>&1 | grep -v "^bench \["
done
