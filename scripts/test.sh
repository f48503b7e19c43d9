#!/usr/bin/env bash
# The README's test command: installs every dependency, fetches the pinned real models and the
# pinned deploy/ validator, builds, checks that the build used only packages
# scripts/install-deps.sh installs, fuzzes the parsers for a bounded time, then runs every CTest test (unit + golden).
# Needs ../shared beside the checkout (or FASTKV_SHARED) for the golden tests and the package
# audit (../shared/tools/check-debian-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
shared=${FASTKV_SHARED:-$repo/../shared}
build=${BUILD_DIR:-build}

scripts/install-deps.sh
# Both real models: SmolLM2 (the main job's) and Gemma 3 270M (242 MiB, cached in .cache/ after
# the first run), so that the Gemma 3 goldens, its tokenizer check and the CLI checks run here
# instead of being skipped: they are the only tests of a real hybrid (sliding-window) model.
scripts/fetch-models.sh all
scripts/install-deploy-tools.sh  # the pinned Kubernetes manifest validator (DeployK8sSchema)
export FASTKV_MODEL_PATH="$repo/models${FASTKV_MODEL_PATH:+:$FASTKV_MODEL_PATH}"
# ctest runs tests side by side on few cores: OpenMP workers that spin while waiting for a
# descheduled peer slow such runs many times over, so they yield instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# A fresh Debian machine has only what install-deps.sh installs (without recommends): every
# header, library and CMake-found file a build used must come from those packages. A package
# installed by hand on this machine would otherwise hide a missing install step.
audit() {
  local dir=$1 tool=$shared/tools/check-debian-deps.sh
  if [[ ! -x $tool ]]; then
    echo "test.sh: error: $tool is missing: cannot check the build's Debian packages" >&2
    exit 1
  fi
  # shellcheck disable=SC2046  # one package per word
  "$tool" "$dir" $(scripts/install-deps.sh --list)
}

BUILD_DIR=$build scripts/build.sh
audit "$build"

# Parser fuzzing (GGUF reader, tokenizers): FUZZ_SECONDS each, 0 to skip.
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  scripts/fuzz.sh
  audit "${FUZZ_BUILD_DIR:-build-fuzz}"
fi

cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 900
