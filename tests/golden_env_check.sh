#!/usr/bin/env bash
# CTest test GoldenFoldersFromEnvironment: the folders named by $FASTKV_LOGIT_GOLDENS,
# $FASTKV_SELECTION_GOLDENS and $FASTKV_E2E_GOLDENS reach `ctest -L golden`.
#
# usage: golden_env_check.sh BUILD_DIR SHARED_DIR
#
# For each variable it copies one ../shared golden file into a temporary folder under a new
# name and checks, by running ctest on BUILD_DIR with the variable set, that
#   1. tests named after the copy are listed and pass;
#   2. a copy cut in half fails;
#   3. a copy with the data of its checked tensor (logits, kept rows, propagated set) overwritten
#      fails;
#   4. without the variable, no test is named after the copy.
# Exit 0 when all hold; 1 with the failed check otherwise.
set -uo pipefail
build=${1:?usage: golden_env_check.sh BUILD_DIR SHARED_DIR}
shared=${FASTKV_SHARED:-${2:?usage: golden_env_check.sh BUILD_DIR SHARED_DIR}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
check() {  # description, then the command that must succeed
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAILED: $what"
    status=1
  fi
}

# run_ctest VAR DIR NAME: ctest over the golden tests named after NAME, with VAR=DIR only
# (the other two variables unset), output in $tmp/log.
run_ctest() {
  env -u FASTKV_LOGIT_GOLDENS -u FASTKV_SELECTION_GOLDENS -u FASTKV_E2E_GOLDENS "$1=$2" \
    ctest --test-dir "$build" -L golden -R "$3" --output-on-failure >"$tmp/log" 2>&1
}
tests_run() { sed -n 's/.*tests passed, [0-9]* tests failed out of \([0-9]*\)/\1/p' "$tmp/log"; }

# garble FILE TENSOR: overwrites (up to 4 KiB of) TENSOR's data with 0x55 bytes: finite as f16
# (85.3) and f32 (1.5e13), out of range as token ids. Offsets from `fastkv inspect --tensors`.
garble() {
  local listing start off len
  listing=$("$build/fastkv" inspect --tensors "$1") || return 1
  start=$(sed -n 's/.*data section at byte \([0-9]*\).*/\1/p' <<<"$listing")
  read -r off len < <(awk -v t="$2" '$2 == t { print $(NF-1), $NF }' <<<"$listing")
  [[ -n $start && -n $off ]] || { echo "no tensor $2 in $1"; return 1; }
  ((len > 4096)) && len=4096
  head -c "$len" /dev/zero | tr '\0' '\125' |
    dd of="$1" bs=1 seek=$((start + off)) conv=notrunc status=none
}

# variable : file under SHARED : the tensor the test checks it against
for spec in FASTKV_LOGIT_GOLDENS:golden/logits/stories260K.short.logits.gguf:logits \
  FASTKV_SELECTION_GOLDENS:golden/selection/fastkv-101-avgpool-constant-0.1-tsp.gguf:kept \
  FASTKV_E2E_GOLDENS:golden/fastkv-e2e/stories260K.tsp2.gguf:tsp; do
  IFS=: read -r var rel tensor <<<"$spec"
  src=$shared/$rel
  if [[ ! -f $src ]]; then
    echo "FAILED: $src is missing (../shared)"
    status=1
    continue
  fi
  size=$(stat -c %s "$src")
  tag=envcheck$(echo "$var" | tr -dc 'A-Z' | tr 'A-Z' 'a-z')
  for kind in good truncated garbled; do
    mkdir -p "$tmp/$var-$kind"
    copy=$tmp/$var-$kind/$tag$kind.gguf
    case $kind in
      good) cp "$src" "$copy" ;;
      truncated) head -c $((size / 2)) "$src" >"$copy" ;;
      garbled) cp "$src" "$copy" && chmod u+w "$copy" && garble "$copy" "$tensor" ;;
    esac
  done
  run_ctest "$var" "$tmp/$var-good" "${tag}good"
  rc=$?
  n=$(tests_run)
  check "$var: the good copy is listed and passes ($n tests)" test "$rc" = 0 -a "${n:-0}" -gt 0
  ((rc == 0)) || cat "$tmp/log"
  run_ctest "$var" "$tmp/$var-truncated" "${tag}truncated"
  check "$var: a truncated copy fails" test $? != 0
  run_ctest "$var" "$tmp/$var-garbled" "${tag}garbled"
  rc=$?
  check "$var: a copy with overwritten data fails" test "$rc" != 0
  ((rc != 0)) || cat "$tmp/log"
  env -u "$var" ctest --test-dir "$build" -N -L golden -R "$tag" >"$tmp/log" 2>&1
  check "$var unset: no test named after the copy" grep -q "Total Tests: 0" "$tmp/log"
done
exit $status
