#!/bin/bash
# Quantised prefill with GEMM tiles of 2M, 4M, 8M and 16M weights (kGemmTileWeights; binaries
# built with each: T2, T4, T8, T16), beside the bf16 backend (BF16: a binary, run with
# --backend bf16), alternated run by run, the order rotated every round. TTFT (median of -r 2),
# RSS MiB.
#   FILES, PS (default "512 2048"), ROUNDS (default 3)
for f in ${FILES:?}; do
  for P in ${PS:-512 2048}; do
    echo "== $(basename "$f") -p $P"
    runs="T2 T4 T8 T16 BF16"
    for r in $(seq 1 "${ROUNDS:-3}"); do
      line="round $r"
      for run in $runs; do
        exe=${!run}; be=quant; [ $run = BF16 ] && be=bf16
        out=$("$exe" bench -m "$f" -p "$P" -n 0 -r 2 -t 2 --methods full --backend "$be" \
          --bandwidth-mib 64 -c $((P + 16)) 2>/dev/null | grep "^| full | $P | [0-9]" | head -1)
        line="$line  $run $(echo "$out" | cut -d'|' -f4 | tr -d ' ') $(echo "$out" | cut -d'|' -f16 | tr -d ' ')"
      done
      echo "$line"
      runs="$(echo $runs | cut -d' ' -f2-) $(echo $runs | cut -d' ' -f1)"
    done
  done
done
