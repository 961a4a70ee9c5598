"""torch_safetensors — our safetensors files against an independent Python
implementation (json + struct + torch.frombuffer).

1. Files written by our writer (via ctypes) are parsed in Python and every
   tensor matches the source torch tensor bit for bit.
2. Files written in Python (reference layout: sorted by dtype alignment then
   name, padded header; and an unpadded variant) are read by our reader and
   match torch's own dtype conversion to float32 exactly.
3. A BatchNorm2d state_dict round-trips through pl_flat save/load in both
   directions, num_batches_tracked as a 0-dim I64.
"""
import ctypes
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pl_ctypes import Checker, c_float_p, lib  # noqa: E402

C = Checker()
TMP = os.environ.get("PEERLESS_TEST_TMP", "/tmp/peerless-test")
os.makedirs(TMP, exist_ok=True)

DTYPES = ["F32", "F16", "BF16", "I64", "I32", "U8"]  # pl_st_dtype order
TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
         "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1}


class Err(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 512)]


class Shape(ctypes.Structure):
    _fields_ = [("ndim", ctypes.c_int), ("dim", ctypes.c_int64 * 4)]


class StTensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * 8), ("data", ctypes.c_void_p),
                ("nbytes", ctypes.c_size_t), ("numel", ctypes.c_int64)]


class Flat(ctypes.Structure):
    _fields_ = [("data", c_float_p), ("count", ctypes.c_size_t), ("views", ctypes.c_void_p),
                ("nviews", ctypes.c_int), ("cap", ctypes.c_int)]


vp = ctypes.c_void_p
lib.pl_st_writer_create.argtypes = [ctypes.POINTER(vp), ctypes.POINTER(Err)]
lib.pl_st_writer_destroy.argtypes = [vp]
lib.pl_st_writer_add.argtypes = [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_int64), vp, ctypes.POINTER(Err)]
lib.pl_st_writer_set_metadata.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Err)]
lib.pl_st_writer_write.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(Err)]
lib.pl_st_open.argtypes = [ctypes.POINTER(vp), ctypes.c_char_p, ctypes.POINTER(Err)]
lib.pl_st_close.argtypes = [vp]
lib.pl_st_count.argtypes = [vp]
lib.pl_st_find.argtypes = [vp, ctypes.c_char_p]
lib.pl_st_find.restype = ctypes.POINTER(StTensor)
lib.pl_st_metadata_get.argtypes = [vp, ctypes.c_char_p]
lib.pl_st_metadata_get.restype = ctypes.c_char_p
lib.pl_st_read_f32.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(Shape), c_float_p,
                               ctypes.POINTER(Err)]
lib.pl_flat_init.argtypes = [ctypes.POINTER(Flat)]
lib.pl_flat_free.argtypes = [ctypes.POINTER(Flat)]
lib.pl_flat_add.argtypes = [ctypes.POINTER(Flat), ctypes.c_char_p, Shape, ctypes.c_int,
                            ctypes.POINTER(Err)]
lib.pl_flat_alloc.argtypes = [ctypes.POINTER(Flat), ctypes.POINTER(Err)]
lib.pl_flat_find.argtypes = [ctypes.POINTER(Flat), ctypes.c_char_p]
lib.pl_st_save_flats.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(Flat)),
                                 ctypes.c_int, ctypes.POINTER(Err)]
lib.pl_st_load_flats_file.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(Flat)),
                                      ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(Err)]


def sample_tensors():
    g = torch.Generator().manual_seed(1234)
    f16 = torch.randn(5, 7, generator=g).to(torch.float16)
    f16.view(-1)[:4] = torch.tensor([6e-8, 65504.0, float("inf"), -0.0], dtype=torch.float16)
    return {
        "conv.weight": torch.randn(4, 3, 2, 2, generator=g),
        "half": f16,
        "brain": (torch.randn(3, 6, generator=g) * 1e3).to(torch.bfloat16),
        "steps": torch.tensor([-5, 2**40 + 1, 2**62, 0], dtype=torch.int64),
        "labels": torch.randint(-2**31, 2**31 - 1, (9,), generator=g, dtype=torch.int32),
        "pixels": torch.randint(0, 256, (2, 3, 5), generator=g, dtype=torch.uint8),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
    }


def dtype_of(t):
    return {v: k for k, v in TORCH.items()}[t.dtype]


