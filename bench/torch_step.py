#!/usr/bin/env python3
"""PyTorch's equivalent of `peerless bench step`: the same full training step
(zero grad, forward, cross-entropy, backward, SGD momentum 0.9 update) of a
torchvision model on a random batch, timed after warm-up. One JSON line."""
import argparse
import json
import resource
import statistics
import time

import torch
import torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="resnet18")
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--input", default="3x32x32")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--num-classes", type=int, default=10)
a = ap.parse_args()
torch.set_num_threads(a.threads)
c, h, w = (int(v) for v in a.input.split("x"))
model = getattr(torchvision.models, a.model)(num_classes=a.num_classes)
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(a.batch, c, h, w)
y = torch.randint(0, a.num_classes, (a.batch,))
loss_fn = torch.nn.CrossEntropyLoss()
times = []
for s in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=False)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    if s >= a.warmup:
        times.append(time.perf_counter() - t0)
print(json.dumps({"model": a.model, "framework": "pytorch " + torch.__version__, "batch": a.batch,
                  "input": a.input, "threads": a.threads, "median_s": statistics.median(times),
                  "min_s": min(times),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
