#!/usr/bin/env bash
# s3rver.sh — a local S3-compatible server (s3rver 3.7.1, Node.js) for tests.
#
#   scripts/s3rver.sh install                 npm install s3rver into .deps/node
#   scripts/s3rver.sh start DIR PORT BUCKET [--tls]
#                                             start on 127.0.0.1:PORT with data in
#                                             DIR/data and BUCKET created; waits
#                                             until the port answers (10 s at most);
#                                             --tls: https with a certificate for
#                                             127.0.0.1 / localhost signed by the CA
#                                             DIR/tls/ca.pem (scripts/test-certs.sh)
#   scripts/s3rver.sh stop DIR                stop it (SIGTERM, then SIGKILL after 3 s)
#
# s3rver accepts the access key S3RVER / secret S3RVER and does not check
# SigV4 signatures (tests/test_sigv4.c checks signing against AWS's examples).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps=$root/.deps/node
bin=$deps/node_modules/s3rver/bin/s3rver.js
version=3.7.1

case "${1:-}" in
install)
  if [[ -f $bin ]] && grep -q "\"version\": \"$version\"" "$deps/node_modules/s3rver/package.json"; then
    exit 0
  fi
  command -v npm >/dev/null || { echo "s3rver.sh: npm not found (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
  mkdir -p "$deps"
  [[ -f $deps/package.json ]] || echo '{"name":"peerless-test-deps","private":true}' >"$deps/package.json"
  (cd "$deps" && npm install --no-audit --no-fund --silent "s3rver@$version")
  ;;
start)
  dir=${2:?DIR}; port=${3:?PORT}; bucket=${4:?BUCKET}
  tls=()
  if [[ ${5:-} == --tls ]]; then
    bash "$root/scripts/test-certs.sh" "$dir/tls"
    tls=(--key "$dir/tls/server.key" --cert "$dir/tls/server.pem")
  fi
  if [[ ! -f $bin ]]; then
    echo "s3rver.sh: $bin missing; run scripts/s3rver.sh install (or scripts/install-deps.sh --test)" >&2
    exit 1
  fi
  mkdir -p "$dir/data"
  # Its ListObjectsV2 continuation tokens use DES, which Node 17+ (OpenSSL 3)
  # offers only through the legacy provider; without it page 2 is a 500.
  node --openssl-legacy-provider "$bin" -d "$dir/data" -a 127.0.0.1 -p "$port" -s "${tls[@]}" \
    --configure-bucket "$bucket" \
    >"$dir/s3rver.log" 2>&1 &
  echo $! >"$dir/s3rver.pid"
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
    if ! kill -0 "$(cat "$dir/s3rver.pid")" 2>/dev/null; then
      echo "s3rver.sh: s3rver exited: $(cat "$dir/s3rver.log")" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "s3rver.sh: s3rver did not open 127.0.0.1:$port within 10 s" >&2
  exit 1
  ;;
stop)
  dir=${2:?DIR}
  [[ -f $dir/s3rver.pid ]] || exit 0
  pid=$(cat "$dir/s3rver.pid")
  # SIGTERM can hang on keep-alive connections: give it 3 s, then SIGKILL.
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/s3rver.pid"
  ;;
*)
  echo "usage: $0 install | start DIR PORT BUCKET | stop DIR" >&2
  exit 2
  ;;
esac
