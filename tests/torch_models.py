"""torch_models — the model zoo against PyTorch / torchvision 0.14.

For mlp, lenet5 (small PyTorch definitions written here) and vgg11,
squeezenet1_1, mobilenet_v3_small, resnet18 (torchvision):
  * `peerless init` writes a state dict whose ordered keys equal
    model.state_dict()'s and which load_state_dict(strict=True) accepts;
  * every initialised tensor has the mean / std of the architecture's
    initialisation scheme (torchvision's, or PyTorch's defaults);
  * `peerless grad` on a random batch (training mode, dropout off) gives the
    loss, every parameter gradient and the updated batch-norm running
    statistics of PyTorch (float64 reference) within 1e-4 relative error;
  * `peerless grad --sgd-steps 3` (SGD with momentum) ends at PyTorch's
    weights, buffers and per-step losses.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pl_ctypes import Checker, rel_err  # noqa: E402

PEERLESS = os.environ.get("PEERLESS", "")
if not PEERLESS or not os.path.exists(PEERLESS):
    sys.exit("PEERLESS must name the peerless binary (run through ctest)")
torch.set_num_threads(2)
torch.set_flush_denormal(True)  # float64 depthwise convs crawl on denormals
tmp_root = os.environ.get("PEERLESS_TEST_TMP") or None
if tmp_root:
    os.makedirs(tmp_root, exist_ok=True)
TMP = tempfile.mkdtemp(prefix="torch_models.", dir=tmp_root)
TOL = 1e-4
# Three steps compound float32 rounding: on ResNet-18 PyTorch's own float32
# trajectory ends ~1e-4 (some BN biases more) away from float64.
SGD_TOL = 5e-4
ck = Checker()

ST_DTYPES = {"F32": np.float32, "I64": np.int64, "I32": np.int32}


def st_read(path):
    """Ordered {name: numpy array} of a safetensors file, in data order."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=ST_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.int32): "I32"}[a.dtype]
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def close_all(got, want, label, tol=TOL):
    """got[name] vs want[name] (numpy) for every name of want, each within
    TOL relative error. A tensor that is zero in exact arithmetic (the bias
    of a batch norm feeding another batch norm gets no gradient; the running
    mean behind a conv of zero-mean input stays 0) is float noise on both
    sides: where the float64 reference is below 1e-9 x the median norm of
    the set, ours must be below 1e-3 x that median."""
    if not want:
        return
    scale = float(np.median([np.linalg.norm(w) for w in want.values()]))
    for name, w in want.items():
        g, nw = got[name].astype(np.float64), np.linalg.norm(w)
        if nw <= 1e-9 * scale:
            ck.check(np.linalg.norm(g) <= 1e-3 * scale, f"{label} {name}: norm {np.linalg.norm(g):.3g}, expected ~0")
            continue
        e = float(np.linalg.norm(g - w) / nw)
        ck.check(e <= tol, f"{label} {name}: relative error {e:.3g} > {tol:g}")


def float_buffers(tm):
    return {b: t.double().numpy() for b, t in tm.named_buffers() if not b.endswith("num_batches_tracked")}


def check_counts(got, tm, label):
    for b, t in tm.named_buffers():
        if b.endswith("num_batches_tracked"):
            ck.check(int(got[b]) == int(t), f"{label} {b}: {int(got[b])} != {int(t)}")


def peerless(*args):
    r = subprocess.run([PEERLESS, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"peerless {' '.join(map(str, args))}: {r.stderr.strip()}")


class MLP(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, k)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16)
        self.fc1, self.bn3 = nn.Linear(400, 120), nn.BatchNorm1d(120)
        self.fc2, self.bn4 = nn.Linear(120, 84), nn.BatchNorm1d(84)
        self.fc3 = nn.Linear(84, k)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = torch.flatten(F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2), 1)
        x = F.relu(self.bn3(self.fc1(x)))
        return self.fc3(F.relu(self.bn4(self.fc2(x))))


def torch_model(name, k):
    if name == "mlp":
        return MLP(k)
    if name == "lenet5":
        return LeNet5(k)
    return getattr(torchvision.models, name)(num_classes=k)


# ---- initialisation: expected distribution of each parameter ----

def fans(w):
    rf = int(np.prod(w.shape[2:])) if w.ndim > 2 else 1
    return w.shape[1] * rf, w.shape[0] * rf


