#!/usr/bin/env bash
# Parallel efficiency of offloading: one peer computing K batch objects
# itself vs the same peer handing them to K functions at once (local
# platform), same model and data, one step per epoch. Prints the gradient-
# computation time of both, the speed-up, and the efficiency (speed-up / the
# parallelism the machine can give: min(K, cores)).
#   bench/serverless_efficiency.sh [BUILD_DIR] [--batches K] [--model M] [--epochs E]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[[ $# -gt 0 ]] && shift
k=8 model=lenet5 epochs=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --batches) k=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--peers 1 --model "$model" --dataset fashion-mnist --epochs "$epochs" --batches "$k" --accumulate "$k" --threads 1)
"$build/peerless" run --mode p2p "${common[@]}" --run-dir "$dir/p" > "$dir/p.json" 2>/dev/null
"$build/peerless" run --mode serverless "${common[@]}" --function-memory "${memory:-4096}" --run-dir "$dir/s" > "$dir/s.json" 2>/dev/null
/usr/bin/python3 - "$dir/p.json" "$dir/s.json" "$k" "$(nproc)" <<'PY'
import json, sys
p, s = (json.loads(open(f).read()) for f in sys.argv[1:3])
k, cores = int(sys.argv[3]), int(sys.argv[4])
tp, ts = p["compute_s_mean"], s["compute_s_mean"]
speedup = tp / ts
print(f"batches per step K={k}, cores={cores}")
print(f"one peer alone:   {tp:8.3f} s gradient computation")
print(f"K functions:      {ts:8.3f} s (invocations {s['invocations']:.0f}, cold starts {s['cold_starts']:.0f})")
print(f"speed-up {speedup:.2f}x, parallel efficiency {speedup / min(k, cores):.2f} (of min(K, cores) = {min(k, cores)})")
print(json.dumps({"k": k, "cores": cores, "peer_s": tp, "functions_s": ts, "speedup": speedup,
                  "efficiency": speedup / min(k, cores)}))
PY
