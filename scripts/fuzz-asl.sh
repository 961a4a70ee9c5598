#!/usr/bin/env bash
# fuzz-asl.sh — build tests/fuzz_asl.c with libFuzzer + ASan + UBSan and run
# it on a seed corpus of state-machine definitions this script creates (the
# generated gradient machine and one definition per state type).
#
#   scripts/fuzz-asl.sh [SECONDS] [WORKDIR]
#
# SECONDS defaults to 60; WORKDIR (binary, corpus, crash artifacts) defaults
# to build-fuzz-asl/ in the source tree. Exits nonzero if the fuzzer finds a
# crash, leak or broken property (the input is saved in WORKDIR/artifacts/).
# Needs clang with the libFuzzer runtime:
#   apt-get install -y clang libclang-rt-14-dev
set -euo pipefail

secs=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${2:-$root/build-fuzz-asl}
cc=${CC_FUZZ:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz-asl: '$cc' not found; install: apt-get install -y clang libclang-rt-14-dev" >&2
    exit 2
fi
mkdir -p "$work/corpus" "$work/artifacts"

"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -pthread \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/include" -I"$root/src" \
    "$root/tests/fuzz_asl.c" "$root"/src/faas/asl_*.c "$root/src/core/status.c" \
    -lcjson -lm -o "$work/fuzz_asl"

/usr/bin/python3 - "$work/corpus" "$work/asl.dict" <<'PY'
import json, sys
corpus, dict_path = sys.argv[1], sys.argv[2]
task = {"Type": "Task", "Resource": "arn:aws:lambda:r:1:function:f", "TimeoutSeconds": 5,
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "F"}],
        "InputPath": "$.a", "Parameters": {"x.$": "$.b[0]", "y": 1, "z.$": "$$.Execution.Id"},
        "ResultSelector": {"r.$": "$['k']"}, "ResultPath": "$.out", "OutputPath": "$", "Next": "C"}
choice = {"Type": "Choice", "Choices": [
    {"And": [{"Variable": "$.n", "NumericLessThan": 3}, {"Not": {"Variable": "$.s", "StringMatches": "a*"}}], "Next": "W"},
    {"Variable": "$.p", "IsPresent": True, "Next": "M"}], "Default": "F"}
seeds = {
    "all_types": {"Comment": "c", "StartAt": "T", "States": {
        "T": task, "C": choice, "W": {"Type": "Wait", "Seconds": 1, "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": [1], "End": True}}}],
              "Next": "M"},
        "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ItemSelector": {"v.$": "$$.Map.Item.Value"},
              "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "S", "States": {"S": {"Type": "Succeed"}}},
              "Next": "F"},
        "F": {"Type": "Fail", "Error": "E", "Cause": "c"}}},
    "minimal": {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}},
}
for name, d in seeds.items():
    open(f"{corpus}/seed_{name}", "w").write(json.dumps(d))
tokens = ['"Type"', '"Task"', '"Pass"', '"Choice"', '"Wait"', '"Succeed"', '"Fail"', '"Parallel"', '"Map"',
          '"StartAt"', '"States"', '"Next"', '"End"', '"Resource"', '"Retry"', '"Catch"', '"ErrorEquals"',
          '"States.ALL"', '"InputPath"', '"OutputPath"', '"ResultPath"', '"Parameters"', '"ItemProcessor"',
          '"Iterator"', '"Branches"', '"Choices"', '"Variable"', '"And"', '"Or"', '"Not"', '"Default"',
          '"$.a[0]"', '"$$.Map.Item.Value"', '"$[\'k\']"', '"$.a[*].b"', '.$"', 'null', 'true', '-1', '1e309']
with open(dict_path, "w") as f:
    for i, t in enumerate(tokens):
        f.write("t%d=%s\n" % (i, json.dumps(t)))
PY

echo "fuzz-asl: running ${secs}s on $(ls "$work/corpus" | wc -l) corpus files"
"$work/fuzz_asl" -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -dict="$work/asl.dict" -artifact_prefix="$work/artifacts/" \
    -print_final_stats=1 "$work/corpus"