def expected_dist(model_name, tm, pname, shape):
    """('const', v) | ('normal', std) | ('uniform', bound) for parameter pname."""
    mod_name, leaf = pname.rsplit(".", 1)
    mod = dict(tm.named_modules())[mod_name]
    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return ("const", 1.0 if leaf == "weight" else 0.0)
    w = mod.weight
    fan_in, fan_out = fans(w)
    default = ("uniform", 1 / math.sqrt(fan_in))  # PyTorch's Conv2d / Linear defaults
    conv = isinstance(mod, nn.Conv2d)
    if model_name in ("mlp", "lenet5"):
        return default
    if model_name == "resnet18":
        return ("normal", math.sqrt(2 / fan_out)) if conv else default
    if leaf == "bias":
        return ("const", 0.0)
    if model_name == "squeezenet1_1":
        if mod_name == "classifier.1":
            return ("normal", 0.01)
        return ("uniform", math.sqrt(6 / fan_in))
    # vgg11, mobilenet_v3_small
    return ("normal", math.sqrt(2 / fan_out)) if conv else ("normal", 0.01)


def check_init(model_name, tm, state):
    for pname, _ in tm.named_parameters():
        a = state[pname].astype(np.float64).ravel()
        kind, v = expected_dist(model_name, tm, pname, a.shape)
        what = f"{model_name} init {pname} ({kind} {v:.4g})"
        if kind == "const":
            ck.check(np.all(a == v), f"{what}: not all {v}")
            continue
        std = v if kind == "normal" else v / math.sqrt(3)
        n = a.size
        # mean within 5 standard errors; std within 5 standard errors of a
        # sample std (plus a floor for tiny tensors)
        ck.check(abs(a.mean()) <= 5 * std / math.sqrt(n), f"{what}: mean {a.mean():.4g}")
        ck.check(abs(a.std() / std - 1) <= 5 / math.sqrt(2 * n) + 0.02, f"{what}: std {a.std():.4g} vs {std:.4g}")
        if kind == "uniform":
            ck.check(np.abs(a).max() <= v, f"{what}: |x| max {np.abs(a).max():.4g} > bound")
    for bname, b in tm.named_buffers():
        want = 1.0 if bname.endswith("running_var") else 0.0
        ck.check(np.all(state[bname] == want), f"{model_name} init buffer {bname} not {want}")


# ---- parity ----

def load_into(tm, state, dtype):
    sd = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    tm.load_state_dict(sd, strict=True)
    tm.to(dtype)
    tm.train()
    for m in tm.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return tm


def make_batch(name, n, c, h, k, seed):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, c, h, h)).astype(np.float32)
    y = g.integers(0, k, n).astype(np.int64)
    path = os.path.join(TMP, f"{name}.batch.safetensors")
    st_write(path, {"input": x, "target": y})
    return path, x, y


def check_grads(name, tm, ckpt, c, h, n, k, dtype, backend):
    t0 = time.time()
    label = f"{name} {n}x{c}x{h}x{h} {backend}"
    state = st_read(ckpt)
    load_into(tm, state, dtype)
    bpath, x, y = make_batch(name, n, c, h, k, 7 + h)
    out = os.path.join(TMP, f"{name}.grad.safetensors")
    peerless("grad", "--model", name, "--checkpoint", ckpt, "--batch", bpath, "--out", out, "--threads", 2,
             "--backend", backend)
    t1 = time.time()
    got = st_read(out)
    os.remove(out)
    loss = F.cross_entropy(tm(torch.from_numpy(x).to(dtype)), torch.from_numpy(y))
    loss.backward()
    ck.close(got["loss"], [loss.item()], TOL, f"{label} loss")
    print(f"{label}: peerless grad {t1 - t0:.1f} s, torch {time.time() - t1:.1f} s", flush=True)
    close_all(got, {p: t.grad.double().numpy() for p, t in tm.named_parameters()}, f"{label} grad")
    close_all(got, float_buffers(tm), f"{label} buffer")
    check_counts(got, tm, label)
    ck.check(set(got) == {"loss"} | set(dict(tm.named_parameters())) | set(dict(tm.named_buffers())),
             f"{label}: unexpected tensor set in the gradient file")


