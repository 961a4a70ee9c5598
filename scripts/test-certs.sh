#!/usr/bin/env bash
# test-certs.sh DIR — a throwaway CA and a server certificate for the local
# test servers (RabbitMQ's TLS listener, s3rver over https):
#   DIR/ca.pem                     the CA (give it to clients: cacert=, AWS_CA_BUNDLE)
#   DIR/server.pem, DIR/server.key certificate for localhost and 127.0.0.1,
#                                  signed by that CA, valid 2 days
# Needs the openssl command (Debian package openssl).
set -euo pipefail
d=${1:?usage: test-certs.sh DIR}
command -v openssl >/dev/null || { echo "test-certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$d"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=peerless test CA" \
  -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" \
  -out "$d/server.csr" 2>/dev/null
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' >"$d/san.ext"
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
  -days 2 -extfile "$d/san.ext" -out "$d/server.pem" 2>/dev/null
chmod 600 "$d/server.key" "$d/ca.key"
