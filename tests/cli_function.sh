# cli_function.sh — `peerless package-function` builds a Lambda zip with an
# executable bootstrap, the binary and its libraries (checked with unzip and
# Python's zipfile); `peerless function` outside a runtime fails clearly.
source "$(dirname "$0")/lib_cli.sh"

"$PEERLESS" package-function --out "$TMP/fn.zip" >"$TMP/pkg.json" 2>"$TMP/pkg.err"
check "package-function writes the zip" test -s "$TMP/fn.zip"
check "zip lists bootstrap, peerless, lib/" bash -c "unzip -l '$TMP/fn.zip' | grep -q ' bootstrap\$' &&
  unzip -l '$TMP/fn.zip' | grep -q ' peerless\$' && unzip -l '$TMP/fn.zip' | grep -q ' lib/libdnnl'"
check "reported sizes match the zip" /usr/bin/python3 - "$TMP/pkg.json" "$TMP/fn.zip" <<'PY'
import json, os, stat, sys, zipfile
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
z = zipfile.ZipFile(sys.argv[2])
assert r["zip_bytes"] == os.path.getsize(sys.argv[2]), r
assert r["unzipped_bytes"] == sum(i.file_size for i in z.infolist()), r
assert r["unzipped_bytes"] < 250 << 20, r
b = z.getinfo("bootstrap")
assert stat.S_IMODE(b.external_attr >> 16) & 0o111, "bootstrap not executable"
text = z.read("bootstrap").decode()
assert "LD_LIBRARY_PATH" in text and "peerless\" function" in text, text
libs = [n for n in z.namelist() if n.startswith("lib/") and not n.endswith("/")]
assert len(libs) == r["libraries"] and not any(n.startswith("lib/libc.so") for n in libs), libs
PY
mkdir -p "$TMP/x" && (cd "$TMP/x" && unzip -q "$TMP/fn.zip")
check "the packaged binary runs with its bundled libraries" bash -c \
  "LD_LIBRARY_PATH='$TMP/x/lib' '$TMP/x/peerless' --version | grep -q peerless"

expect_error "function without a runtime API" "AWS_LAMBDA_RUNTIME_API is not set" \
  env -u AWS_LAMBDA_RUNTIME_API "$PEERLESS" function
expect_error "function: runtime API unreachable" "Runtime API 127.0.0.1:1" \
  env AWS_LAMBDA_RUNTIME_API=127.0.0.1:1 "$PEERLESS" function
expect_error "package-function: missing binary" "no such file" "$PEERLESS" package-function --binary /nonexistent --out "$TMP/y.zip"
finish
