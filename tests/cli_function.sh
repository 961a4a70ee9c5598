# cli_function.sh — `peerless package-function` builds a Lambda zip that
# works elsewhere: bootstrap, the portable function build (x86-64-v3, no
# AVX-512, no oneDNN) and its libraries, nothing needing a glibc newer than
# Amazon Linux 2023's 2.34 (checked with objdump), under 10 MB; unzipped in
# an unrelated directory and run with an empty environment on the local
# platform it computes the same gradients as the main binary.
# `peerless function` outside a runtime fails clearly.
source "$(dirname "$0")/lib_cli.sh"
SRC=${PEERLESS_SRC:-$(cd "$(dirname "$0")/.." && pwd)}

"$PEERLESS" package-function --out "$TMP/fn.zip" >"$TMP/pkg.json" 2>"$TMP/pkg.err"
check "package-function writes the zip" test -s "$TMP/fn.zip"
check "zip lists bootstrap, peerless, lib/libcurl" bash -c "unzip -l '$TMP/fn.zip' | grep -q ' bootstrap\$' &&
  unzip -l '$TMP/fn.zip' | grep -q ' peerless\$' && unzip -l '$TMP/fn.zip' | grep -q ' lib/libcurl'"
check "reported sizes match the zip; under 10 MB; no oneDNN, glibc or C++ runtime bundled" \
  /usr/bin/python3 - "$TMP/pkg.json" "$TMP/fn.zip" <<'PY'
import json, os, stat, sys, zipfile
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
z = zipfile.ZipFile(sys.argv[2])
assert r["zip_bytes"] == os.path.getsize(sys.argv[2]), r
assert r["zip_bytes"] < 10 << 20, r
assert r["unzipped_bytes"] == sum(i.file_size for i in z.infolist()), r
assert r["glibc_required"] == "2.34" or int(r["glibc_required"].split(".")[1]) < 34, r
b = z.getinfo("bootstrap")
assert stat.S_IMODE(b.external_attr >> 16) & 0o111, "bootstrap not executable"
text = z.read("bootstrap").decode()
assert "LD_LIBRARY_PATH" in text and "peerless\" function" in text, text
libs = [n for n in z.namelist() if n.startswith("lib/") and not n.endswith("/")]
assert len(libs) == r["libraries"], (libs, r)
for bad in ("libc.so", "libm.so", "ld-linux", "libdnnl", "libOpenCL", "libstdc++", "libgcc_s", "librabbitmq",
            "libmicrohttpd"):
    assert not any(n.startswith("lib/" + bad) for n in libs), (bad, libs)
PY

