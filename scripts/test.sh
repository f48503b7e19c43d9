#!/usr/bin/env bash
# The README's test command: installs every dependency, fetches the pinned real model,
# builds, fuzzes the parsers for a bounded time, then runs every CTest test (unit + golden).
# Needs ../shared beside the checkout (or FASTKV_SHARED) for the golden tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

scripts/install-deps.sh
scripts/fetch-models.sh
export FASTKV_MODEL_PATH="$repo/models${FASTKV_MODEL_PATH:+:$FASTKV_MODEL_PATH}"
# ctest runs tests side by side on few cores: OpenMP workers that spin while waiting for a
# descheduled peer slow such runs many times over, so they yield instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

BUILD_DIR=${BUILD_DIR:-build} scripts/build.sh

# Parser fuzzing (GGUF reader, tokenizers): FUZZ_SECONDS each, 0 to skip.
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  scripts/fuzz.sh
fi

cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 900
