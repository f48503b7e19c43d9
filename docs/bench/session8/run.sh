#!/bin/bash
# Quiet-machine measurements for #15 (session 8, Intel Xeon with AMX, 2 cores), run by hand with
# nothing else running. Models as in session 7 (docs/bench/session7/run.sh): `fastkv synth --like
# llama-3.2-1b --type q4_0|q8_0|bf16 --vocab models/SmolLM2-135M-Instruct.Q4_1.gguf`, Q4_K_M by
# llama-quantize from the bf16 one; the real SmolLM2-135M-Instruct Q4_1.
cd "$(dirname "$0")/../../.."
O=docs/bench/session8
B=${BUILD:-build}
uptime > $O/load.txt
export FASTKV=$B/fastkv P=256 N=128 R=3 WAIT=default,ACTIVE
# The Feb-2025 snapshot has no --repack and repacks Q4_0 / Q4_1 / Q8_0 for AMX itself.
REPACK= scripts/bench-vs-llama.sh /work/llama-feb/build/bin $O/vs-llama-feb \
  /work/big/llama-1b-q8_0.gguf /work/big/llama-1b-q4_0.gguf /work/big/llama-1b-q4_k_m.gguf models/SmolLM2-135M-Instruct.Q4_1.gguf \
  2> $O/vs-llama-feb.log
uptime >> $O/load.txt
# (This run listed the Q4_K_M file twice, as written here: its outputs are from the second pass.)
scripts/bench-vs-llama.sh /work/llama-ref/build/bin $O/vs-llama-ref /work/big/llama-1b-q4_k_m.gguf \
  /work/big/llama-1b-q8_0.gguf /work/big/llama-1b-q4_0.gguf /work/big/llama-1b-q4_k_m.gguf models/SmolLM2-135M-Instruct.Q4_1.gguf \
  2> $O/vs-llama-ref.log
uptime >> $O/load.txt
for m in /work/big/llama-1b-q4_0.gguf /work/big/llama-1b-q8_0.gguf /work/big/llama-1b-q4_k_m.gguf; do
  echo "== $m" >> $O/prefill-quant-vs-bf16.txt
  for b in quant bf16 quant bf16; do
    echo "# backend $b" >> $O/prefill-quant-vs-bf16.txt
    OMP_WAIT_POLICY=PASSIVE $B/fastkv bench -m $m -p 512 -n 0 -r 2 -t 2 --methods full --backend $b \
      >> $O/prefill-quant-vs-bf16.txt 2>&1
  done
done
uptime >> $O/load.txt
docs/bench/session8/alternate.sh > $O/alternate.txt 2>&1
uptime >> $O/load.txt
# Decode at 8K depth: docs/bench/session8/depth.sh (run after this script).
uptime >> $O/load.txt
echo DONE >> $O/load.txt
