#!/usr/bin/env bash
# allreduce.sh — peerless tcp all-reduce vs PyTorch gloo, side by side.
#
#   bench/allreduce.sh [BUILD_DIR] [extra bench_allreduce / reference flags]
#
# Runs bench_allreduce (BUILD_DIR, default build/) and
# bench/allreduce_reference.py with the same flags, then prints one row per
# (N, model) with both median times and gloo_time / tcp_time (> 1: tcp faster).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
shift || true
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/allreduce_reference.py" --check-sizes
"$build/bench_allreduce" "$@" > "$tmp/tcp.csv"
/usr/bin/python3 "$here/allreduce_reference.py" "$@" > "$tmp/gloo.csv"
/usr/bin/python3 - "$tmp/tcp.csv" "$tmp/gloo.csv" <<'PY'
import csv, sys
rows = {}
for path in sys.argv[1:]:
    for r in csv.DictReader(open(path)):
        rows.setdefault((int(r["N"]), r["model"]), {})[r["impl"]] = r
print(f"{'N':>2} {'model':<20} {'floats':>11} {'tcp s':>9} {'gloo s':>9} {'tcp GB/s':>9} {'gloo/tcp':>9}")
for (n, model), v in sorted(rows.items()):
    t, g = v.get("tcp"), v.get("gloo")
    if not t or not g:
        continue
    ts, gs = float(t["median_s"]), float(g["median_s"])
    print(f"{n:>2} {model:<20} {int(t['floats']):>11} {ts:>9.4f} {gs:>9.4f} {float(t['algbw_GBps']):>9.3f} {gs / ts:>9.2f}")
PY
