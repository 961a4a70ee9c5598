#!/usr/bin/env bash
# cli_faas.sh — `peerless faas serve` end to end with a Python runtime
# (tests/faas_runtime_echo.py): invoke, warm reuse, throttling, function
# errors, 404, flag errors, REPORT log, clean shutdown on SIGTERM.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
SRC=${PEERLESS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RT="/usr/bin/python3 $SRC/tests/faas_runtime_echo.py"

expect_error "no function" "at least one --function" "$PEERLESS" faas serve --port 0
expect_error "option before function" "must follow a --function" "$PEERLESS" faas serve --memory 64 --function a=true
expect_error "bad memory" "--memory '5': expected a number" "$PEERLESS" faas serve --function a=true --memory 5
expect_error "bad function" "expected NAME=COMMAND" "$PEERLESS" faas serve --function nameonly
expect_error "unknown subcommand" "expected the subcommand 'serve'" "$PEERLESS" faas run

"$PEERLESS" faas serve --port 0 --log "$TMP/report.jsonl" \
  --function echo="$RT" --timeout 5 --concurrency 1 --idle-timeout 60 \
  --function other="$RT" --memory 256 >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$TMP/serve.out" && break; sleep 0.05; done
URL=$(sed -n 's/^listening on //p' "$TMP/serve.out")
check "prints the listening address" test -n "$URL"
check "logs the memory-limit mode" grep -qE "memory limits enforced with (cgroup-v1|rlimit-as)" "$TMP/serve.err"
INV="$URL/2015-03-31/functions"

code=$(curl -s -o "$TMP/r1" -w '%{http_code}' -d '{"n":1}' "$INV/echo/invocations")
code2=$(curl -s -o "$TMP/r2" -w '%{http_code}' -d '{"n":2}' "$INV/echo/invocations")
check "invoke returns 200" test "$code$code2" = 200200
check "event round trip" test "$(json_get "$TMP/r2" event)" = "{'n': 2}"
PID=$(json_get "$TMP/r1" pid)
check "warm reuse (same process)" test "$PID" = "$(json_get "$TMP/r2" pid)"

curl -s -o "$TMP/s1" -w '%{http_code}\n' -d '{"op":"sleep","ms":800}' "$INV/echo/invocations" >"$TMP/c1" &
sleep 0.3
code=$(curl -s -o "$TMP/s2" -w '%{http_code}' -d '{}' "$INV/echo/invocations")
wait $!
check "concurrency 1: second call throttled (429)" test "$code" = 429
check "throttle body is Lambda's" grep -q '"Rate Exceeded."' "$TMP/s2"
check "first call completes" grep -q 200 "$TMP/c1"

curl -s -D "$TMP/h" -o "$TMP/e" -d '{"op":"error"}' "$INV/echo/invocations"
check "function error header" grep -qi '^X-Amz-Function-Error: Unhandled' "$TMP/h"
check "function error body" test "$(json_get "$TMP/e" errorType)" = PyError
code=$(curl -s -o "$TMP/nf" -w '%{http_code}' -d '{}' "$INV/nosuch/invocations")
check "unknown function 404" test "$code" = 404
check "404 names the function" grep -q 'Function not found: arn:aws:lambda:us-east-1:000000000000:function:nosuch' "$TMP/nf"
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{' "$INV/other/invocations")
check "bad JSON 400" test "$code" = 400
curl -s -o "$TMP/o" -d '{}' "$INV/other/invocations"
check "second function serves" test "$(json_get "$TMP/o" function)" = other
OPID=$(json_get "$TMP/o" pid)

kill -TERM $SERVER
rc=0; wait $SERVER || rc=$?
check "SIGTERM stops the server cleanly" test $rc -eq 0
check "no orphan runtime processes" bash -c "! kill -0 $PID 2>/dev/null && ! kill -0 $OPID 2>/dev/null"
check "one REPORT line per invocation" test "$(grep -c '"type":"REPORT"' "$TMP/report.jsonl")" -eq 5
check "REPORT lines are JSON with billed >= duration" /usr/bin/python3 -c '
import json,sys,math
rows=[json.loads(l) for l in open(sys.argv[1])]
assert all(r["billed_duration_ms"]==max(1,math.ceil(r["duration_ms"])) for r in rows), rows
assert sum(r["cold_start"] for r in rows)==2 and all((r["init_duration_ms"]>0)==r["cold_start"] for r in rows), rows
' "$TMP/report.jsonl"
finish
