#!/usr/bin/env bash
# cli_aws_local.sh — the AWS path of the serverless mode end to end, against
# the local platform: `peerless faas serve --require-sigv4` serves Lambda's
# Invoke API and the Step Functions API; the state machine from `peerless
# statemachine` is created through the API by curl's own SigV4 signer (an
# independent implementation); `peerless run --functions aws
# --state-machine-arn` drives every step with StartExecution /
# DescribeExecution and must train exactly the model P2P training does.
# Then the failures a user meets: a wrong ARN, a failing execution, a
# timed-out one, a wrong secret.
source "$(dirname "$0")/lib_cli.sh"
cd "$TMP"
export AWS_ACCESS_KEY_ID=AKIDLOCALTEST AWS_SECRET_ACCESS_KEY=local-secret AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION
ACCT=000000000000
FN_ARN="arn:aws:lambda:us-east-1:$ACCT:function:compute_gradient"
SM="arn:aws:states:us-east-1:$ACCT:stateMachine"

"$PEERLESS" statemachine --batches 2 --function-arn "$FN_ARN" --task-timeout 60 --out sm.json
check "statemachine writes the definition" test -s sm.json

"$PEERLESS" faas serve --port 0 --require-sigv4 --log "$TMP/report.jsonl" \
  --function compute_gradient="$PEERLESS function" --memory 512 --timeout 60 --concurrency 8 \
  --function broken="env PEERLESS_STORE=nosuch://bucket $PEERLESS function" --timeout 10 \
  --state-machine preloaded=sm.json >serve.out 2>serve.err &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" serve.out && break; sleep 0.05; done
URL=$(sed -n 's/^listening on //p' serve.out)
check "platform listens" test -n "$URL"
check "--state-machine prints the ARN" grep -qx "state machine $SM:preloaded" serve.out
check "signatures are verified with the configured key" grep -q "signatures verified for access key AKIDLOCALTEST" serve.err

# sfn ACTION JSON [SECRET]: a Step Functions call signed by curl; body in sfn.json, status printed.
sfn() {
  curl -s -o sfn.json -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:states" \
    --user "$AWS_ACCESS_KEY_ID:${3:-$AWS_SECRET_ACCESS_KEY}" \
    -H "X-Amz-Target: AWSStepFunctions.$1" -H 'Content-Type: application/x-amz-json-1.0' -d "$2" "$URL/"
}
create_body() { # create_body NAME FILE: a CreateStateMachine request
  /usr/bin/python3 -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "definition": open(sys.argv[2]).read(),
    "roleArn": "arn:aws:iam::000000000000:role/peerless-sfn"}))' "$1" "$2"
}

code=$(sfn CreateStateMachine "$(create_body peerless sm.json)")
check "CreateStateMachine (signed by curl) returns the ARN" \
  test "$code $(json_get sfn.json stateMachineArn)" = "200 $SM:peerless"
code=$(sfn ListStateMachines '{}')
check "ListStateMachines lists both" test "$code $(grep -o '"name"' sfn.json | wc -l)" = "200 2"
code=$(curl -s -o unsigned.json -w '%{http_code}' -H 'X-Amz-Target: AWSStepFunctions.ListStateMachines' \
  -H 'Content-Type: application/x-amz-json-1.0' -d '{}' "$URL/")
check "unsigned request rejected (403 MissingAuthenticationTokenException)" \
  test "$code $(json_get unsigned.json __type)" = "403 MissingAuthenticationTokenException"
code=$(sfn ListStateMachines '{}' wrong-secret)
check "wrong secret rejected (403 InvalidSignatureException)" \
  test "$code $(json_get sfn.json __type)" = "403 InvalidSignatureException"

# The same training, P2P and on Step Functions: the same model.
"$PEERLESS" run --peers 2 --model mlp --dataset synthetic --epochs 1 --batches 2 --run-dir "$TMP/p2p" \
  >p2p.json 2>p2p.err
check "p2p run" test "$(json_get p2p.json identical_models)" = True
"$PEERLESS" run --mode serverless --functions aws --aws-endpoint "$URL" --state-machine-arn "$SM:peerless" \
  --peers 2 --model mlp --dataset synthetic --epochs 1 --batches 2 --run-dir "$TMP/sfn" >sfn_run.json 2>sfn_run.err
check "Step Functions run: identical models" test "$(json_get sfn_run.json identical_models)" = True
check "Step Functions run = P2P run (model checksum)" \
  test "$(json_get sfn_run.json model_checksum)" = "$(json_get p2p.json model_checksum)"
steps=$(json_get sfn_run.json steps)
# Execution names stay unique when the same run is started again.
"$PEERLESS" run --mode serverless --functions aws --aws-endpoint "$URL" --state-machine-arn "$SM:peerless" \
  --peers 2 --model mlp --dataset synthetic --epochs 1 --batches 2 --run-dir "$TMP/sfn2" >sfn_run2.json 2>sfn_run2.err
