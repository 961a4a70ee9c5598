#!/usr/bin/env bash
# rabbitmq.sh — a private RabbitMQ node for tests and benchmarks (no systemd,
# no root daemon, nothing shared with a system broker).
#
#   scripts/rabbitmq.sh install          install rabbitmq-server (and openssl) if missing
#   scripts/rabbitmq.sh start DIR        start a node with all state in DIR on
#                                        free loopback ports; prints its URL
#                                        (amqp://guest:guest@127.0.0.1:PORT/)
#                                        once the AMQP port answers (60 s max)
#   scripts/rabbitmq.sh stop DIR         stop it (rabbitmqctl stop, then kill)
#   scripts/rabbitmq.sh url DIR          print the URL of a started node
#   scripts/rabbitmq.sh tls-url DIR      print its amqps:// URL (TLS listener
#                                        with a certificate for 127.0.0.1 and
#                                        localhost, signed by a CA made for
#                                        this node: DIR/tls/ca.pem; the same
#                                        listener on 127.0.0.2, an address the
#                                        certificate does not name, lets tests
#                                        check that the name is verified)
#
# Each node has its own name, cookie (HOME=DIR), distribution port and epmd
# port, so two nodes (e.g. two test runs) can run at once and stopping one
# never touches the other. max_message_size is RabbitMQ's default, 128 MiB,
# written explicitly so tests know the limit they run against.
set -euo pipefail
bin=/usr/lib/rabbitmq/bin

free_ports() { # free_ports N: N free loopback TCP ports
  /usr/bin/python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

node_env() { # node_env DIR: export the variables that define the node in DIR
  local dir=$1
  # shellcheck disable=SC1091
  source "$dir/node.env"
  export HOME="$dir" RABBITMQ_NODENAME="peerless-$PL_RMQ_PORT@localhost"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$PL_RMQ_PORT"
  export RABBITMQ_DIST_PORT="$PL_RMQ_DIST" ERL_EPMD_PORT="$PL_RMQ_EPMD" ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid" RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }


case "${1:-}" in
install)
  [[ -x $bin/rabbitmq-server ]] && command -v openssl >/dev/null && exit 0
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends rabbitmq-server openssl
  ;;
start)
  dir=${2:?usage: rabbitmq.sh start DIR}
  [[ -x $bin/rabbitmq-server ]] || { echo "rabbitmq.sh: $bin/rabbitmq-server missing; run scripts/rabbitmq.sh install" >&2; exit 1; }
  mkdir -p "$dir/mnesia" "$dir/log"
  dir=$(cd "$dir" && pwd)
  read -r port dist epmd tls < <(free_ports 4)
  printf 'PL_RMQ_PORT=%s\nPL_RMQ_DIST=%s\nPL_RMQ_EPMD=%s\nPL_RMQ_TLS=%s\n' "$port" "$dist" "$epmd" "$tls" \
    >"$dir/node.env"
  echo '[].' >"$dir/enabled_plugins"
  bash "$(dirname "${BASH_SOURCE[0]}")/test-certs.sh" "$dir/tls"
  cat >"$dir/rabbitmq.conf" <<CONF
max_message_size = 134217728
log.console = false
log.file.level = warning
listeners.ssl.1 = 127.0.0.1:$tls
listeners.ssl.2 = 127.0.0.2:$tls
ssl_options.cacertfile = $dir/tls/ca.pem
ssl_options.certfile = $dir/tls/server.pem
ssl_options.keyfile = $dir/tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
  node_env "$dir"
  "$bin/rabbitmq-server" -detached >"$dir/start.log" 2>&1
  for _ in $(seq 600); do
    if port_open "$port" && port_open "$tls"; then
      echo "amqp://guest:guest@127.0.0.1:$port/"
      exit 0
    fi
    sleep 0.1
  done
  echo "rabbitmq.sh: node did not open 127.0.0.1:$port within 60 s; logs in $dir/log" >&2
  "$0" stop "$dir" || true
  exit 1
  ;;
url)
  dir=${2:?usage: rabbitmq.sh url DIR}
  node_env "$dir"
  echo "amqp://guest:guest@127.0.0.1:$PL_RMQ_PORT/"
  ;;
tls-url)
  dir=${2:?usage: rabbitmq.sh tls-url DIR}
  node_env "$dir"
  echo "amqps://guest:guest@127.0.0.1:$PL_RMQ_TLS/?cacert=$dir/tls/ca.pem"
  ;;
stop)
  dir=${2:?usage: rabbitmq.sh stop DIR}
  [[ -f $dir/node.env ]] || exit 0
  node_env "$dir"
  pid=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || true)
  timeout 20 "$bin/rabbitmqctl" -q stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || true
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  epmd -port "$PL_RMQ_EPMD" -kill >/dev/null 2>&1 || true
  rm -f "$dir/node.env"
  ;;
*)
  echo "usage: $0 install | start DIR | stop DIR | url DIR | tls-url DIR" >&2
  exit 2
  ;;
esac
