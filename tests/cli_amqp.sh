#!/usr/bin/env bash
# The amqp:// transport end to end against a private RabbitMQ node started
# here (scripts/rabbitmq.sh) and stopped by the trap: the C tests
# (test_transport_amqp, with PEERLESS_AMQP_NODE naming this node), then
# `peerless split` + 3 `peerless peer` processes over amqp:// with each
# pattern, which must end with identical model_checksum; a peer that never
# comes fails the others within the connect timeout (connect_timeout=5 in
# the URL) naming it. Never skips.
source "$(dirname "$0")/lib_cli.sh"
src=${PEERLESS_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
node="$TMP/rabbitmq"
trap 'bash "$src/scripts/rabbitmq.sh" stop "$node"; rm -rf "$TMP"' EXIT
url=$(bash "$src/scripts/rabbitmq.sh" start "$node") || { echo "FAIL: cannot start RabbitMQ"; exit 1; }
echo "broker: $url"

ctest_bin="$(dirname "$PEERLESS")/test_transport_amqp"
if PEERLESS_AMQP_NODE=$node "$ctest_bin" >"$TMP/c.out" 2>&1; then
  pass; echo "ok: C tests: $(tail -1 "$TMP/c.out")"
else
  fail "C tests: $(grep FAIL "$TMP/c.out" | head -5) $(tail -1 "$TMP/c.out")"
fi

cd "$TMP"
"$PEERLESS" split --size 3 --dataset synthetic --store "file://$TMP/store" --run e2e >/dev/null 2>split.err
check "split into 3 shards" test $? -eq 0

for pattern in scatter fanout; do
  pids=()
  for r in 0 1 2; do
    "$PEERLESS" peer --rank $r --size 3 --transport "${url}?pattern=$pattern" --store "file://$TMP/store" \
      --run e2e --dataset synthetic --model mlp --epochs 2 --batch-size 32 --threads 1 --peer-timeout 20000 \
      >"p$r.json" 2>"p$r.err" &
    pids+=($!)
  done
  rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  check "$pattern: 3 peers over amqp exit 0 ($(cat p0.err p1.err p2.err | tail -2 | tr '\n' ' '))" test $rc -eq 0
  sums=$(for r in 0 1 2; do json_get "p$r.json" model_checksum 2>/dev/null; done | sort -u | wc -l)
  check "$pattern: identical model_checksum on the 3 peers" test "$sums" -eq 1
done

# rank 2 never starts: ranks 0 and 1 fail naming it, well before a hang
start=$(date +%s)
for r in 0 1; do
  "$PEERLESS" peer --rank $r --size 3 --transport "${url}?connect_timeout=5" --store "file://$TMP/store" --run e2e \
    --dataset synthetic --model mlp --epochs 1 --peer-timeout 2000 >"d$r.json" 2>"d$r.err" &
  pids[$r]=$!
done
rc0=0; rc1=0
wait "${pids[0]}" || rc0=$?
wait "${pids[1]}" || rc1=$?
took=$(( $(date +%s) - start ))
check "missing peer: both fail" test $rc0 -ne 0 -a $rc1 -ne 0
check "missing peer: error names rank 2 ($(head -1 d0.err))" grep -q "rank 2" d0.err
check "missing peer: within the connect timeout (took ${took}s)" test $took -le 20
finish
