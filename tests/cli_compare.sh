#!/usr/bin/env bash
# The study end to end: `peerless compare` runs P2P and serverless (local
# function platform + state machine + `peerless function`) on the same seed
# and data; the two final models must be identical, and the summary must say
# where the time went. Also `run --mode serverless` alone.
source "$(dirname "$0")/lib_cli.sh"
cd "$TMP"

"$PEERLESS" compare --peers 2 --model lenet5 --dataset synthetic --epochs 2 --batches 4 --run-dir "$TMP/cmp" \
  > cmp.json 2> cmp.err
check "compare exits 0" test $? -eq 0
check "models match between the architectures" test "$(json_get cmp.json models_match)" = True
check "table shows where the time went" grep -q "gradient computation s" cmp.err
check "summary has both runs with time, bytes, invocations and cost" /usr/bin/python3 - cmp.json <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
p, s = d["p2p"], d["serverless"]
for r in (p, s):
    assert r["identical_models"] and r["steps"] == 2, r  # one step (4 batches) per epoch
    assert r["seconds"] > 0 and r["bytes_sent"] > 0 and r["cost"]["total_usd"] > 0, r
# 2 peers x 2 steps x (ProcessInput + 4 batches)
assert s["invocations"] == 2 * 2 * 5, s["invocations"]
assert 1 <= s["cold_starts"] <= s["invocations"], s
assert s["cost"]["lambda_usd"] > 0 and p["cost"]["lambda_usd"] == 0
assert p["model_checksum"] == s["model_checksum"]
PY
check "per-step metrics of both runs" test -s "$TMP/cmp/p2p/metrics/peer-0.jsonl" -a -s "$TMP/cmp/serverless/metrics/peer-1.csv"
check "function REPORT log written" test -s "$TMP/cmp/serverless/metrics/functions.jsonl"

# Serverless alone, batch-norm model, 3 peers.
"$PEERLESS" run --mode serverless --peers 3 --model lenet5 --dataset synthetic --epochs 1 --batches 3 \
  --run-dir "$TMP/sl" > sl.json 2>/dev/null
check "serverless run: identical models" test "$(json_get sl.json identical_models)" = True
check "one gradient object per batch and step" test "$(find "$TMP/sl/store/peerless/grads" -name '*.safetensors' | wc -l)" -eq 9

# A function that crashes once is retried by the state machine: the run
# succeeds, the crash is in the platform's REPORT log, and there is still
# exactly one gradient object per batch and step.
touch "$TMP/crash-once"
PEERLESS_FAULT_CRASH_ONCE="$TMP/crash-once" "$PEERLESS" run --mode serverless --peers 2 --model mlp \
  --dataset synthetic --epochs 1 --batches 2 --run-dir "$TMP/cr" > cr.json 2>/dev/null
check "crash-once run succeeds" test "$(json_get cr.json identical_models)" = True
check "the crash happened" test ! -e "$TMP/crash-once"
check "the platform recorded the crash" grep -q "Runtime.ExitError" "$TMP/cr/metrics/functions.jsonl"
check "still one gradient object per batch and step" \
  test "$(find "$TMP/cr/store/peerless/grads" -name '*.safetensors' | wc -l)" -eq 4

# --functions aws: the peers call Lambda's Invoke API with SigV4 (the same
# request code as against AWS), here pointed at a local platform.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PEERLESS" faas serve --port "$port" --function compute_gradient="$PEERLESS function" --memory 512 --timeout 60 \
  --concurrency 8 > faas.out 2> faas.err &
faas=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
AWS_ACCESS_KEY_ID=AKIDLOCALTEST AWS_SECRET_ACCESS_KEY=local-secret AWS_REGION=us-east-1 \
  "$PEERLESS" run --mode serverless --functions aws --aws-endpoint "http://127.0.0.1:$port" --peers 2 --model mlp \
  --dataset synthetic --epochs 1 --batches 2 --run-dir "$TMP/aws" > aws.json 2> aws.err
check "--functions aws (Invoke API via SigV4) trains with identical models" test "$(json_get aws.json identical_models)" = True
check "the functions really ran on the platform" test "$(find "$TMP/aws/store/peerless/grads" -name '*.safetensors' | wc -l)" -eq 4
kill -TERM $faas; wait $faas 2>/dev/null

expect_error "serverless peer needs batch objects" "needs batch objects" \
  "$PEERLESS" peer --mode serverless --transport tcp://127.0.0.1:9 --store "file://$TMP/none" --dataset synthetic
expect_error "unknown mode" "--mode expects p2p or serverless" "$PEERLESS" run --mode cloud --dataset synthetic
finish
