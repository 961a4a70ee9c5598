#!/usr/bin/env bash
# fuzz-wire.sh — build tests/fuzz_wire.c (peer-message header and codec
# payload decoders) with libFuzzer + ASan + UBSan and run it on a seed corpus
# this script creates.
#
#   scripts/fuzz-wire.sh [SECONDS] [WORKDIR]
#
# SECONDS defaults to 60; WORKDIR (binary, corpus, crash artifacts) defaults
# to build-fuzz-wire/ in the source tree. Exits nonzero if the fuzzer finds a
# crash, leak or broken property (the input is saved in WORKDIR/artifacts/).
# Needs clang with the libFuzzer runtime:
#   apt-get install -y clang libclang-rt-14-dev
set -euo pipefail

secs=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${2:-$root/build-fuzz-wire}
cc=${CC_FUZZ:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz-wire: '$cc' not found; install: apt-get install -y clang libclang-rt-14-dev" >&2
    exit 2
fi
mkdir -p "$work/corpus" "$work/artifacts"

# Single-threaded build: the codecs' OpenMP pragmas are ignored.
"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wno-unknown-pragmas \
    -Wno-source-uses-openmp -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/include" -I"$root/src" \
    "$root/tests/fuzz_wire.c" "$root/src/comm/wire.c" "$root/src/comm/crc32c.c" "$root/src/comm/compress.c" \
    "$root/src/core/status.c" "$root/src/core/rng.c" \
    -lm -lpthread -o "$work/fuzz_wire"

# Seed corpus, written from the documented layouts (wire.h, compress.h):
# codec payloads of every codec, and whole messages (header + payload).
/usr/bin/python3 - "$work/corpus" <<'PY'
import struct, sys
corpus = sys.argv[1]

def crc32c(data):  # CRC-32C (Castagnoli), as wire.h specifies
    c = 0xffffffff
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    return c ^ 0xffffffff

def payload(codec, n, param, body):
    return struct.pack("<BBHII", codec, 1, 0, n, param) + body

def message(body, typ=1, codec=0, flags=0, sender=1, step=7, receiver=0, chunk=0,
            nchunk=1, off=0, count=0):
    h = b"PLG1" + struct.pack("<BBBBIIQQIIIIQQQ", 2, typ, codec, 0, flags, sender,
                              0x1234, step, receiver, chunk, nchunk, crc32c(body),
                              off, count, len(body))
    h += b"\0" * 32 + b"\0" * 4
    return h + struct.pack("<I", crc32c(h)) + body

n = 10
seeds = {
    "none": payload(0, n, 0, struct.pack("<10f", *[i - 4.5 for i in range(n)])),
    "fp16": payload(1, n, 0, struct.pack("<10H", *[0x3c00 + i for i in range(n)])),
    "qsgd8": payload(2, n, 4, struct.pack("<3f", 1.0, 2.0, 0.5) + bytes(range(0, 200, 20))),
    "qsgd4": payload(3, n + 1, 4, struct.pack("<3f", 1.0, 2.0, 0.5) + bytes([0x12, 0x9f, 0x70, 0x01, 0x0f, 0x05])),
    "topk": payload(4, n, 3, struct.pack("<IfIfIf", 1, 0.5, 4, -2.0, 9, 3.0)),
    "empty": payload(0, 0, 0, b""),
}
for name in list(seeds):
    seeds["msg_" + name] = message(seeds[name], codec=seeds[name][0], count=n)
seeds["msg_hello"] = message(b'{"rank":1}', typ=3)
seeds["msg_heartbeat"] = message(b"", typ=6, receiver=0xffffffff)
seeds["msg_chunked"] = message(seeds["qsgd8"], typ=2, codec=2, chunk=2, nchunk=3, off=20, count=10)
for name, blob in seeds.items():
    open(f"{corpus}/seed_{name}", "wb").write(blob)
PY

echo "fuzz-wire: running ${secs}s on $(ls "$work/corpus" | wc -l) corpus files"
"$work/fuzz_wire" -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/corpus"
