#!/usr/bin/env bash
# End-to-end P2P step time: `peerless run --peers N` (tcp) training a model
# with batch B per peer, median of compute_s + sync_s over the steps of peer 0,
# next to PyTorch DDP (gloo) on the same machine, model, batch and threads.
#   bench/p2p_step.sh [BUILD_DIR] [--peers N] [--model M] [--batch B]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[[ $# -gt 0 ]] && shift
peers=4 model=resnet18 batch=64
while [[ $# -gt 0 ]]; do
  case $1 in
    --peers) peers=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
threads=$(( $(nproc) / peers )); (( threads >= 1 )) || threads=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $peers peers, $model, batch $batch per peer, $threads thread(s) per peer"
"$build/peerless" run --peers "$peers" --model "$model" --dataset synthetic --batch-size "$batch" --epochs 1 \
  --run-dir "$dir/run" --threads "$threads" > "$dir/sum.json" 2>/dev/null
/usr/bin/python3 - "$dir/run/metrics/peer-0.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][2:]  # skip warm-up steps
print(json.dumps({"framework": "peerless tcp", "median_step_s": statistics.median(r["compute_s"] + r["sync_s"] for r in rows),
                  "steps": len(rows)}))
PY
/usr/bin/python3 "$root/bench/ddp_step.py" --model "$model" --peers "$peers" --batch "$batch" --threads "$threads"
