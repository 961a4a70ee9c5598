#!/usr/bin/env bash
# Install what peerless needs on Debian 12 (run as root, or with sudo).
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the test dependencies (PyTorch, clang)
#   scripts/install-deps.sh --bench  also what the benchmarks compare with
#                                    (PyTorch, RabbitMQ, OpenMPI)
# Packages already present are not reinstalled; apt-get update runs only when
# something is missing.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libdnnl-dev libcjson-dev zlib1g-dev dataset-fashion-mnist
      libcurl4-openssl-dev libssl-dev librabbitmq-dev libmicrohttpd-dev libeigen3-dev g++ binutils zip unzip curl)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(python3 python3-numpy python3-torch python3-torchvision rabbitmq-server openssl openmpi-bin libopenmpi-dev)
fi
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(python3 python3-numpy python3-torch python3-torchvision clang libclang-rt-14-dev rabbitmq-server openssl)
  # s3rver (tests/cli_s3.sh) needs Node.js + npm. NodeSource's nodejs ships
  # npm; Debian's npm would conflict with it, so only add it when missing.
  command -v npm >/dev/null || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "installing: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [[ "${1:-}" == "--test" ]]; then
  "$(dirname "${BASH_SOURCE[0]}")/s3rver.sh" install
fi
