#!/bin/bash
# Decode at short context, fastkv against the Feb-2025 llama.cpp (AMX-repacked Q4_0 / Q4_1 / Q8_0)
# on the same files, alternated (llama, fastkv, llama, fastkv, ...) so that a slow minute of this
# shared machine does not fall on one side only. fastkv at its default waiting (GOMP_SPINCOUNT
# 10000) and OMP_WAIT_POLICY=ACTIVE (which spins like llama.cpp's --poll 50, its default).
# fastkv decodes after a 16-token prompt (llama-bench tg128 starts from an empty context).
cd "$(dirname "$0")/../../.."
B=${BUILD:-build}
LLAMA=${LLAMA:-/work/llama-feb/build/bin}
# FILES overrides the list (session 9 adds the Q4_K_M file).
for m in ${FILES:-/work/big/llama-1b-q4_0.gguf /work/big/llama-1b-q8_0.gguf models/SmolLM2-135M-Instruct.Q4_1.gguf}; do
  echo "== $m"
  for round in 1 2 3; do
    echo -n "round $round llama.cpp tg128: "
    "$LLAMA/llama-bench" -m "$m" -p 0 -n 128 -t 2 -r 2 2>/dev/null | grep tg128 | awk -F'|' '{print $(NF-1)}'
    for w in default ACTIVE; do
      wait_env=(env -u OMP_WAIT_POLICY)
      [ "$w" = ACTIVE ] && wait_env=(env OMP_WAIT_POLICY=ACTIVE)
      echo -n "round $round fastkv $w tg t/s: "
      "${wait_env[@]}" "$B/fastkv" bench -m "$m" -p 16 -n 128 -r 2 -t 2 --methods full 2>/dev/null |
        grep "^| full" | head -1 | awk -F'|' '{print $11}'
    done
  done
done
