# cli_statemachine.sh — `peerless statemachine`: the definition is valid JSON
# with the expected states and fields (checked with Python's json module,
# against the field names of the Amazon States Language); bad flags give
# one clear error line.
source "$(dirname "$0")/lib_cli.sh"

ARN=arn:aws:lambda:us-east-1:123456789012:function:peerless
"$PEERLESS" statemachine --batches 4 --function-arn "$ARN" --max-concurrency 2 --out "$TMP/sm.json" 2>"$TMP/err"
check "writes --out" test -s "$TMP/sm.json"
check "definition shape" /usr/bin/python3 - "$TMP/sm.json" "$ARN" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); arn = sys.argv[2]
s = d["States"]
assert d["StartAt"] == "ProcessInput" and set(s) == {"ProcessInput", "ComputeGradients", "Aggregate"}, s.keys()
p = s["ProcessInput"]
assert p["Type"] == "Task" and p["Resource"] == arn and p["Next"] == "ComputeGradients"
assert p["Parameters"] == {"action": "process_input", "input.$": "$"}
m = s["ComputeGradients"]
assert m["Type"] == "Map" and m["ItemsPath"] == "$.batches" and m["MaxConcurrency"] == 2 and m["Next"] == "Aggregate"
assert m["ItemSelector"]["batch.$"] == "$$.Map.Item.Value.batch" and m["ItemSelector"]["action"] == "compute_gradient"
assert m["ItemSelector"]["out_key.$"] == "$$.Map.Item.Value.out_key" and m["ItemSelector"]["model.$"] == "$.model"
assert all(k.endswith(".$") == isinstance(v, str) and (not k.endswith(".$") or v.startswith("$"))
           for k, v in m["ItemSelector"].items() if k != "action")
ip = m["ItemProcessor"]
assert ip["ProcessorConfig"] == {"Mode": "INLINE"}
t = ip["States"][ip["StartAt"]]
assert t["Type"] == "Task" and t["Resource"] == arn and t["End"] is True
r = t["Retry"][0]
assert "Lambda.ServiceException" in r["ErrorEquals"] and r["MaxAttempts"] == 3 and r["BackoffRate"] == 2
a = s["Aggregate"]
assert a["Type"] == "Pass" and a["End"] is True and a["Parameters"]["gradients.$"] == "$.results[*].gradient"
PY
"$PEERLESS" statemachine --batches 2 --function-arn "$ARN" --process-input-arn arn:aws:lambda:r:1:function:pi \
    --aggregate-arn arn:aws:lambda:r:1:function:agg >"$TMP/sm2.json"
check "custom ARNs" /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["States"]
assert s["ProcessInput"]["Resource"].endswith(":pi") and "Parameters" not in s["ProcessInput"]
assert s["Aggregate"]["Type"] == "Task" and s["Aggregate"]["Resource"].endswith(":agg")
' "$TMP/sm2.json"
check "--help" bash -c "\"$PEERLESS\" statemachine --help >/dev/null"

expect_error "missing --batches" "--batches is required" "$PEERLESS" statemachine --function-arn "$ARN"
expect_error "missing --function-arn" "--function-arn is required" "$PEERLESS" statemachine --batches 3
expect_error "zero batches" "batches" "$PEERLESS" statemachine --batches 0 --function-arn "$ARN"
expect_error "negative concurrency" "max-concurrency" "$PEERLESS" statemachine --batches 2 --function-arn "$ARN" --max-concurrency -1
expect_error "bad ARN" "expected a function ARN" "$PEERLESS" statemachine --batches 2 --function-arn 'a b'
expect_error "unknown flag" "batchs" "$PEERLESS" statemachine --batchs 2 --function-arn "$ARN"
expect_error "unwritable --out" "cannot open --out" "$PEERLESS" statemachine --batches 2 --function-arn "$ARN" --out /nonexistent/dir/x.json
finish
