#!/bin/bash
# Session 9's decode rounds: session 8's alternate.sh (fastkv against the Feb-2025 llama.cpp,
# alternated, three rounds) on its three files plus the 1B Q4_K_M file, with BUILD's fastkv.
cd "$(dirname "$0")/../../.."
FILES="/work/big/llama-1b-q4_0.gguf /work/big/llama-1b-q8_0.gguf /work/big/llama-1b-q4_k_m.gguf models/SmolLM2-135M-Instruct.Q4_1.gguf" \
  docs/bench/session8/alternate.sh
