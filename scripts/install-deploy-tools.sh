#!/usr/bin/env bash
# Installs the pinned Kubernetes manifest validator (deploy/requirements-check.txt) into a
# virtual environment: ${FASTKV_CACHE:-<repo>/.cache}/deploy-venv. scripts/test.sh runs it; the
# CTest test DeployK8sSchema uses it (and is skipped, saying so, without it).
# Idempotent: does nothing when the environment already has exactly the pinned versions.
# Needs python3-venv (scripts/install-deps.sh) and PyPI.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${FASTKV_CACHE:-$repo/.cache}/deploy-venv
req=$repo/deploy/requirements-check.txt

want=$(grep -v '^#' "$req" | grep . | tr 'A-Z_' 'a-z-' | sort)
if [[ -x $venv/bin/pip ]] &&
   [[ $("$venv/bin/pip" freeze 2>/dev/null | tr 'A-Z_' 'a-z-' | sort) == "$want" ]]; then
  exit 0
fi
rm -rf "$venv"
# Debian's interpreter: python3-venv (install-deps.sh) provides its venv module.
"${PYTHON:-/usr/bin/python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req"
"$venv/bin/kubernetes-validate" --version >/dev/null
echo "install-deploy-tools: kubernetes-validate in $venv" >&2
