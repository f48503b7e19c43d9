#!/bin/bash
# Two fastkv binaries (A, B) on the same files and backends, alternated run by run with the order
# reversed every round, so the VM's drift falls on both. Prints each run's TTFT (median of -r 2),
# or with METRIC=tg its decode speed in tokens/s over 128 tokens (session 13).
#   A, B (binaries), FILES, PS (prompt lengths, default 2048), BACKENDS (default "quant bf16"),
#   ROUNDS (default 3).
for f in ${FILES:?}; do
  for P in ${PS:-2048}; do
    echo "== $(basename "$f") -p $P"
    for r in $(seq 1 "${ROUNDS:-3}"); do
      runs=""
      for be in ${BACKENDS:-quant bf16}; do runs="$runs A:$be B:$be"; done
      [ $((r % 2)) = 0 ] && runs=$(echo $runs | tr ' ' '\n' | tac | tr '\n' ' ')
      line="round $r"
      for run in $runs; do
        bin=${run%%:*}; be=${run#*:}
        [ "$bin" = A ] && exe=$A || exe=$B
        [ "${METRIC:-ttft}" = tg ] && gen=128 field=11 || gen=0 field=4
        t=$("$exe" bench -m "$f" -p "$P" -n $gen -r 2 -t 2 --methods full --backend "$be" \
          --bandwidth-mib 64 -c $((P + gen + 16)) 2>/dev/null | grep "^| full | $P | [0-9]" |
          head -1 | cut -d'|' -f$field | tr -d ' ')
        line="$line  $bin-$be $t"
      done
      echo "$line"
    done
  done
done
