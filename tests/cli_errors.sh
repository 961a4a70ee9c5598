#!/usr/bin/env bash
# Bad input never crashes: unknown flags, models, values; truncated IDX;
# a safetensors header pointing past the end; CIFAR files of the wrong size;
# a missing dataset. Each gives one clear error line and a non-zero exit.
source "$(dirname "$0")/lib_cli.sh"

expect_error "unknown command" "unknown command 'trian'" "$PEERLESS" trian
expect_error "unknown flag" "unknown flag '--epoch'" "$PEERLESS" train --epoch 3
expect_error "unknown model" "unknown model 'resnet9000'.*lenet5" "$PEERLESS" train --model resnet9000
expect_error "unknown optimizer" "unknown optimizer.*sgd" "$PEERLESS" train --optimizer lion --dataset synthetic
expect_error "unknown loss" "unknown loss 'mse'" "$PEERLESS" train --loss mse --dataset synthetic
expect_error "unknown dataset" "synthetic" "$PEERLESS" train --dataset imagenet
expect_error "bad number" "--epochs expects an integer in \[1, " "$PEERLESS" train --epochs 3x
expect_error "out of range" "--batch-size expects an integer in \[1, " "$PEERLESS" train --batch-size 0
expect_error "missing value" "--lr needs a value" "$PEERLESS" train --lr
expect_error "stray argument" "unexpected argument 'lenet5'" "$PEERLESS" train lenet5

# MNIST-format IDX files; then truncate one.
mk_idx() { # mk_idx DIR: 20 train / 10 test images of 28x28, raw IDX
  /usr/bin/python3 - "$1" <<'PY'
import os, struct, sys
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
for prefix, n in (("train", 20), ("t10k", 10)):
    with open(f"{d}/{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes((i * 7) % 256 for i in range(n * 784)))
    with open(f"{d}/{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
PY
}
mk_idx "$TMP/mnist"
truncate -s 5000 "$TMP/mnist/train-images-idx3-ubyte"
expect_error "truncated IDX" "train-images-idx3-ubyte.*(truncated|expected|short)" \
  "$PEERLESS" train --dataset mnist --data-dir "$TMP/mnist" --epochs 1
mk_idx "$TMP/mnist2"
gzip "$TMP/mnist2/train-labels-idx1-ubyte"
head -c 12 "$TMP/mnist2/train-labels-idx1-ubyte.gz" > "$TMP/x" && mv "$TMP/x" "$TMP/mnist2/train-labels-idx1-ubyte.gz"
expect_error "truncated gzip IDX" "train-labels-idx1-ubyte" \
  "$PEERLESS" train --dataset mnist --data-dir "$TMP/mnist2" --epochs 1
expect_error "missing mnist" "mnist.*(not found|missing|No such).*" \
  "$PEERLESS" train --dataset mnist --data-dir "$TMP/nowhere"

# CIFAR-10 binary files, one of the wrong size.
mkdir -p "$TMP/cifar"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  head -c $((3073 * 4)) /dev/zero > "$TMP/cifar/$f.bin"
done
head -c 5000 /dev/zero > "$TMP/cifar/data_batch_3.bin"
expect_error "CIFAR wrong size" "data_batch_3.bin.*3073" \
  "$PEERLESS" train --dataset cifar10 --data-dir "$TMP/cifar" --epochs 1
expect_error "missing cifar" "cifar" "$PEERLESS" train --dataset cifar10 --data-dir "$TMP/nowhere"

# safetensors whose header points past the end of the file.
/usr/bin/python3 - "$TMP/bad.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"fc1.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(16))
PY
expect_error "safetensors past end" "fc1.weight.*past the end" "$PEERLESS" inspect "$TMP/bad.safetensors"
expect_error "init from bad safetensors" "past the end" \
  "$PEERLESS" train --dataset synthetic --model mlp --init "$TMP/bad.safetensors"
printf 'garbage' > "$TMP/short.safetensors"
expect_error "safetensors too short" "short.safetensors" "$PEERLESS" inspect "$TMP/short.safetensors"
expect_error "metrics path unwritable" "metrics" \
  "$PEERLESS" train --dataset synthetic --model mlp --epochs 1 --metrics /nonexistent/dir/m.jsonl

finish
