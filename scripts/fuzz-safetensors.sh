#!/usr/bin/env bash
# fuzz-safetensors.sh — build tests/fuzz_safetensors.c with libFuzzer +
# ASan + UBSan and run it on a seed corpus this script creates.
#
#   scripts/fuzz-safetensors.sh [SECONDS] [WORKDIR]
#
# SECONDS defaults to 60; WORKDIR (binary, corpus, crash artifacts) defaults
# to build-fuzz-safetensors/ in the source tree. Exits nonzero if the fuzzer
# finds a crash, leak or broken property (the input is saved in
# WORKDIR/artifacts/). Needs clang with the libFuzzer runtime:
#   apt-get install -y clang libclang-rt-14-dev
set -euo pipefail

secs=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${2:-$root/build-fuzz-safetensors}
cc=${CC_FUZZ:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz-safetensors: '$cc' not found; install: apt-get install -y clang libclang-rt-14-dev" >&2
    exit 2
fi
mkdir -p "$work/corpus" "$work/artifacts"

"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/include" -I"$root/src" \
    "$root/tests/fuzz_safetensors.c" "$root/src/io/safetensors.c" \
    "$root/src/core/status.c" "$root/src/core/tensor.c" "$root/src/core/strbuf.c" \
    -lcjson -lm -o "$work/fuzz_safetensors"

# Seed corpus: valid files of every dtype, metadata, scalars, empty tensors,
# plus a few near misses; and a dictionary of the format's tokens.
/usr/bin/python3 - "$work/corpus" "$work/safetensors.dict" <<'PY'
import json, struct, sys
corpus, dict_path = sys.argv[1], sys.argv[2]
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1}

def st(tensors, meta=None, pad=True, extra=b""):
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dt, shape in tensors:
        n = SIZE[dt]
        for d in shape:
            n *= d
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += bytes((7 * i + 3) & 0xff for i in range(n))
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data + extra

seeds = {
    "empty": st([]),
    "meta": st([], {"format": "pt", "k\u00e9y": "v\\\"al"}),
    "all_dtypes": st([(dt.lower(), dt, [2, 3]) for dt in SIZE], {"step": "1"}),
    "scalar_and_zero": st([("s", "F32", []), ("z", "F16", [0, 4]), ("u", "U8", [5])]),
    "unpadded": st([("w", "BF16", [3, 1, 2])], pad=False),
    "deep": st([("x", "I64", [1, 1, 1, 1, 1, 2])]),
    "trailing": st([("t", "I32", [2])], extra=b"junk"),
    "bad_dtype": st([("x", "U8", [2])]).replace(b'"U8"', b'"U9"'),
}
h = b'{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}'
seeds["overlap"] = struct.pack("<Q", len(h)) + h + b"\0" * 6
for name, blob in seeds.items():
    open(f"{corpus}/seed_{name}", "wb").write(blob)
tokens = ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"', '"F16"',
          '"BF16"', '"I64"', '"I32"', '"U8"', '"F64"', '[0,', ']', '{', '}', ':', ',',
          '-1', '1.5', '1e300', '9007199254740993', '\\u0000', '\\ud83d\\ude00']
with open(dict_path, "w") as f:
    for i, t in enumerate(tokens):
        f.write("t%d=%s\n" % (i, json.dumps(t)))
PY

echo "fuzz-safetensors: running ${secs}s on $(ls "$work/corpus" | wc -l) corpus files"
"$work/fuzz_safetensors" -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -dict="$work/safetensors.dict" -artifact_prefix="$work/artifacts/" \
    -print_final_stats=1 "$work/corpus"
