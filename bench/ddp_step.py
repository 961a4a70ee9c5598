#!/usr/bin/env python3
"""PyTorch DDP (gloo) reference for the 4-peer end-to-end step: N processes
on this machine, each a torchvision model with a batch of B random images,
one DDP training step (forward, loss, backward with all-reduce, SGD momentum)
timed after warm-up. Prints one JSON line with the median step time."""
import argparse
import json
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision


def worker(rank, a, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=a.peers)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(getattr(torchvision.models, a.model)(num_classes=10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    times = []
    for s in range(a.warmup + a.steps):
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
    if rank == 0:
        out.put(statistics.median(times))
    dist.destroy_process_group()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--peers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--port", type=int, default=29533)
    a = ap.parse_args()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=worker, args=(r, a, a.port, q)) for r in range(a.peers)]
    for p in ps:
        p.start()
    med = q.get()
    for p in ps:
        p.join()
    print(json.dumps({"framework": "pytorch ddp gloo " + torch.__version__, "model": a.model, "peers": a.peers,
                      "batch": a.batch, "threads_per_peer": a.threads, "median_step_s": med}))
