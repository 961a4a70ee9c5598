#!/usr/bin/env bash
# Training-step time and peak memory of peerless vs PyTorch, side by side:
# same model, batch, input, thread count and environment, runs alternating.
#   bench/step_vs_torch.sh [BUILD_DIR] [--threads N] [--batch B] [--steps S] [--reps R] [--models "m1 m2"]
# With --reps R each side runs R times (alternating) and the best median is
# kept: on a shared machine other processes only ever make a run slower.
# The load average before each model is printed with it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[[ $# -gt 0 ]] && shift
threads=2 batch=64 steps=10 reps=1 models="squeezenet1_1 mobilenet_v3_small resnet18 vgg11"
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; threads $threads, batch $batch, input 3x32x32, best median of $reps"
printf "%-20s %12s %12s %8s %12s %12s %s\n" model peerless_s pytorch_s ratio peerless_MB pytorch_MB load
for m in $models; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  ps=() ts=()
  for _ in $(seq "$reps"); do
    ps+=("$("$build/peerless" bench step --model "$m" --batch "$batch" --input 3x32x32 --threads "$threads" --steps "$steps")")
    ts+=("$(/usr/bin/python3 "$root/bench/torch_step.py" --model "$m" --batch "$batch" --input 3x32x32 --threads "$threads" --steps "$steps")")
  done
  /usr/bin/python3 - "$m" "$load" "${#ps[@]}" "${ps[@]}" "${ts[@]}" <<'PY'
import json, sys
m, load, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = [json.loads(s) for s in sys.argv[4:4 + n]]
t = [json.loads(s) for s in sys.argv[4 + n:4 + 2 * n]]
ps, ts = min(r["median_s"] for r in p), min(r["median_s"] for r in t)
pm, tm = max(r["peak_rss_mb"] for r in p), max(r["peak_rss_mb"] for r in t)
print(f"{m:20s} {ps:12.4f} {ts:12.4f} {ps / ts:8.2f} {pm:12.0f} {tm:12.0f} {load}")
PY
done
