#!/usr/bin/env bash
# cli_s3.sh — the s3:// store against a real S3-compatible server: starts
# s3rver (scripts/s3rver.sh) on a free port, runs `test_store s3` against it,
# then the same over https (s3rver with a certificate from a throwaway CA,
# given to the store with AWS_CA_BUNDLE), checks that without that CA the
# certificate is refused and that an unreadable AWS_CA_BUNDLE is named, and
# stops the servers. No server is a failure, not a skip.
set -u
src=${PEERLESS_SRC:?run through ctest}
bin=$(dirname "${PEERLESS:?run through ctest}")/test_store
tmp=$(mktemp -d "${PEERLESS_TEST_TMP:-/tmp}/s3.XXXXXX" 2>/dev/null || mktemp -d)
cleanup() { "$src/scripts/s3rver.sh" stop "$tmp/http"; "$src/scripts/s3rver.sh" stop "$tmp/https"; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3env=(env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_S3 -u AWS_CA_BUNDLE
       AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1)
status=0

port=$(free_port)
if ! "$src/scripts/s3rver.sh" start "$tmp/http" "$port" peerless-test; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== http://127.0.0.1:$port"
"${s3env[@]}" PEERLESS_TEST_S3_ENDPOINT="http://127.0.0.1:$port" "$bin" s3 || status=1

tport=$(free_port)
if ! "$src/scripts/s3rver.sh" start "$tmp/https" "$tport" peerless-test --tls; then
  echo "FAIL: cannot start s3rver with TLS"
  exit 1
fi
echo "== https://127.0.0.1:$tport (AWS_CA_BUNDLE = the test CA)"
"${s3env[@]}" AWS_CA_BUNDLE="$tmp/https/tls/ca.pem" PEERLESS_TEST_S3_ENDPOINT="https://127.0.0.1:$tport" \
  "$bin" s3 || status=1

# Without the CA the server's certificate is refused, with curl's reason.
out=$("${s3env[@]}" "$PEERLESS" split --size 2 --dataset synthetic --store s3://peerless-test/neg \
  --s3-endpoint "https://127.0.0.1:$tport" --run neg 2>&1)
if [[ $? -ne 0 && $out == *certificate* ]]; then
  echo "ok: https without the CA is refused: ${out:0:160}"
else
  echo "FAIL: https without the CA: exit 0 or no certificate error: ${out:0:300}"
  status=1
fi
out=$("${s3env[@]}" AWS_CA_BUNDLE="$tmp/missing.pem" "$PEERLESS" split --size 2 --dataset synthetic \
  --store s3://peerless-test/neg --s3-endpoint "https://127.0.0.1:$tport" --run neg 2>&1)
if [[ $? -ne 0 && $out == *"AWS_CA_BUNDLE '$tmp/missing.pem'"* ]]; then
  echo "ok: an unreadable AWS_CA_BUNDLE is named: ${out:0:160}"
else
  echo "FAIL: unreadable AWS_CA_BUNDLE: ${out:0:300}"
  status=1
fi
exit $status
