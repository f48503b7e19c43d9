#!/usr/bin/env bash
# The bandwidth probe before (05cbe66) and after, beside two independent tools, in turns.
M=/work/shared/models/tiny-llama-gqa.gguf
B="bench -m $M -p 16 -n 1 -r 3 --warmup 0 --methods full --gemm-rows 16"
for round in 1 2 3 4; do
  echo "round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  old probe     $(/tmp/measure-exp/fastkv-old $B 2>/dev/null | grep -o 'bandwidth: [0-9.]* GB/s')"
  echo "  new probe     $(/tmp/measure-exp/fastkv-new $B 2>/dev/null | grep -o 'bandwidth: [0-9.]* GB/s')"
  echo "  likwid-bench  $(likwid-bench -t load_avx512 -W N:1GB:2 -i 20 2>/dev/null | awk '/^MByte\/s/ {printf "%.2f GB/s", $2/1000}')"
  echo "  sysbench      $(sysbench memory --memory-block-size=512M --memory-total-size=20G --memory-oper=read --memory-access-mode=seq --threads=2 run 2>/dev/null | sed -n 's/.*(\([0-9.]*\) MiB\/sec).*/\1/p' | awk '{printf "%.2f GB/s", $1*1048576/1e9}')"
done
