#!/bin/bash
# Builds bitcheck.cpp against SRC's headers and BUILD's libfastkv_core.a and prints its hashes.
#   SRC=/tmp/base BUILD=/tmp/base/b docs/bench/session12/bitcheck.sh > base.txt
#   SRC=. BUILD=build-dev docs/bench/session12/bitcheck.sh > new.txt; diff base.txt new.txt
# SHARED: the ../shared folder; MODELS: a folder with SmolLM2-135M-Instruct.Q4_1.gguf and
# gemma-3-270m-q4_k_m.gguf (the README's model package). OUT: a folder for each case's logits,
# and the parts' hashes printed apart (bitcheck.cpp).
set -e
here=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "${SRC:-.}" && pwd)
BUILD=$(cd "${BUILD:-build}" && pwd)
export SHARED=${SHARED:-$SRC/../shared} MODELS=${MODELS:-$SRC/models}
out=$(mktemp -d)
g++ -std=c++20 -O2 -fopenmp -I"$SRC/src" "$here/bitcheck.cpp" "$BUILD/libfastkv_core.a" \
  -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp \
  /usr/lib/x86_64-linux-gnu/libpcre2-8.so /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so \
  /usr/lib/x86_64-linux-gnu/libdnnl.so.2.6 -ldl -lpthread -o "$out/bitcheck"
"$out/bitcheck"
rm -rf "$out"
