"""torch_compress — codecs against NumPy/PyTorch and the documented layout.

- fp16 encoding equals numpy's float16 conversion (round to nearest even)
  bit for bit, over normal, subnormal and tie values; decoding equals
  float16 -> float32;
- qsgd8/qsgd4 payloads parsed here from the layout in compress.h (norms, packed
  sign+magnitude codes) decode to what the library decodes, with norms equal
  to the buckets' L2 norms;
- topk sends exactly torch.topk's entries of |x|.
"""
import ctypes
import struct

import numpy as np
import torch

from pl_ctypes import Checker, fptr, lib


class Cfg(ctypes.Structure):
    _fields_ = [("id", ctypes.c_int), ("bucket", ctypes.c_uint32), ("ratio", ctypes.c_double)]


class Err(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 512)]


lib.pl_codec_max_bytes.restype = ctypes.c_size_t
lib.pl_codec_max_bytes.argtypes = [ctypes.POINTER(Cfg), ctypes.c_size_t]
lib.pl_codec_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                                ctypes.c_void_p, ctypes.c_size_t,
                                ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(Err)]
lib.pl_codec_create.argtypes = [ctypes.POINTER(Cfg), ctypes.c_size_t, ctypes.c_uint64,
                                ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(Err)]
lib.pl_codec_destroy.argtypes = [ctypes.c_void_p]
lib.pl_codec_decode.argtypes = [ctypes.POINTER(Cfg), ctypes.c_void_p, ctypes.c_size_t,
                                ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(Err)]


def encode(spec, x, seed=1):
    cfg, err, codec = Cfg(), Err(), ctypes.c_void_p()
    assert lib.pl_codec_parse(spec.encode(), ctypes.byref(cfg), ctypes.byref(err)) == 0, err.msg
    assert lib.pl_codec_create(ctypes.byref(cfg), x.size, seed, ctypes.byref(codec),
                               ctypes.byref(err)) == 0, err.msg
    cap = lib.pl_codec_max_bytes(ctypes.byref(cfg), x.size)
    buf = ctypes.create_string_buffer(cap)
    written = ctypes.c_size_t()
    rc = lib.pl_codec_encode(codec, fptr(x), x.size, 0, buf, cap, ctypes.byref(written),
                             ctypes.byref(err))
    lib.pl_codec_destroy(codec)
    assert rc == 0, err.msg
    return buf.raw[:written.value]


def decode(payload, n):
    y = np.empty(n, dtype=np.float32)
    err = Err()
    rc = lib.pl_codec_decode(None, payload, len(payload), fptr(y), n, ctypes.byref(err))
    assert rc == 0, err.msg
    return y


def test_fp16(c):
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(20000) * s for s in (1e-7, 1e-5, 1e-3, 1, 100, 3e4)]
    halves = np.arange(0, 0x7bff, dtype=np.uint16).view(np.float16).astype(np.float32)
    mids = (halves[:-1].astype(np.float64) + halves[1:]) / 2  # exact ties
    x = np.concatenate(parts + [halves, mids, -mids]).astype(np.float32)
    x = x[np.abs(x) < 65504]
    got = np.frombuffer(encode("fp16", x)[12:], dtype="<u2")
    want = x.astype(np.float16).view(np.uint16)
    c.check(np.array_equal(got, want),
            f"fp16 bits differ from numpy at {np.count_nonzero(got != want)} of {x.size}")
    y = decode(encode("fp16", x), x.size)
    c.check(np.array_equal(y, want.view(np.float16).astype(np.float32)), "fp16 decode")


def parse_qsgd(p, bits):
    cid, ver, rsv, n, bucket = struct.unpack_from("<BBHII", p)
    nb = -(-n // bucket)
    norms = np.frombuffer(p, dtype="<f4", count=nb, offset=12)
    raw = np.frombuffer(p, dtype=np.uint8, offset=12 + 4 * nb)
    if bits == 8:
        codes = raw[:n].astype(np.int64)
    else:
        codes = np.stack([raw & 0xF, raw >> 4], axis=1).reshape(-1)[:n].astype(np.int64)
    s = (1 << (bits - 1)) - 1
    sign = np.where(codes >> (bits - 1), -1.0, 1.0)
    level = codes & s
    return n, bucket, norms, (sign * (level / s)).astype(np.float32)


def test_qsgd(c):
    x = (np.random.default_rng(1).standard_normal(3001) * 0.01).astype(np.float32)
    for spec, bits in (("qsgd8:256", 8), ("qsgd4:128", 4)):
        p = encode(spec, x)
        n, bucket, norms, unit = parse_qsgd(p, bits)
        pad = np.zeros(-(-n // bucket) * bucket, dtype=np.float64)
        pad[:n] = x
        want_norms = torch.linalg.vector_norm(torch.from_numpy(pad.reshape(-1, bucket)), dim=1)
        c.close(norms, want_norms.numpy(), 1e-6, f"{spec}: bucket norms vs torch")
        mine = np.repeat(norms, bucket)[:n] * unit
        c.check(np.array_equal(decode(p, n), mine), f"{spec}: decode vs layout parsed in Python")
        c.check(n == x.size and bucket == int(spec.split(":")[1]), f"{spec}: header fields")


def test_topk(c):
    x = np.random.default_rng(2).standard_normal(10000).astype(np.float32)
    p = encode("topk:0.02", x)
    k = struct.unpack_from("<I", p, 8)[0]
    pairs = np.frombuffer(p, dtype=[("i", "<u4"), ("v", "<f4")], offset=12)
    want = torch.topk(torch.from_numpy(np.abs(x)), 200).indices.numpy()
    c.check(k == 200, f"topk k = {k}, want 200")
    c.check(np.array_equal(pairs["i"], np.sort(want)), "topk indices vs torch.topk")
    c.check(np.array_equal(pairs["v"], x[pairs["i"]]), "topk values")


if __name__ == "__main__":
    c = Checker()
    test_fp16(c)
    test_qsgd(c)
    test_topk(c)
    c.finish()
