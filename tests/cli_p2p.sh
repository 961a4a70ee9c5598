#!/usr/bin/env bash
# P2P training end to end with local peers over TCP: identical models after
# training, per-step metrics (JSON lines + CSV), the original's once-per-epoch
# schedule, splicing on and off (same model), a peer that dies, and a
# launcher that is killed.
source "$(dirname "$0")/lib_cli.sh"
cd "$TMP"

"$PEERLESS" run --peers 4 --dataset synthetic --model lenet5 --epochs 2 --batch-size 16 --seed 3 \
  --run-dir "$TMP/r4" > sum.json 2> err.txt
check "4-peer run exits 0" test $? -eq 0
check "identical models on all peers" test "$(json_get sum.json identical_models)" = True
check "test accuracy reported" /usr/bin/python3 -c "import json; d=json.load(open('sum.json')); assert d['test_accuracy'] >= 0.9, d"
check "summary table printed" grep -q "model_checksum" err.txt
check "checkpoints for every peer" test "$(ls "$TMP/r4/store/peerless/checkpoints" | wc -l)" -eq 4
check "per-step metrics from every peer" /usr/bin/python3 - "$TMP/r4/metrics" <<'PY'
import csv, json, sys
d = sys.argv[1]
keys = {"rank", "epoch", "step", "loss", "val_loss", "test_accuracy", "lr", "compute_s", "sync_s", "send_s",
        "recv_s", "bytes_sent", "bytes_recv", "rss_mb", "cpu_s", "model_checksum"}
rows = [[json.loads(l) for l in open(f"{d}/peer-{r}.jsonl")] for r in range(4)]
assert all(len(r) == len(rows[0]) > 4 for r in rows), [len(r) for r in rows]
for r in rows:
    assert keys <= set(r[0]), set(r[0]) ^ keys
    assert all(x["bytes_sent"] > 0 and x["rss_mb"] > 0 for x in r)
# after every step all peers hold the same parameters
for step in zip(*rows):
    assert len({x["model_checksum"] for x in step}) == 1, step
assert rows[0][-1]["val_loss"] is not None and rows[0][-1]["test_accuracy"] is not None
c = list(csv.DictReader(open(f"{d}/peer-0.csv")))
assert len(c) == len(rows[0]) and c[-1]["model_checksum"] == rows[0][-1]["model_checksum"]
PY

# The original's schedule: one synchronisation per epoch.
"$PEERLESS" run --peers 2 --dataset synthetic --model mlp --epochs 3 --accumulate epoch --run-dir "$TMP/re" > e.json 2>/dev/null
check "--accumulate epoch: one step per epoch" test "$(json_get e.json steps)" = 3
check "--accumulate epoch: identical models" test "$(json_get e.json identical_models)" = True

# A per-step schedule (one-cycle, sgd): every peer sets the same lr at the same
# step, so models stay identical, and the lr in the metrics follows the cycle.
"$PEERLESS" run --peers 3 --dataset synthetic --model mlp --epochs 2 --optimizer sgd --lr 0.05 \
  --lr-schedule onecycle --run-dir "$TMP/rs" > s.json 2>/dev/null
check "onecycle: identical models" test "$(json_get s.json identical_models)" = True
check "onecycle: lr rises then falls (per-step metrics)" /usr/bin/python3 - "$TMP/rs/metrics" <<'PY'
import json, sys
rows = [[json.loads(l) for l in open(f"{sys.argv[1]}/peer-{r}.jsonl")] for r in range(3)]
lrs = [x["lr"] for x in rows[0]]
top = lrs.index(max(lrs))
assert 0 < top < len(lrs) - 1 and abs(max(lrs) - 0.05) < 0.005, lrs
assert lrs[0] < 0.01 and lrs[-1] < 0.001, lrs
assert all(a <= b for a, b in zip(lrs[:top], lrs[1:top + 1])), lrs
assert all(a >= b for a, b in zip(lrs[top:], lrs[top + 1:])), lrs
assert all([x["lr"] for x in r] == lrs for r in rows), "peers disagree on lr"
PY
expect_error "bad --lr-schedule" "unknown lr schedule 'sometimes'" "$PEERLESS" run --peers 2 --dataset synthetic --lr-schedule sometimes

