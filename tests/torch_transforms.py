"""torch_transforms — data transforms vs torchvision 0.14 (via ctypes).

Checks bilinear resize (antialias off = torchvision's tensor default, and
on), normalize, gray->3ch, crop/flip semantics, and a whole loader batch
against the same pipeline written with torchvision.
"""
import ctypes

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from pl_ctypes import Checker, fptr, lib

c_int, c_u64 = ctypes.c_int, ctypes.c_uint64


class Err(ctypes.Structure):
    _fields_ = [("status", c_int), ("msg", ctypes.c_char * 512)]


class Rng(ctypes.Structure):
    _fields_ = [("state", c_u64), ("inc", c_u64)]


class Transform(ctypes.Structure):
    _fields_ = [("gray_to_rgb", c_int), ("resize_h", c_int), ("resize_w", c_int),
                ("antialias", c_int), ("augment", c_int), ("crop_pad", c_int),
                ("normalize", c_int), ("mean", ctypes.c_float * 3), ("std", ctypes.c_float * 3)]


class LoaderConfig(ctypes.Structure):
    _fields_ = [("batch_size", c_int), ("shuffle", c_int), ("drop_last", c_int),
                ("seed", c_u64), ("tf", Transform)]


lib.pl_tf_resize.argtypes = [ctypes.c_void_p, c_int, c_int, c_int, ctypes.c_void_p, c_int, c_int,
                             c_int, ctypes.POINTER(Err)]
lib.pl_tf_normalize.argtypes = [ctypes.c_void_p, c_int, c_int, c_int, ctypes.c_void_p,
                                ctypes.c_void_p]
lib.pl_tf_gray_to_rgb.argtypes = [ctypes.c_void_p, c_int, c_int, ctypes.c_void_p]
lib.pl_tf_crop_flip.argtypes = [ctypes.c_void_p, c_int, c_int, c_int, c_int, c_int, c_int, c_int,
                                ctypes.c_void_p]
lib.pl_tf_augment.argtypes = [ctypes.c_void_p, c_int, c_int, c_int, c_int, ctypes.POINTER(Rng),
                              ctypes.c_void_p]
lib.pl_rng_seed.argtypes = [ctypes.POINTER(Rng), c_u64, c_u64]
lib.pl_dataset_from_arrays.argtypes = [ctypes.c_char_p, ctypes.c_int64, c_int, c_int, c_int, c_int,
                                       ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(Err)]
lib.pl_dataset_destroy.argtypes = [ctypes.c_void_p]
lib.pl_loader_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                 ctypes.POINTER(LoaderConfig), ctypes.POINTER(ctypes.c_void_p),
                                 ctypes.POINTER(Err)]
lib.pl_loader_destroy.argtypes = [ctypes.c_void_p]
lib.pl_loader_next.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.POINTER(c_int)]
lib.pl_transform_defaults.argtypes = [ctypes.POINTER(Transform), ctypes.c_char_p, c_int,
                                      ctypes.POINTER(Err)]

ck = Checker()
rs = np.random.RandomState(0)


def resize(x, oh, ow, aa):
    planes, h, w = x.shape
    y = np.zeros((planes, oh, ow), np.float32)
    err = Err()
    rc = lib.pl_tf_resize(fptr(x), planes, h, w, fptr(y), oh, ow, aa, ctypes.byref(err))
    ck.check(rc == 0, f"pl_tf_resize {h}x{w}->{oh}x{ow}: {err.msg.decode()}")
    return y


# ---- resize vs torchvision.transforms.functional.resize on float tensors ----
cases = [(28, 28, 32, 32), (28, 28, 21, 21), (32, 32, 29, 29), (28, 28, 56, 56), (32, 32, 16, 16),
         (28, 28, 20, 35), (17, 23, 64, 9), (32, 32, 7, 7), (5, 5, 224, 224)]
for c in (1, 3):
    for (h, w, oh, ow) in cases:
        x = rs.rand(c, h, w).astype(np.float32)
        for aa in (0, 1):
            kw = {"antialias": True} if aa else {}
            want = TF.resize(torch.from_numpy(x), [oh, ow], InterpolationMode.BILINEAR, **kw)
            got = resize(x, oh, ow, aa)
            d = float(np.abs(got - want.numpy()).max())
            ck.check(d <= 5e-7, f"resize c={c} {h}x{w}->{oh}x{ow} aa={aa}: max |diff| {d:.3g}")
# The 0.14 tensor default is antialias off: check we match the default call, not just our flag.
x = rs.rand(1, 28, 28).astype(np.float32)
want = TF.resize(torch.from_numpy(x), [21, 21], InterpolationMode.BILINEAR)
ck.close(resize(x, 21, 21, 0), want.numpy(), 1e-5, "resize matches the default antialias")
ck.check(np.abs(resize(x, 21, 21, 1) - want.numpy()).max() > 1e-3,
         "antialias=1 differs from the default when downsampling")