def raw_bytes(t):
    return t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def parse_python(path):
    """Independent reader: returns (header dict, data bytes, header length)."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    return header, blob[8 + n:], n


def from_buffer(info, data):
    b, e = info["data_offsets"]
    dt = TORCH[info["dtype"]]
    if e == b:
        return torch.zeros(info["shape"], dtype=dt)
    return torch.frombuffer(bytearray(data[b:e]), dtype=dt).reshape(info["shape"])


def test_our_writer_python_reader(tensors):
    path = os.path.join(TMP, "torch_st_ours.safetensors").encode()
    err = Err()
    w = vp()
    C.check(lib.pl_st_writer_create(ctypes.byref(w), ctypes.byref(err)) == 0, "writer create")
    keep = []
    for name, t in tensors.items():
        buf = ctypes.create_string_buffer(raw_bytes(t), max(1, t.numel() * t.element_size()))
        shape = (ctypes.c_int64 * 8)(*t.shape)
        keep.append(buf)
        rc = lib.pl_st_writer_add(w, name.encode(), DTYPES.index(dtype_of(t)), t.dim(), shape,
                                  ctypes.cast(buf, vp), ctypes.byref(err))
        C.check(rc == 0, f"add {name}: {err.msg.decode()}")
    lib.pl_st_writer_set_metadata(w, b"format", b"pt", ctypes.byref(err))
    lib.pl_st_writer_set_metadata(w, "note \u00e9\"".encode(), b"a\\b", ctypes.byref(err))
    C.check(lib.pl_st_writer_write(w, path, ctypes.byref(err)) == 0, f"write: {err.msg.decode()}")
    lib.pl_st_writer_destroy(w)

    header, data, n = parse_python(path)
    C.check(n % 8 == 0, f"header length {n} is a multiple of 8")
    C.check(header.get("__metadata__") == {"format": "pt", "note \u00e9\"": "a\\b"}, "metadata")
    names = [k for k in header if k != "__metadata__"]
    C.check(names == list(tensors), "tensors in the order added")
    end = 0
    for name, t in tensors.items():
        info = header[name]
        C.check(info["dtype"] == dtype_of(t) and info["shape"] == list(t.shape), f"{name}: dtype/shape")
        C.check(info["data_offsets"][0] == end, f"{name}: packed")
        end = info["data_offsets"][1]
        got = from_buffer(info, data)
        C.check(got.dtype == t.dtype and got.shape == t.shape and raw_bytes(got) == raw_bytes(t),
                f"{name}: bytes match")
    C.check(end == len(data), "no trailing bytes")


def write_python(path, tensors, metadata, pad=True, reference_order=True):
    """Reference-style writer: sort by alignment (desc) then name, as the
    safetensors library does; optionally pad the header to 8 bytes."""
    items = list(tensors.items())
    if reference_order:
        items.sort(key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, blobs, off = {}, [], 0
    for name, t in items:
        b = raw_bytes(t)
        header[name] = {"dtype": dtype_of(t), "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header = {**header, "__metadata__": metadata}  # metadata last: order must not matter
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_python_writer_our_reader(tensors, pad):
    path = os.path.join(TMP, f"torch_st_py{int(pad)}.safetensors").encode()
    write_python(path, tensors, {"epoch": "3"}, pad=pad)
    err, r = Err(), vp()
    rc = lib.pl_st_open(ctypes.byref(r), path, ctypes.byref(err))
    C.check(rc == 0, f"open pad={pad}: {err.msg.decode()}")
    if rc:
        return
    C.check(lib.pl_st_count(r) == len(tensors), "count")
    C.check(lib.pl_st_metadata_get(r, b"epoch") == b"3", "metadata")
    for name, t in tensors.items():
        p = lib.pl_st_find(r, name.encode())
        C.check(bool(p), f"find {name}")
        if not p:
            continue
        st = p.contents
        C.check(DTYPES[st.dtype] == dtype_of(t) and list(st.shape[:st.ndim]) == list(t.shape),
                f"{name}: dtype/shape")
        if t.dim() > 4:
            continue
        shape = Shape(t.dim(), (ctypes.c_int64 * 4)(*t.shape))
        out = torch.full(t.shape, float("nan"), dtype=torch.float32)
        rc = lib.pl_st_read_f32(r, name.encode(), ctypes.byref(shape),
                                ctypes.cast(out.data_ptr(), c_float_p), ctypes.byref(err))
        want = t.to(torch.float32)
        C.check(rc == 0 and torch.equal(out, want), f"{name}: read_f32 matches torch .float()")
    bad = Shape(1, (ctypes.c_int64 * 4)(3))
    out3 = (ctypes.c_float * 3)()
    rc = lib.pl_st_read_f32(r, b"conv.weight", ctypes.byref(bad), out3, ctypes.byref(err))
    C.check(rc == -5 and b"expected shape [3], file has [4, 3, 2, 2]" in err.msg, f"shape error: {err.msg}")
    lib.pl_st_close(r)


def test_python_malformed():
    path = os.path.join(TMP, "torch_st_bad.safetensors")
    text = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + b"\0" * 8)
    err, r = Err(), vp()
    rc = lib.pl_st_open(ctypes.byref(r), path.encode(), ctypes.byref(err))
    want = f"{path}: tensor 'x': data_offsets [0, 16] point past the end of the data (8 bytes)"
    C.check(rc == -3 and err.msg.decode() == want, f"malformed message: {err.msg.decode()}")


def make_flats(state):
    """params (weight, bias) + buffers (running stats, I64 counter); returns
    (params, bufs, where) with where[name] = (flat, float offset)."""
    err = Err()
    params, bufs = Flat(), Flat()
    lib.pl_flat_init(ctypes.byref(params))
    lib.pl_flat_init(ctypes.byref(bufs))
    where, count = {}, {id(params): 0, id(bufs): 0}
    for name, t in state.items():
        target = params if name in ("weight", "bias") else bufs
        kind = 1 if t.dtype == torch.int64 else 0
        lib.pl_flat_add(ctypes.byref(target), name.encode(), Shape(t.dim(), (ctypes.c_int64 * 4)(*t.shape)),
                        kind, ctypes.byref(err))
        where[name] = (target, count[id(target)])
        count[id(target)] += t.numel()
    lib.pl_flat_alloc(ctypes.byref(params), ctypes.byref(err))
    lib.pl_flat_alloc(ctypes.byref(bufs), ctypes.byref(err))
    return params, bufs, where


def flat_tensor(where, name, like):
    """torch tensor sharing the floats of view `name` (shape of `like`)."""
    flat, off = where[name]
    arr = (ctypes.c_float * flat.count).from_address(ctypes.addressof(flat.data.contents))
    return torch.frombuffer(arr, dtype=torch.float32)[off:off + like.numel()].view(like.shape)


def test_flats_bn():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn.train()
    for _ in range(5):
        bn(torch.randn(4, 3, 5, 5) * 2 + 1)
    state = {k: v.detach().clone() for k, v in bn.state_dict().items()}

    # ours -> python: save flats filled from the state dict
    params, bufs, where = make_flats(state)
    for k, v in state.items():
        flat_tensor(where, k, v).copy_(v.float())
    path = os.path.join(TMP, "torch_st_bn.safetensors")
    arr = (ctypes.POINTER(Flat) * 2)(ctypes.pointer(params), ctypes.pointer(bufs))
    err = Err()
    C.check(lib.pl_st_save_flats(path.encode(), arr, 2, ctypes.byref(err)) == 0, f"save flats: {err.msg}")
    header, data, _ = parse_python(path)
    loaded = {k: from_buffer(v, data) for k, v in header.items() if k != "__metadata__"}
    C.check(header["num_batches_tracked"]["dtype"] == "I64" and header["num_batches_tracked"]["shape"] == [],
            "num_batches_tracked saved as 0-dim I64")
    bn2 = torch.nn.BatchNorm2d(3)
    try:
        bn2.load_state_dict(loaded, strict=True)
        ok = all(torch.equal(bn2.state_dict()[k], state[k]) for k in state)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        ok = False
    C.check(ok, "torch load_state_dict(strict) of our file matches")

    # python -> ours: strict load into fresh flats
    path2 = os.path.join(TMP, "torch_st_bn_py.safetensors")
    write_python(path2, state, {"format": "pt"})
    p2, b2, where2 = make_flats(state)
    arr2 = (ctypes.POINTER(Flat) * 2)(ctypes.pointer(p2), ctypes.pointer(b2))
    n = ctypes.c_int(-1)
    rc = lib.pl_st_load_flats_file(path2.encode(), arr2, 2, 1, ctypes.byref(n), ctypes.byref(err))
    C.check(rc == 0 and n.value == len(state), f"strict load of python file: {err.msg}")
    for k, v in state.items():
        got = flat_tensor(where2, k, v)
        C.check(torch.equal(got, v.float()), f"loaded {k}")
    # only params, strictly: the buffers are unexpected
    rc = lib.pl_st_load_flats_file(path2.encode(), arr2, 1, 1, None, ctypes.byref(err))
    C.check(rc == -3 and b"unexpected tensor" in err.msg, f"strict extra: {err.msg}")
    for f in (params, bufs, p2, b2):
        lib.pl_flat_free(ctypes.byref(f))


tensors = sample_tensors()
test_our_writer_python_reader(tensors)
test_python_writer_our_reader(tensors, pad=True)
test_python_writer_our_reader(tensors, pad=False)
test_python_malformed()
test_flats_bn()
C.finish()