def check_sgd(name, tm, ckpt, c, h, n, k, dtype, lr=0.01, momentum=0.9, steps=3):
    """Both sides: `steps` SGD-momentum steps on one batch from the checkpoint."""
    label = f"{name} sgd x{steps}"
    state = st_read(ckpt)
    load_into(tm, state, dtype)
    bpath, x, y = make_batch(name + ".sgd", n, c, h, k, 99)
    out = os.path.join(TMP, f"{name}.sgd.safetensors")
    peerless("grad", "--model", name, "--checkpoint", ckpt, "--batch", bpath, "--out", out, "--threads", 2,
             "--sgd-steps", steps, "--lr", lr, "--momentum", momentum)
    got = st_read(out)
    opt = torch.optim.SGD(tm.parameters(), lr=lr, momentum=momentum)
    xt, yt = torch.from_numpy(x).to(dtype), torch.from_numpy(y)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(tm(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    ck.close(got["loss"], losses, TOL, f"{label} losses: {got['loss']} vs {losses}")
    # Compare the distance travelled, not only the end point (which is
    # dominated by the unchanged initial weights).
    moved_got = np.concatenate([(got[p] - state[p]).ravel() for p, _ in tm.named_parameters()])
    moved_want = np.concatenate([(q.detach().double().numpy() - state[p]).ravel() for p, q in tm.named_parameters()])
    ck.close(moved_got, moved_want, SGD_TOL, f"{label} parameter displacement")
    close_all(got, {p: t.detach().double().numpy() for p, t in tm.named_parameters()}, label, SGD_TOL)
    close_all(got, float_buffers(tm), f"{label} buffer", SGD_TOL)
    check_counts(got, tm, label)


def init_model(name, k, c, h, seed):
    ckpt = os.path.join(TMP, f"{name}.init.safetensors")
    peerless("init", "--model", name, "--num-classes", k, "--input-size", h, "--seed", seed, "--out", ckpt)
    state = st_read(ckpt)
    tm = torch_model(name, k)
    ck.check(list(state) == list(tm.state_dict()), f"{name}: state dict keys/order differ from PyTorch's:\n"
             f"  ours  {list(state)[:8]}...\n  torch {list(tm.state_dict())[:8]}...")
    try:
        load_into(tm, state, torch.float32)
        ck.check(True, "")
    except RuntimeError as e:
        ck.check(False, f"{name}: load_state_dict(strict=True) failed: {str(e)[:300]}")
        return ckpt, None
    for key, v in tm.state_dict().items():
        ck.check(tuple(v.shape) == state[key].shape, f"{name} {key}: shape {state[key].shape} vs {tuple(v.shape)}")
    check_init(name, tm, state)
    return ckpt, tm


# name, classes, channels, input sides (the first is the init size), batch,
# SGD check. Batch 8 for the batch-norm models: with batch 4, ResNet-18's
# 1x1 feature maps normalise over 4 values and PyTorch's own float32 result
# is ~1e-4 away from float64, too close to the tolerance to test anything.
CASES = [
    ("mlp", 10, 1, [28], 4, True),
    ("lenet5", 10, 1, [32], 4, True),
    ("resnet18", 10, 3, [32, 16], 8, True),
    ("mobilenet_v3_small", 7, 3, [32, 29], 4, True),
    ("squeezenet1_1", 10, 3, [32, 17, 21], 4, True),
    ("vgg11", 10, 3, [32], 2, False),
]


def main():
    only = set(sys.argv[1:])
    for name, k, c, sizes, n, sgd in CASES:
        if only and name not in only:
            continue
        ckpt, tm = init_model(name, k, c, sizes[0], 1234)
        if tm is None:
            continue
        # VGG-11 is 128M parameters: its float32 reference is enough and
        # keeps memory and time down; the others use a float64 reference.
        dtype = torch.float32 if name == "vgg11" else torch.float64
        # the default (fast) backend at the main size, ref at the others
        for i, h in enumerate(sizes):
            check_grads(name, torch_model(name, k), ckpt, c, h, n, k, dtype, "ref" if i else "fast")
        if sgd:
            check_sgd(name, torch_model(name, k), ckpt, c, sizes[0], n, k, torch.float64)
        os.remove(ckpt)
        print(f"{name}: done ({ck.passed} passed, {ck.failed} failed so far)", flush=True)
    ck.finish()


if __name__ == "__main__":
    try:
        main()
    finally:
        for f in os.listdir(TMP):
            os.remove(os.path.join(TMP, f))
        os.rmdir(TMP)
