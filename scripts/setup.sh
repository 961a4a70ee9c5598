#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, run the main job
# (LeNet-5 on the real Fashion-MNIST, 3 epochs, embedded defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
./build/peerless train --model lenet5 --dataset fashion-mnist --epochs 3 \
  --checkpoint-out build/lenet5.safetensors --metrics build/lenet5-metrics.jsonl
