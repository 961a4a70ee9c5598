#!/usr/bin/env bash
# peerless train end to end on the synthetic dataset: the JSON summary, the
# per-epoch metrics file, the checkpoint (inspect + --init), determinism by
# seed, and both backends agreeing.
source "$(dirname "$0")/lib_cli.sh"

run() { "$PEERLESS" train --dataset synthetic "$@" 2>"$TMP/stderr"; }

run --model lenet5 --epochs 3 --batch-size 32 --seed 7 --threads 2 \
  --metrics "$TMP/m.jsonl" --checkpoint-out "$TMP/ck.safetensors" > "$TMP/sum.json"
check "train exits 0" test $? -eq 0
check "summary is one JSON line on stdout" test "$(grep -c '' "$TMP/sum.json")" -eq 1
acc=$(json_get "$TMP/sum.json" test_accuracy)
check "synthetic problem is learned (test_accuracy $acc >= 0.9)" \
  /usr/bin/python3 -c "import sys; sys.exit(0 if $acc >= 0.9 else 1)"
check "summary has epochs=3" test "$(json_get "$TMP/sum.json" epochs)" = 3
for k in test_loss seconds model_checksum; do
  check "summary has $k" json_get "$TMP/sum.json" $k
done
check "metrics file has one line per epoch" test "$(grep -c '' "$TMP/m.jsonl")" -eq 3
check "metrics rows carry every field" /usr/bin/python3 - "$TMP/m.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = {"epoch", "train_loss", "val_loss", "test_loss", "test_accuracy", "lr", "seconds", "images_per_s"}
assert all(keys <= set(r) for r in rows), rows
assert [r["epoch"] for r in rows] == [1, 2, 3]
assert all(math.isfinite(r["train_loss"]) and r["images_per_s"] > 0 for r in rows)
assert rows[-1]["train_loss"] < rows[0]["train_loss"], "training loss must fall"
PY
check "progress lines on stderr when not a terminal" grep -q "epoch 1/3" "$TMP/stderr"

"$PEERLESS" inspect "$TMP/ck.safetensors" > "$TMP/inspect.txt"
check "checkpoint lists conv1.weight [6, 1, 5, 5]" grep -qE '^conv1.weight +F32 +\[6, 1, 5, 5\]' "$TMP/inspect.txt"
check "checkpoint records the model" grep -q '^# model = lenet5' "$TMP/inspect.txt"

# The checkpoint holds exactly the trained model: --init with lr 0 (sgd)
# keeps it. (mlp: lenet5's batch norm would update its running statistics.)
run --model mlp --epochs 1 --seed 7 --checkpoint-out "$TMP/mlp.safetensors" > "$TMP/m1.json"
run --model mlp --epochs 1 --optimizer sgd --lr 0 --seed 9 --init "$TMP/mlp.safetensors" > "$TMP/re.json"
check "--init restores the trained parameters" \
  test "$(json_get "$TMP/re.json" model_checksum)" = "$(json_get "$TMP/m1.json" model_checksum)"

# Same seed and threads -> bit-identical model; another seed -> a different one.
run --model lenet5 --epochs 3 --batch-size 32 --seed 7 --threads 2 > "$TMP/sum2.json"
check "same seed gives the same model" \
  test "$(json_get "$TMP/sum2.json" model_checksum)" = "$(json_get "$TMP/sum.json" model_checksum)"
run --model lenet5 --epochs 1 --batch-size 32 --seed 8 --threads 2 > "$TMP/sum3.json"
check "another seed gives another model" \
  test "$(json_get "$TMP/sum3.json" model_checksum)" != "$(json_get "$TMP/sum.json" model_checksum)"

# The reference backend trains the same model (up to float summation order).
run --model mlp --epochs 1 --train-limit 512 --backend ref --seed 3 > "$TMP/ref.json"
run --model mlp --epochs 1 --train-limit 512 --backend fast --seed 3 > "$TMP/fast.json"
check "ref and fast backends reach the same test loss" /usr/bin/python3 - "$TMP/ref.json" "$TMP/fast.json" <<'PY'
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:])
assert abs(a["test_loss"] - b["test_loss"]) <= 1e-3 * abs(a["test_loss"]), (a, b)
PY
# Augmentation: flip changes what the model sees (a different model from the
# same seed), the same --augment twice gives the same model; bad kinds fail.
run --model mlp --epochs 1 --train-limit 512 --seed 5 --augment none > "$TMP/a0.json"
run --model mlp --epochs 1 --train-limit 512 --seed 5 --augment flip > "$TMP/a1.json"
run --model mlp --epochs 1 --train-limit 512 --seed 5 --augment flip > "$TMP/a2.json"
check "--augment flip trains a different model than none" \
  test "$(json_get "$TMP/a0.json" model_checksum)" != "$(json_get "$TMP/a1.json" model_checksum)"
check "--augment flip is deterministic" \
  test "$(json_get "$TMP/a1.json" model_checksum)" = "$(json_get "$TMP/a2.json" model_checksum)"
expect_error "bad --augment" "--augment: 'sideways' invalid" "$PEERLESS" train --dataset synthetic --augment sideways

# The torchvision models' recipe (AdamW + one-cycle, batch 64) is announced,
# and --optimizer replaces it.
"$PEERLESS" train --dataset synthetic --model squeezenet1_1 --epochs 1 --train-limit 64 --threads 1 \
  > /dev/null 2> "$TMP/rec.txt"
check "zoo recipe: adamw, one-cycle, batch 64" grep -q "adamw lr 0.003 weight decay 0.05, onecycle schedule, batch 64" "$TMP/rec.txt"
"$PEERLESS" train --dataset synthetic --model squeezenet1_1 --epochs 1 --train-limit 64 --threads 1 --optimizer sgd \
  > /dev/null 2> "$TMP/rec2.txt"
check "--optimizer drops the recipe's lr and schedule" grep -q "sgd lr 0.01 weight decay 0, plateau schedule, batch 64" "$TMP/rec2.txt"

for opt in sgd adam adamw rmsprop adagrad; do
  run --model mlp --epochs 1 --train-limit 512 --optimizer $opt > "$TMP/o.json"
  check "optimizer $opt trains" test $? -eq 0
done
finish
