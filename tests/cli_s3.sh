#!/usr/bin/env bash
# cli_s3.sh — the s3:// store against a real S3-compatible server: starts
# s3rver (scripts/s3rver.sh) on a free port, runs `test_store s3` against it
# and stops it. No server is a failure, not a skip.
set -u
src=${PEERLESS_SRC:?run through ctest}
bin=$(dirname "${PEERLESS:?run through ctest}")/test_store
tmp=$(mktemp -d "${PEERLESS_TEST_TMP:-/tmp}/s3.XXXXXX" 2>/dev/null || mktemp -d)
cleanup() { "$src/scripts/s3rver.sh" stop "$tmp"; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if ! "$src/scripts/s3rver.sh" start "$tmp" "$port" peerless-test; then
  echo "0 passed, 1 failed"
  exit 1
fi
env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_S3 \
  AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
  PEERLESS_TEST_S3_ENDPOINT="http://127.0.0.1:$port" "$bin" s3