# ---- normalize and gray->3ch ----
x = rs.rand(4, 3, 6, 5).astype(np.float32)
mean = np.array([0.4914, 0.4822, 0.4465], np.float32)
std = np.array([0.2470, 0.2435, 0.2616], np.float32)
want = TF.normalize(torch.from_numpy(x.copy()), mean.tolist(), std.tolist())
got = x.copy()
lib.pl_tf_normalize(fptr(got), 4, 3, 30, fptr(mean), fptr(std))
ck.close(got, want.numpy(), 1e-6, "normalize")

g = rs.rand(2, 1, 7, 9).astype(np.float32)
got = np.zeros((2, 3, 7, 9), np.float32)
lib.pl_tf_gray_to_rgb(fptr(g), 2, 63, fptr(got))
ck.check(np.array_equal(got, torch.from_numpy(g).repeat(1, 3, 1, 1).numpy()), "gray->3ch")

# ---- crop/flip: explicit parameters vs torchvision pad/crop/hflip ----
c, h, w, pad = 3, 32, 32, 4
x = rs.rand(c, h, w).astype(np.float32)
xt = torch.from_numpy(x)
ok = True
for top in range(0, 2 * pad + 1, 2):
    for left in range(0, 2 * pad + 1, 3):
        for flip in (0, 1):
            ref = TF.crop(TF.pad(xt, [pad]), top, left, h, w)
            if flip:
                ref = TF.hflip(ref)
            got = np.zeros_like(x)
            lib.pl_tf_crop_flip(fptr(x), c, h, w, pad, top, left, flip, fptr(got))
            ok = ok and np.array_equal(got, ref.numpy())
ck.check(ok, "crop_flip equals torchvision pad+crop(+hflip)")

# ---- augment: every output is one padded crop/flip of the input (numpy) ----
padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
candidates = {}
for top in range(2 * pad + 1):
    for left in range(2 * pad + 1):
        crop = padded[:, top:top + h, left:left + w]
        candidates[(top, left, 0)] = crop
        candidates[(top, left, 1)] = crop[:, :, ::-1]
rng = Rng()
lib.pl_rng_seed(ctypes.byref(rng), 123, 9)
seen = set()
all_match = True
for _ in range(600):
    got = np.zeros_like(x)
    lib.pl_tf_augment(fptr(x), c, h, w, pad, ctypes.byref(rng), fptr(got))
    hits = [k for k, v in candidates.items() if np.array_equal(got, v)]
    all_match = all_match and len(hits) >= 1
    seen.update(hits)
ck.check(all_match, "each augmented image is a padded crop (+flip) of the input")
flips = sum(1 for k in seen if k[2] == 1)
ck.check(len({(t, l) for t, l, _ in seen}) == 81, "all 81 crop offsets occur")
ck.check(flips > 0 and flips < len(seen), "both flipped and unflipped occur")

# ---- a loader batch vs the same pipeline in torchvision ----
n, bs = 10, 8
imgs = rs.randint(0, 256, size=(n, 1, 28, 28)).astype(np.uint8)
labels = (np.arange(n) % 10).astype(np.uint8)
ds = ctypes.c_void_p()
err = Err()
rc = lib.pl_dataset_from_arrays(b"fashion-mnist", n, 1, 28, 28, 10, imgs.ctypes.data,
                                labels.ctypes.data, ctypes.byref(ds), ctypes.byref(err))
ck.check(rc == 0, f"dataset_from_arrays: {err.msg.decode()}")
cfg = LoaderConfig(batch_size=bs, shuffle=0, drop_last=0, seed=1)
lib.pl_transform_defaults(ctypes.byref(cfg.tf), b"fashion-mnist", 1, ctypes.byref(err))
cfg.tf.gray_to_rgb, cfg.tf.resize_h, cfg.tf.resize_w = 1, 32, 32
idx = np.array([3, 1, 4, 1, 5, 9, 2, 6, 7, 0], np.uint32)
loader = ctypes.c_void_p()
rc = lib.pl_loader_create(ds, idx.ctypes.data, n, ctypes.byref(cfg), ctypes.byref(loader),
                          ctypes.byref(err))
ck.check(rc == 0, f"loader_create: {err.msg.decode()}")
pipeline = T.Compose([T.ToTensor(), T.Lambda(lambda t: t.repeat(3, 1, 1)),
                      T.Resize([32, 32], InterpolationMode.BILINEAR),
                      T.Normalize([0.2860] * 3, [0.3530] * 3)])
batches = []
count = c_int()
for _ in range(3):
    xb = np.zeros((bs, 3, 32, 32), np.float32)
    yb = np.zeros(bs, np.int64)
    lib.pl_loader_next(loader, fptr(xb), None, yb.ctypes.data, ctypes.byref(count))
    batches.append((xb[:count.value].copy(), yb[:count.value].copy()))
ck.check([len(b[0]) for b in batches] == [8, 2, 0], "batch sizes 8, 2, then end of epoch")
got = np.concatenate([b[0] for b in batches])
want = torch.stack([pipeline(imgs[i, 0]) for i in idx]).numpy()
ck.close(got, want, 1e-5, "loader batch == ToTensor/repeat/Resize/Normalize")
ck.check(np.array_equal(np.concatenate([b[1] for b in batches]), labels[idx]), "loader targets")
lib.pl_loader_destroy(loader)
lib.pl_dataset_destroy(ds)

ck.finish()
