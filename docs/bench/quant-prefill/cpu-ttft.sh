#!/usr/bin/env bash
# Prefill CPU seconds of `fastkv bench` runs, alternating binaries / backends (A B A B ...), for a
# machine shared with other jobs where wall-clock TTFT is noise: CPU seconds of one prefill =
# TTFT x cpu_share x threads (bench's own per-repetition numbers, -n 0 so nothing but the
# prefill runs in the timed window; OMP_WAIT_POLICY=PASSIVE so waiting threads do not spin).
# Usage: cpu-ttft.sh ROUNDS MODEL PROMPT "LABEL1=BINARY1 ARGS..." "LABEL2=BINARY2 ARGS..." ...
set -euo pipefail
rounds=$1 model=$2 prompt=$3
shift 3
for ((r = 1; r <= rounds; ++r)); do
  for spec in "$@"; do
    label=${spec%%=*}
    cmd=${spec#*=}
    bin=${cmd%% *}
    args=${cmd#"$bin"}
    json=$(mktemp)
    OMP_WAIT_POLICY=PASSIVE $bin bench -m "$model" -p "$prompt" -n 0 -r 3 --warmup 1 \
      --methods full -t 2 --bandwidth-mib 64 --json "$json" $args > /dev/null 2>&1
    python3 - "$label" "$r" "$json" <<'PY'
import json, sys
label, r, path = sys.argv[1], sys.argv[2], sys.argv[3]
for j in json.load(open(path)):
    share = j["cpu_share_reps"]
    ttft = j["ttft_reps_s"]
    cpu = [a * b * j.get("threads", 2) for a, b in zip(ttft, share)]
    print(f"{label} round {r}: prefill CPU s {' '.join(f'{c:.2f}' for c in cpu)} "
          f"(wall {' '.join(f'{a:.2f}' for a in ttft)}; share {' '.join(f'{b:.2f}' for b in share)})")
PY
    rm -f "$json"
  done
done
