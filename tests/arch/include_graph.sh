#!/usr/bin/env bash
# CTest test IncludeGraphPointsDown: every #include "layer/..." in src/ points to a layer below
# (docs/architecture.md). A layer may include itself and the layers listed for it here; any other
# project include fails the test, naming the file and the include.
#
# usage: include_graph.sh SOURCE_DIR
set -uo pipefail
src=${1:?usage: include_graph.sh SOURCE_DIR}/src
declare -A allowed=(
  [common]=""
  [io]="common"
  [tokenizer]="io common"
  [kernels]="common"
  [cache]="kernels common"
  [method]="kernels common"
  [model]="cache method kernels tokenizer io common"
  [runtime]="model cache method kernels tokenizer io common"
  [eval]="runtime model cache method kernels tokenizer io common"
  [server]="runtime model cache method kernels tokenizer io common"
  [bench]="runtime model cache method kernels tokenizer io common"
)
status=0
checked=0
for dir in "$src"/*/; do
  layer=$(basename "$dir")
  if [[ -z ${allowed[$layer]+set} ]]; then
    echo "FAILED: src/$layer/ is not a known layer (add it to tests/arch/include_graph.sh and docs/architecture.md)"
    status=1
    continue
  fi
  while IFS=: read -r file include; do
    target=${include%%/*}
    checked=$((checked + 1))
    [[ $target == "$layer" ]] && continue
    if [[ " ${allowed[$layer]} " != *" $target "* ]]; then
      echo "FAILED: ${file#"$src"/} includes \"$include\": $layer may include only: ${allowed[$layer]:-nothing}"
      status=1
    fi
  done < <(grep -Ho '^#include "[a-z_]*/[^"]*"' "$dir"*.h "$dir"*.cpp 2>/dev/null |
    sed 's/:#include "/:/; s/"$//')
done
echo "include_graph: $checked project includes checked"
((checked > 50)) || { echo "FAILED: suspiciously few includes found under $src"; status=1; }
exit $status
