#!/usr/bin/python3
"""A Lambda `provided`-style runtime in Python (stdlib only) for tests/cli_faas.sh.

Loops on the Runtime API; event {"op": "sleep", "ms": N} sleeps first,
{"op": "error"} reports a function error; otherwise answers
{"pid": ..., "request_id": ..., "function": ..., "event": <event>}."""
import json
import os
import time
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def post(path, body, headers=None):
    req = urllib.request.Request(API + path, data=json.dumps(body).encode(), method="POST",
                                 headers=headers or {})
    urllib.request.urlopen(req).read()


while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read() or b"{}")
    if event.get("op") == "sleep":
        time.sleep(event.get("ms", 0) / 1000.0)
    if event.get("op") == "error":
        post(f"/invocation/{rid}/error", {"errorMessage": "asked to fail", "errorType": "PyError",
                                          "stackTrace": []},
             {"Lambda-Runtime-Function-Error-Type": "PyError"})
        continue
    post(f"/invocation/{rid}/response", {"pid": os.getpid(), "request_id": rid,
                                         "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
                                         "event": event})
