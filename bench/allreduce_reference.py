"""allreduce_reference.py — PyTorch gloo all_reduce at model gradient sizes.

    /usr/bin/python3 bench/allreduce_reference.py [--peers 2,4] [--reps R] [--only MODEL]

The reference for bench_allreduce (same sizes, same protocol): N processes
on loopback (init_method tcp://127.0.0.1:PORT, torch threads = 1); per model
one warm-up all_reduce, then R timed ones, each after a barrier; rank 0
prints impl,N,model,floats,median_s,algbw_GBps,cpu_s (cpu_s: CPU time of
all N processes, every thread, user + system, per call, like bench_allreduce).
Sizes come from bench/model_sizes.h (the table the C benchmarks use);
--check-sizes recomputes them as sum(p.numel()) of the torchvision models
with 10 classes.
"""
import argparse
import os
import re
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision.models as tvm


def read_models():
    """The (name, floats, reps_div) table of bench/model_sizes.h, the one copy."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_sizes.h")
    rows = re.findall(r'\{"(\w+)", (\d+), (\d+)\}', open(path).read())
    if not rows:
        sys.exit(f"{path}: no model rows found")
    return [(name, int(floats), int(div)) for name, floats, div in rows]


MODELS = read_models()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peer(rank, n, port, reps, only):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=n)
    for name, floats, div in MODELS:
        if only and only not in name:
            continue
        x = torch.rand(floats)
        dist.all_reduce(x)
        times = []
        cpu0 = time.process_time()
        for _ in range(max(2, reps // div)):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            times.append(time.perf_counter() - t0)
        cpu = torch.tensor([(time.process_time() - cpu0) / len(times)], dtype=torch.float64)
        dist.all_reduce(cpu)
        med = sorted(times)[len(times) // 2]
        if rank == 0:
            print(f"gloo,{n},{name},{floats},{med:.5f},{floats * 4 / med / 1e9:.3f},{cpu.item():.4f}",
                  flush=True)
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", default="2,4")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--only", default="")
    ap.add_argument("--check-sizes", action="store_true",
                    help="verify the sizes with torchvision and exit")
    a = ap.parse_args()
    if a.check_sizes:
        for name, floats, _ in MODELS:
            got = sum(p.numel() for p in getattr(tvm, name)(num_classes=10).parameters())
            if got != floats:
                sys.exit(f"{name}: torchvision has {got} parameters, table says {floats}")
        print("sizes match torchvision")
        return
    print("impl,N,model,floats,median_s,algbw_GBps,cpu_s", flush=True)
    for n in [int(v) for v in a.peers.split(",")]:
        mp.spawn(peer, args=(n, free_port(), a.reps, a.only), nprocs=n, join=True)


if __name__ == "__main__":
    main()
