#!/usr/bin/env bash
# Training-step time and peak memory of peerless vs PyTorch, side by side:
# same model, batch, input, thread count and environment, runs alternating.
#   bench/step_vs_torch.sh [BUILD_DIR] [--threads N] [--batch B] [--steps S] [--models "m1 m2"]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[[ $# -gt 0 ]] && shift
threads=2 batch=64 steps=10 models="squeezenet1_1 mobilenet_v3_small resnet18 vgg11"
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; threads $threads, batch $batch, input 3x32x32"
printf "%-20s %12s %12s %8s %12s %12s\n" model peerless_s pytorch_s ratio peerless_MB pytorch_MB
for m in $models; do
  p=$("$build/peerless" bench step --model "$m" --batch "$batch" --input 3x32x32 --threads "$threads" --steps "$steps")
  t=$(/usr/bin/python3 "$root/bench/torch_step.py" --model "$m" --batch "$batch" --input 3x32x32 --threads "$threads" --steps "$steps")
  /usr/bin/python3 - "$m" "$p" "$t" <<'PY'
import json, sys
m, p, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{m:20s} {p['median_s']:12.4f} {t['median_s']:12.4f} {p['median_s'] / t['median_s']:8.2f} "
      f"{p['peak_rss_mb']:12.0f} {t['peak_rss_mb']:12.0f}")
PY
done
