#!/usr/bin/env bash
# peerless init / grad on bad input: unknown model, batch files with a
# missing or mistyped tensor, targets out of range, a checkpoint of another
# model, a truncated checkpoint. Each gives one clear error line and a
# non-zero exit; a good run writes the expected tensors.
source "$(dirname "$0")/lib_cli.sh"

# mk_batch FILE N C H TARGETS [DTYPE] [OMIT]: safetensors batch with input
# [N,C,H,H] and the given comma-separated targets (int64 unless DTYPE is
# I32; "float" stores them as F32); OMIT=input|target leaves one out.
mk_batch() {
  /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
path, n, c, h, targets = sys.argv[1], *map(int, sys.argv[2:5]), [int(t) for t in sys.argv[5].split(",")]
dtype = sys.argv[6] if len(sys.argv) > 6 else "I64"
omit = sys.argv[7] if len(sys.argv) > 7 else ""
fmt = {"I64": "<q", "I32": "<i", "float": "<f"}[dtype]
x = b"".join(struct.pack("<f", ((i * 37) % 101) / 50.0 - 1.0) for i in range(n * c * h * h))
y = b"".join(struct.pack(fmt, t) for t in targets)
tensors = []
if omit != "input":
    tensors.append(("input", "F32", [n, c, h, h], x))
if omit != "target":
    tensors.append(("target", {"float": "F32"}.get(dtype, dtype), [len(targets)], y))
header, off, blob = {}, 0, b""
for name, dt, shape, data in tensors:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
    off += len(data)
    blob += data
hj = json.dumps(header).encode()
hj += b" " * (-len(hj) % 8)
open(path, "wb").write(struct.pack("<Q", len(hj)) + hj + blob)
PY
}

expect_error "init unknown model" "unknown model 'resnet9000'.*resnet18" \
  "$PEERLESS" init --model resnet9000 --out "$TMP/x.safetensors"
expect_error "init without --out" "--out.*required" "$PEERLESS" init --model resnet18
expect_error "init below min size" "vgg11 needs inputs of at least 32x32" \
  "$PEERLESS" init --model vgg11 --input-size 16 --out "$TMP/x.safetensors"

"$PEERLESS" init --model lenet5 --num-classes 10 --seed 3 --out "$TMP/lenet5.safetensors" 2>/dev/null
"$PEERLESS" init --model squeezenet1_1 --num-classes 10 --seed 3 --out "$TMP/sq.safetensors" 2>/dev/null
check "init writes checkpoints" test -s "$TMP/lenet5.safetensors" -a -s "$TMP/sq.safetensors"
mk_batch "$TMP/ok.safetensors" 2 1 32 3,9
mk_batch "$TMP/ok32.safetensors" 2 1 32 3,9 I32
mk_batch "$TMP/rgb.safetensors" 2 3 32 3,9

grad() { "$PEERLESS" grad --threads 1 "$@"; }
grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/ok.safetensors" --out "$TMP/g.safetensors" 2>"$TMP/err"
check "grad runs (int64 targets)" test -s "$TMP/g.safetensors"
check "grad output has loss and gradients" bash -c "'$PEERLESS' inspect '$TMP/g.safetensors' | grep -qE '^loss .*F32 +\[1\]' && '$PEERLESS' inspect '$TMP/g.safetensors' | grep -qE '^fc3.weight .*\[10, 84\]'"
grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/ok32.safetensors" --out "$TMP/g32.safetensors" 2>/dev/null
check "grad accepts int32 targets" cmp -s "$TMP/g.safetensors" "$TMP/g32.safetensors"

expect_error "grad unknown model" "unknown model 'lenet6'" \
  grad --model lenet6 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/ok.safetensors" --out "$TMP/o"
expect_error "grad missing flags" "--checkpoint.*required" grad --model lenet5
mk_batch "$TMP/notarget.safetensors" 2 1 32 3,9 I64 target
expect_error "batch without target" "notarget.safetensors: no tensor 'target'" \
  grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/notarget.safetensors" --out "$TMP/o"
mk_batch "$TMP/noinput.safetensors" 2 1 32 3,9 I64 input
expect_error "batch without input" "noinput.safetensors: no tensor 'input'" \
  grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/noinput.safetensors" --out "$TMP/o"
mk_batch "$TMP/ftarget.safetensors" 2 1 32 3,9 float
expect_error "float targets" "'target' is F32.*expected I64 or I32" \
  grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/ftarget.safetensors" --out "$TMP/o"
mk_batch "$TMP/short.safetensors" 2 1 32 3
expect_error "target count" "'target'.*1 entries.*expected I64 or I32 \[2\]" \
  grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/short.safetensors" --out "$TMP/o"
mk_batch "$TMP/range.safetensors" 2 1 32 3,10
expect_error "target out of range" "target\[1\] = 10 outside \[0, 10\)" \
  grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/range.safetensors" --out "$TMP/o"
mk_batch "$TMP/neg.safetensors" 2 1 32 -1,2
expect_error "negative target" "target\[0\] = -1" \
  grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/neg.safetensors" --out "$TMP/o"
expect_error "checkpoint of another model" "checkpoint .*sq.safetensors.*'fc3.weight'.*lenet5" \
  grad --model lenet5 --checkpoint "$TMP/sq.safetensors" --batch "$TMP/ok.safetensors" --out "$TMP/o"
expect_error "checkpoint of another model (--num-classes)" "sq.safetensors.*conv1.weight" \
  grad --model lenet5 --num-classes 10 --checkpoint "$TMP/sq.safetensors" --batch "$TMP/ok.safetensors" --out "$TMP/o"
expect_error "input channels differ from the checkpoint" "lenet5.safetensors.*conv1.weight.*shape" \
  grad --model lenet5 --checkpoint "$TMP/lenet5.safetensors" --batch "$TMP/rgb.safetensors" --out "$TMP/o"
head -c 20000 "$TMP/lenet5.safetensors" > "$TMP/trunc.safetensors"
expect_error "truncated checkpoint" "trunc.safetensors.*(past the end|truncated)" \
  grad --model lenet5 --checkpoint "$TMP/trunc.safetensors" --batch "$TMP/ok.safetensors" --out "$TMP/o"
expect_error "missing checkpoint" "nowhere.safetensors" \
  grad --model lenet5 --checkpoint "$TMP/nowhere.safetensors" --batch "$TMP/ok.safetensors" --out "$TMP/o"

finish
