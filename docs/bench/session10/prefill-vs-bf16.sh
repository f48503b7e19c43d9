#!/bin/bash
# Prefill on quantised weights (--backend quant: tiles dequantised to bf16 for AMX) against the
# same file's weights widened to bf16 at load (--backend bf16), alternated round by round with
# the order swapped every round (quant first in odd rounds), so the VM's drift falls on both.
# Prints each run's TTFT (median of -r 2) and each round's bf16 / quant ratio (> 1: quant faster).
#   FILES (default the 1B Q4_0, Q8_0, Q4_K synth files), PS (prompt lengths, default "512 2048"),
#   ROUNDS (default 5), BUILD (default build).
cd "$(dirname "$0")/../../.."
B=${BUILD:-build}
for f in ${FILES:-/work/big/llama-1b-q4_0.gguf /work/big/llama-1b-q8_0.gguf /work/big/llama-1b-q4_k.gguf}; do
  for P in ${PS:-512 2048}; do
    echo "== $(basename "$f") -p $P"
    for r in $(seq 1 "${ROUNDS:-5}"); do
      order="quant bf16"
      [ $((r % 2)) = 0 ] && order="bf16 quant"
      declare -A t
      for be in $order; do
        t[$be]=$("$B/fastkv" bench -m "$f" -p "$P" -n 0 -r 2 -t 2 --methods full --backend "$be" \
          --bandwidth-mib 64 -c $((P + 16)) 2>/dev/null | grep "^| full | $P | [0-9]" | head -1 |
          cut -d'|' -f4 | tr -d ' ')
      done
      echo "round $r quant ${t[quant]} s bf16 ${t[bf16]} s bf16/quant $(echo "${t[bf16]} / ${t[quant]}" | bc -l | cut -c1-5)"
    done
  done
done