check "the same run again on the same state machine" \
  test "$(json_get sfn_run2.json model_checksum)" = "$(json_get p2p.json model_checksum)"
code=$(sfn ListExecutions "{\"stateMachineArn\":\"$SM:peerless\",\"statusFilter\":\"SUCCEEDED\"}")
check "one SUCCEEDED execution per run, peer and step" \
  test "$code $(grep -o '"status":"SUCCEEDED"' sfn.json | wc -l)" = "200 $((2 * 2 * steps))"
check "the functions ran: one gradient object per batch" \
  test "$(find "$TMP/sfn/store/peerless/grads" -name '*.safetensors' | wc -l)" -eq "$((2 * steps))"
check "the platform logged the invocations" test "$(grep -c '"outcome":"success"' report.jsonl)" -ge "$((2 * 2 * steps * 2))"
exec_arn=$(/usr/bin/python3 -c 'import json; print(json.load(open("sfn.json"))["executions"][0]["executionArn"])')
code=$(sfn GetExecutionHistory "{\"executionArn\":\"$exec_arn\",\"reverseOrder\":true,\"maxResults\":1}")
check "history of a step ends with ExecutionSucceeded" \
  bash -c "test $code = 200 && grep -q '\"type\":\"ExecutionSucceeded\"' sfn.json"

# run_sfn NAME ARN: a one-peer serverless run on Step Functions (stderr in NAME.err).
run_sfn() {
  "$PEERLESS" run --mode serverless --functions aws --aws-endpoint "$URL" --state-machine-arn "$2" \
    --peers 1 --model mlp --dataset synthetic --epochs 1 --batches 2 --run-dir "$TMP/$1" >"$1.json" 2>"$1.err"
}
run_sfn wrong "$SM:nosuch"
check "wrong ARN: the run fails" test $? -ne 0
check "wrong ARN: the error names the ARN and the endpoint" \
  grep -q "StartExecution at $URL: HTTP 400 StateMachineDoesNotExist: State Machine Does Not Exist: '$SM:nosuch'" wrong.err

# A function that cannot start: the execution fails and the peer reports its error and cause.
"$PEERLESS" statemachine --batches 2 --function-arn "arn:aws:lambda:us-east-1:$ACCT:function:broken" --out broken.json
sfn CreateStateMachine "$(create_body broken broken.json)" >/dev/null
run_sfn failing "$SM:broken"
check "failing execution: the run fails" test $? -ne 0
check "failing execution: the peer reports FAILED with the function's error and cause" \
  grep -qE "execution arn:aws:states:us-east-1:$ACCT:execution:broken:[^ ]+ FAILED: Runtime.InitError: .*unknown scheme 'nosuch'" failing.err

# The state machine's TimeoutSeconds: a pause longer than the timeout.
/usr/bin/python3 - sm.json slow.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["TimeoutSeconds"] = 1
d["States"]["Pause"] = {"Type": "Wait", "Seconds": 3, "Next": d["StartAt"]}
d["StartAt"] = "Pause"
json.dump(d, open(sys.argv[2], "w"))
PY
sfn CreateStateMachine "$(create_body slow slow.json)" >/dev/null
run_sfn slow "$SM:slow"
check "timed-out execution: the run fails" test $? -ne 0
check "timed-out execution: the peer reports TIMED_OUT and States.Timeout" \
  grep -qE "execution arn:aws:states:us-east-1:$ACCT:execution:slow:[^ ]+ TIMED_OUT: States.Timeout: The execution timed out after 1 seconds" slow.err

# The Lambda Invoke path of --functions aws goes through the same signature check.
AWS_SECRET_ACCESS_KEY=wrong-secret "$PEERLESS" run --mode serverless --functions aws --aws-endpoint "$URL" \
  --peers 1 --model mlp --dataset synthetic --epochs 1 --batches 2 --run-dir "$TMP/badkey" >badkey.json 2>badkey.err
check "Invoke with a wrong secret fails" test $? -ne 0
check "Invoke with a wrong secret: the peer reports InvalidSignatureException" grep -q "InvalidSignatureException" badkey.err

kill -TERM $SERVER
rc=0; wait $SERVER || rc=$?
check "platform stops cleanly on SIGTERM" test $rc -eq 0

echo '{"StartAt":"X","States":{}}' >bad.json
expect_error "--state-machine with a bad definition" "--state-machine bad=bad.json: state machine 'bad': InvalidDefinition" \
  "$PEERLESS" faas serve --port 0 --function f=true --state-machine bad=bad.json
expect_error "--state-machine with a missing file" "cannot open 'none.json'" \
  "$PEERLESS" faas serve --port 0 --function f=true --state-machine m=none.json
expect_error "--state-machine without NAME=FILE" "--state-machine 'x': expected NAME=FILE.json" \
  "$PEERLESS" faas serve --port 0 --function f=true --state-machine x
finish