X="$TMP/unzipped dir"
mkdir -p "$X" && (cd "$X" && unzip -q "$TMP/fn.zip")
glibc_ok() { # no ELF file in the package needs a GLIBC_2.x newer than 2.34
  local f v bad=0
  for f in "$X/peerless" "$X"/lib/*; do
    v=$(objdump -T "$f" | grep -o 'GLIBC_2\.[0-9]*' | cut -d. -f2 | sort -n | tail -1)
    if [[ ${v:-0} -gt 34 ]]; then echo "$f needs GLIBC_2.$v" >&2; bad=1; fi
  done
  return $bad
}
check "objdump -T: the binary and every bundled library need GLIBC <= 2.34" glibc_ok
check "the packaged binary has no AVX-512 code (zmm, mask or xmm16+ registers)" bash -c \
  "! objdump -d --no-show-raw-insn '$X/peerless' | grep -qE '%zmm|%k[1-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])'"
(cd / && env -i "$X/peerless" --version) >"$TMP/ver" 2>&1
check "runs from / with an empty environment; reports x86-64-v3 and im2col+Eigen" \
  grep -q "march=x86-64-v3; fast convolutions: im2col+Eigen" "$TMP/ver"

# The same compute_gradient events on the packaged function and on `peerless function`.
STORE="$TMP/store"
"$PEERLESS" split --size 1 --batches 16 --dataset synthetic --store "file://$STORE" --run r --seed 3 >/dev/null 2>&1
mkdir -p "$STORE/r/models/0"
"$PEERLESS" init --model lenet5 --seed 1 --out "$STORE/r/models/0/v-0.safetensors" >/dev/null 2>&1
"$PEERLESS" init --model mobilenet_v3_small --input-size 32 --seed 1 --out "$STORE/r/models/0/v-1.safetensors" >/dev/null 2>&1
(cd / && env -i PATH=/usr/bin:/bin "$PEERLESS" faas serve --port 0 --log "$TMP/report.jsonl" \
  --function pkg="'$X/bootstrap'" --memory 2048 --timeout 120 \
  --function main="$PEERLESS function" --memory 2048 --timeout 120 \
  --function envq="env PL_T1='x y' PL_T2=\"z\" /usr/bin/python3 '$SRC/tests/faas_runtime_echo.py'" \
  --function shell="/usr/bin/python3 '$SRC/tests/faas_runtime_echo.py' </dev/null" \
  --function missing="env A=1 /nonexistent/runtime") >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVER=$!
for _ in $(seq 100); do grep -qs "listening on" "$TMP/serve.out" && break; sleep 0.05; done
INV="$(sed -n 's/^listening on //p' "$TMP/serve.out")/2015-03-31/functions"
event() { # event MODEL VERSION INPUT_SIZE OUT
  printf '{"action":"compute_gradient","run":"r","step":0,"rank":0,"batch":1,"model":"%s","num_classes":10,
"dataset":"synthetic","input_size":%d,"loss":"cross_entropy","seed":7,"model_key":"r/models/0/v-%d.safetensors",
"model_version":%d,"batch_key":"r/data/batches/0/1.safetensors","out_key":"r/grads/%s.safetensors",
"store":"file://%s"}' "$1" "$3" "$2" "$2" "$4" "$STORE"
}
for m in "lenet5 0 0" "mobilenet_v3_small 1 32"; do
  set -- $m
  for fn in pkg main; do
    curl -s -o "$TMP/$fn-$1.json" -d "$(event "$1" "$2" "$3" "$fn-$1")" "$INV/$fn/invocations"
  done
  check "$1: both functions answer with a gradient" bash -c \
    "grep -q '\"gradient\":\"r/grads/pkg-$1' '$TMP/pkg-$1.json' && grep -q '\"gradient\"' '$TMP/main-$1.json'"
  check "$1: packaged gradient == main binary's (1e-3 of each tensor's max, floored at 1e-6 of the largest)" \
    /usr/bin/python3 - "$STORE/r/grads/pkg-$1.safetensors" "$STORE/r/grads/main-$1.safetensors" <<'PY'
import json, struct, sys
from array import array
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        a = array({"F32": "f", "I64": "q"}[v["dtype"]])
        a.frombytes(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
        out[k] = a
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys() and len(a) > 3, (a.keys(), b.keys())
# Gradients of biases followed by batch norm are rounding noise around 0,
# hence the floor relative to the largest value in the file.
big = max(max(abs(x) for x in v) for v in b.values())
for k in a:
    scale = max(max(abs(y) for y in b[k]), 1e-3 * big)
    err = max(abs(x - y) for x, y in zip(a[k], b[k]))
    assert err <= 1e-3 * scale, (k, err, scale)
PY
done
PKG_PID=$(/usr/bin/python3 -c 'import json,sys
print(next(json.loads(l)["pid"] for l in open(sys.argv[1]) if json.loads(l)["function"] == "pkg"))' "$TMP/report.jsonl")
check "the packaged function loads libcurl and libgomp from the package" bash -c \
  "grep -q '$X/lib/libcurl.so.4' /proc/$PKG_PID/maps && grep -q '$X/lib/libgomp.so.1' /proc/$PKG_PID/maps"
# How the platform starts function commands (plain words run without a
# shell, `env` assignments join the environment; shell syntax still works).
curl -s -o "$TMP/envq.json" -d '{}' "$INV/envq/invocations"
ENVQ_PID=$(json_get "$TMP/envq.json" pid)
check "env NAME=VALUE prefix with quotes reaches the runtime" bash -c \
  "tr '\\0' '\\n' </proc/$ENVQ_PID/environ | grep -qx 'PL_T1=x y' && tr '\\0' '\\n' </proc/$ENVQ_PID/environ | grep -qx 'PL_T2=z'"
check "a command with shell syntax still runs (through /bin/sh)" bash -c \
  "curl -s -d '{}' '$INV/shell/invocations' | grep -q '\"pid\"'"
check "a missing program fails the invocation with exit status 127" bash -c \
  "curl -s -d '{}' '$INV/missing/invocations' | grep -q 'exit status 127.*Runtime.ExitError'"
kill "$SERVER" && wait "$SERVER"

expect_error "function without a runtime API" "AWS_LAMBDA_RUNTIME_API is not set" \
  env -u AWS_LAMBDA_RUNTIME_API "$PEERLESS" function
expect_error "function: runtime API unreachable" "Runtime API 127.0.0.1:1" \
  env AWS_LAMBDA_RUNTIME_API=127.0.0.1:1 "$PEERLESS" function
expect_error "package-function: missing binary" "no such file" "$PEERLESS" package-function --binary /nonexistent --out "$TMP/y.zip"
expect_error "package-function: not an ELF file" "not an x86-64 ELF file" \
  "$PEERLESS" package-function --binary "$X/bootstrap" --out "$TMP/y.zip"
finish
