#!/usr/bin/env bash
# Needle in a haystack on Gemma 3 270M (issue #16, docs/accuracy.md "Gemma 3 270M"): the fast
# path, plain completion prompts (the file is the pretrained model), lengths × depths
# 10/30/50/70/90 % × 3 haystacks, for
#   full; fastkv (default TSP layer); fastkv (the TSP layer `fastkv calibrate` chooses);
#   snapkv; gemfilter; streamingllm
# with accuracy, TTFT, decode tokens/s and KV MiB per method (the table `fastkv eval` writes).
#
#   scripts/niah-grid.sh                  # 4K
#   scripts/niah-grid.sh 4096,8192        # a rerun into the same folder runs only new cells
#   scripts/niah-grid.sh 16384            # 16K; 32768 for 32K (the model's context)
#
# Environment: MODEL (models/gemma-3-270m-q4_k_m.gguf), FASTKV (build/fastkv), OUT
# (docs/eval-runs/niah-gemma3-270m), SAMPLES (3), DEPTHS (10,30,50,70,90), THREADS (0 = all
# cores), CAL_LAYER (the calibrated TSP layer; unset: run `fastkv calibrate --dry-run` once and
# keep its table in OUT/calibrate.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
LENGTHS=${1:-4096}
MODEL=${MODEL:-models/gemma-3-270m-q4_k_m.gguf}
FASTKV=${FASTKV:-build/fastkv}
OUT=${OUT:-docs/eval-runs/niah-gemma3-270m}
SAMPLES=${SAMPLES:-3}
DEPTHS=${DEPTHS:-10,30,50,70,90}
THREADS=${THREADS:-0}

[[ -f $MODEL ]] || { echo "error: no model at $MODEL (scripts/fetch-models.sh gemma3)" >&2; exit 1; }
[[ -x $FASTKV ]] || { echo "error: no fastkv at $FASTKV (scripts/build.sh fastkv)" >&2; exit 1; }
# A calibration sidecar beside the model would make plain `fastkv` the calibrated layer.
sidecar=${MODEL%.gguf}.fastkv.json
if [[ -e $sidecar ]]; then
  echo "error: $sidecar exists: 'fastkv' would not be the default TSP layer; move it away" >&2
  exit 1
fi
mkdir -p "$OUT"

if [[ -z ${CAL_LAYER:-} ]]; then
  if [[ ! -s $OUT/calibrate.txt ]]; then
    "$FASTKV" calibrate -m "$MODEL" --dry-run -t "$THREADS" > "$OUT/calibrate.txt.tmp"
    mv "$OUT/calibrate.txt.tmp" "$OUT/calibrate.txt"
  fi
  CAL_LAYER=$(sed -n 's/^chosen: TSP layer \([0-9]*\) .*/\1/p' "$OUT/calibrate.txt")
  [[ -n $CAL_LAYER ]] || { echo "error: no choice in $OUT/calibrate.txt" >&2; exit 1; }
fi
echo "calibrated TSP layer: $CAL_LAYER" >&2

METHODS="full,fastkv,fastkv:tsp_layer=$CAL_LAYER,snapkv,gemfilter,streamingllm"
"$FASTKV" eval niah -m "$MODEL" --methods "$METHODS" --lengths "$LENGTHS" --depths "$DEPTHS" \
  --samples "$SAMPLES" -t "$THREADS" --out "$OUT"
