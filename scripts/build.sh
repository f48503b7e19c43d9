#!/usr/bin/env bash
# Configures and builds fastkv into build/ (override with BUILD_DIR).
#
#   scripts/build.sh                 # everything: the front end, tests, benchmarks
#   scripts/build.sh fastkv          # only the named targets (the main job builds just `fastkv`)
#
# Environment: BUILD_DIR (build), BUILD_TYPE (RelWithDebInfo), JOBS (nproc), CMAKE_ARGS (extra
# configure arguments, space-separated).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
# shellcheck disable=SC2086  # CMAKE_ARGS is a list of words
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  ${CMAKE_ARGS:-} >/dev/null
if (($#)); then
  cmake --build "$BUILD_DIR" -j "$JOBS" --target "$@"
else
  cmake --build "$BUILD_DIR" -j "$JOBS"
fi