# Compression keeps models identical (owners' decoded values are broadcast).
"$PEERLESS" run --peers 3 --dataset synthetic --model mlp --epochs 1 --compression qsgd8 --run-dir "$TMP/rq" > q.json 2>/dev/null
check "qsgd8: identical models" test "$(json_get q.json identical_models)" = True
"$PEERLESS" run --peers 3 --dataset synthetic --model mlp --epochs 1 --run-dir "$TMP/rn" > n.json 2>/dev/null
check "qsgd8 sends fewer bytes than none" /usr/bin/python3 -c "
import json; q=json.load(open('q.json')); n=json.load(open('n.json'))
assert q['bytes_sent'] < 0.4 * n['bytes_sent'], (q['bytes_sent'], n['bytes_sent'])"

# Splicing gradient segments into the sockets (what PEERLESS_TCP_SPLICE=auto
# picks when a host runs more peers than it has CPUs) changes how the bytes
# move, never the model: lenet5 over 2 peers has 120 KB chunks, above the
# 64 KiB splice threshold (test_transport_tcp counts the spliced bytes).
for m in on off; do
  PEERLESS_TCP_SPLICE=$m "$PEERLESS" run --peers 2 --dataset synthetic --model lenet5 --epochs 1 \
    --batch-size 16 --seed 3 --run-dir "$TMP/rz$m" > "z$m.json" 2>/dev/null
done
check "splice on: identical models" test "$(json_get zon.json identical_models)" = True
check "splice on and off train the same model" \
  test "$(json_get zon.json model_checksum)" = "$(json_get zoff.json model_checksum)"

# A weak peer (cgroup v1 CPU quota): the run still ends with identical models,
# the limit is announced, and no cgroup is left behind.
"$PEERLESS" run --peers 2 --dataset synthetic --model mlp --epochs 1 --peer-cpu 0.3,1 --run-dir "$TMP/rw" > w.json 2> w.err
check "--peer-cpu run: identical models" test "$(json_get w.json identical_models)" = True
check "--peer-cpu limit applied or its absence explained" grep -qE "peer CPU shares|--peer-cpu ignored" w.err
check "no CPU cgroup left behind" bash -c "! ls /sys/fs/cgroup/cpu 2>/dev/null | grep -q '^peerless-'"
expect_error "bad --peer-cpu" "--peer-cpu expects shares" "$PEERLESS" run --peers 2 --dataset synthetic --peer-cpu x

# A peer that dies: the run fails cleanly, naming it, well before a hang.
"$PEERLESS" run --peers 3 --dataset synthetic --model lenet5 --epochs 50 --batch-size 8 --peer-timeout 3000 \
  --run-dir "$TMP/rk" > k.json 2> k.err &
launcher=$!
for _ in $(seq 100); do
  [[ -s "$TMP/rk/metrics/peer-1.jsonl" ]] && break
  sleep 0.1
done
pkill -KILL -f -- "peer --rank 1 --size 3 .*file://$TMP/[r]k/store"
start=$(date +%s)
wait $launcher
rc=$?
took=$(( $(date +%s) - start ))
check "run with a dead peer exits non-zero" test $rc -ne 0
check "it ends within the peer timeout (took ${took}s)" test $took -le 20
check "the failure is reported" grep -qE "peer 1|rank 1" k.err
check "summary says a peer failed" /usr/bin/python3 -c "import json; d=json.load(open('k.json')); assert d['failed_peers'] >= 1 and not d['identical_models']"

# Killing the launcher stops its peers.
"$PEERLESS" run --peers 2 --dataset synthetic --model lenet5 --epochs 50 --batch-size 8 --run-dir "$TMP/rl" > /dev/null 2>&1 &
launcher=$!
for _ in $(seq 100); do
  [[ -s "$TMP/rl/metrics/peer-0.jsonl" ]] && break
  sleep 0.1
done
kill -KILL $launcher
sleep 1
# (the [r] keeps pgrep from matching this check's own command line)
check "no peer outlives a killed launcher" bash -c "! pgrep -f -- 'file://$TMP/[r]l/store' >/dev/null"
finish
