#!/usr/bin/env bash
# The acceptance run of the foundation issue: LeNet-5 on the real
# Fashion-MNIST, 3 epochs, default settings, must reach 0.88 test accuracy.
source "$(dirname "$0")/lib_cli.sh"
if [[ ! -e /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]]; then
  fail "Fashion-MNIST missing: scripts/install-deps.sh installs dataset-fashion-mnist"
  finish; exit
fi
"$PEERLESS" train --model lenet5 --dataset fashion-mnist --epochs 3 --metrics "$TMP/m.jsonl" > "$TMP/sum.json"
check "train exits 0" test $? -eq 0
acc=$(json_get "$TMP/sum.json" test_accuracy)
echo "test_accuracy $acc"
check "lenet5 reaches 0.88 on Fashion-MNIST in 3 epochs (got $acc)" \
  /usr/bin/python3 -c "import sys; sys.exit(0 if $acc >= 0.88 else 1)"
check "one metrics row per epoch" test "$(grep -c '' "$TMP/m.jsonl")" -eq 3
finish
