"""torch_kernels — every kernel of the reference backend against PyTorch.

Calls pl_backend_ref() through ctypes, walks its function-pointer table and
compares forward outputs and backward gradients (with the same upstream
gradient, via torch.autograd) with torch.nn.functional computed in float64.
Gradient buffers start at a nonzero value to prove backward ADDS. Also checks
the output sizes computed by pl_conv2d_desc_init / pl_pool_desc_init against
the shapes PyTorch produces.

PL_TORCH_BACKENDS (comma-separated, default "ref") selects more backends by
name (e.g. "ref,fast") so the same checks can run on any backend.
"""
import ctypes
import os

import numpy as np
import torch
import torch.nn.functional as F

from pl_ctypes import Checker, c_float_p, c_int32_p, fptr, lib

TOL = 1e-5
ACC0 = 0.25  # initial value of every gradient buffer
c_int = ctypes.c_int
c_float = ctypes.c_float


class Err(ctypes.Structure):
    _fields_ = [("status", c_int), ("msg", ctypes.c_char * 512)]


class ConvDesc(ctypes.Structure):
    _fields_ = [(f, c_int) for f in (
        "n", "c_in", "h_in", "w_in", "c_out", "kh", "kw", "stride_h", "stride_w",
        "pad_h", "pad_w", "dil_h", "dil_w", "groups", "has_bias", "h_out", "w_out")]


class PoolDesc(ctypes.Structure):
    _fields_ = [(f, c_int) for f in (
        "n", "c", "h_in", "w_in", "kh", "kw", "stride_h", "stride_w", "pad_h", "pad_w",
        "ceil_mode", "count_include_pad", "h_out", "w_out")]


class AdaDesc(ctypes.Structure):
    _fields_ = [(f, c_int) for f in ("n", "c", "h_in", "w_in", "h_out", "w_out")]


class BnDesc(ctypes.Structure):
    _fields_ = [("n", c_int), ("c", c_int), ("hw", c_int), ("eps", c_float)]


fp = c_float_p
F_ = ctypes.CFUNCTYPE
P = ctypes.POINTER


class Backend(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("gemm", F_(None, c_int, c_int, c_int, c_int, c_int, c_float, fp, c_int, fp, c_int,
                    c_float, fp, c_int)),
        ("conv2d_plan", F_(c_int, P(ConvDesc), P(ctypes.c_void_p), P(Err))),
        ("conv2d_plan_free", F_(None, ctypes.c_void_p)),
        ("conv2d_fwd", F_(c_int, ctypes.c_void_p, fp, fp, fp, fp)),
        ("conv2d_bwd", F_(c_int, ctypes.c_void_p, fp, fp, fp, fp, fp, fp)),
        ("bn_fwd_train", F_(None, P(BnDesc), fp, fp, fp, fp, fp, fp, fp)),
        ("bn_fwd_eval", F_(None, P(BnDesc), fp, fp, fp, fp, fp, fp)),
        ("bn_bwd_train", F_(None, P(BnDesc), fp, fp, fp, fp, fp, fp, fp, fp)),
        ("bn_bwd_eval", F_(None, P(BnDesc), fp, fp, fp, fp, fp, fp, fp, fp)),
        ("maxpool_fwd", F_(None, P(PoolDesc), fp, fp, c_int32_p)),
        ("maxpool_bwd", F_(None, P(PoolDesc), c_int32_p, fp, fp)),
        ("avgpool_fwd", F_(None, P(PoolDesc), fp, fp)),
        ("avgpool_bwd", F_(None, P(PoolDesc), fp, fp)),
        ("adapool_fwd", F_(None, P(AdaDesc), fp, fp)),
        ("adapool_bwd", F_(None, P(AdaDesc), fp, fp)),
        ("act_fwd", F_(None, c_int, ctypes.c_size_t, fp, fp)),
        ("act_bwd", F_(None, c_int, ctypes.c_size_t, fp, fp, fp)),
        ("logsoftmax_fwd", F_(None, c_int, c_int, fp, fp)),
        ("logsoftmax_bwd", F_(None, c_int, c_int, fp, fp, fp)),
    ]


lib.pl_backend_ref.restype = P(Backend)
lib.pl_backend_by_name.restype = P(Backend)
lib.pl_backend_by_name.argtypes = [ctypes.c_char_p]
lib.pl_conv2d_desc_init.argtypes = [P(ConvDesc), P(Err)]
lib.pl_pool_desc_init.argtypes = [P(PoolDesc), P(Err)]

rng = np.random.default_rng(1234)
ck = Checker()


def rand(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def acc(shape):
    return np.full(shape, ACC0, dtype=np.float32)


def grads(out, ins, g):
    """torch gradients of sum(out * g) w.r.t. ins (as numpy float64)."""
    gs = torch.autograd.grad(out, ins, grad_outputs=t64(g))
    return [x.detach().numpy() for x in gs]


# ---- gemm ----

def check_gemm(be, tag):
    m, n, k = 5, 7, 6
    for ta in (0, 1):
        for tb in (0, 1):
            for alpha, beta in ((1.0, 0.0), (0.7, -1.3)):
                a = rand(k, m) if ta else rand(m, k)
                b = rand(n, k) if tb else rand(k, n)
                c0 = rand(m, n)
                c = c0.copy()
                if beta == 0.0:
                    c[:] = np.nan  # beta == 0 must ignore garbage in C
                be.gemm(ta, tb, m, n, k, alpha, fptr(a), a.shape[1], fptr(b), b.shape[1],
                        beta, fptr(c), n)
                A = t64(a).T if ta else t64(a)
                B = t64(b).T if tb else t64(b)
                want = alpha * (A @ B) + (beta * t64(c0) if beta else 0)
                ck.close(c, want.numpy(), TOL, f"{tag} gemm ta={ta} tb={tb} a={alpha} b={beta}")
    # Leading dimensions larger than the logical row length.
    a, b, c = rand(4, 9), rand(3, 8), np.zeros((4, 10), np.float32)
    be.gemm(0, 0, 4, 5, 3, 1.0, fptr(a), 9, fptr(b), 8, 0.0, fptr(c), 10)
    want = t64(a)[:, :3] @ t64(b)[:, :5]
    ck.close(c[:, :5], want.numpy(), TOL, f"{tag} gemm strided lda/ldb/ldc")
    ck.check(np.all(c[:, 5:] == 0), f"{tag} gemm wrote outside ldc columns")


# ---- convolution ----

CONV_CASES = [
    # n, cin, h, w, cout, kh, kw, stride, pad, dil, groups, bias
    (2, 3, 8, 8, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1),
    (2, 3, 9, 7, 4, 3, 3, (2, 2), (1, 1), (1, 1), 1, 0),
    (1, 4, 6, 6, 6, 1, 1, (1, 1), (0, 0), (1, 1), 1, 1),
    (2, 4, 7, 7, 6, 3, 3, (1, 1), (1, 1), (1, 1), 2, 1),
    (2, 5, 8, 8, 5, 3, 3, (2, 2), (1, 1), (1, 1), 5, 0),
    (1, 3, 10, 10, 2, 3, 3, (1, 1), (2, 2), (2, 2), 1, 1),
    (2, 2, 9, 11, 3, 2, 5, (2, 3), (1, 2), (1, 1), 1, 1),
    (1, 6, 7, 7, 12, 3, 3, (2, 1), (0, 1), (2, 1), 3, 1),
    # small maps where outer kernel taps only see padding (the fast backend crops them)
    (3, 8, 1, 1, 6, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1),
    (2, 6, 2, 2, 8, 3, 3, (2, 2), (1, 1), (1, 1), 1, 0),
    (2, 8, 1, 1, 8, 5, 5, (1, 1), (2, 2), (1, 1), 8, 0),
    (2, 4, 1, 5, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1),
]


def conv_desc(c):
    n, cin, h, w, cout, kh, kw, s, p, dl, g, bias = c
    d = ConvDesc(n=n, c_in=cin, h_in=h, w_in=w, c_out=cout, kh=kh, kw=kw,
                 stride_h=s[0], stride_w=s[1], pad_h=p[0], pad_w=p[1],
                 dil_h=dl[0], dil_w=dl[1], groups=g, has_bias=bias)
    err = Err()
    rc = lib.pl_conv2d_desc_init(ctypes.byref(d), ctypes.byref(err))
    assert rc == 0, err.msg
    return d


def check_conv(be, tag):
    for c in CONV_CASES:
        d = conv_desc(c)
        g, bias = c[10], c[11]
        x = rand(d.n, d.c_in, d.h_in, d.w_in)
        w = rand(d.c_out, d.c_in // g, d.kh, d.kw)
        b = rand(d.c_out) if bias else None
        y = np.empty((d.n, d.c_out, d.h_out, d.w_out), np.float32)
        plan, err = ctypes.c_void_p(), Err()
        ck.check(be.conv2d_plan(ctypes.byref(d), ctypes.byref(plan), ctypes.byref(err)) == 0,
                 f"{tag} conv plan {c}: {err.msg}")
        ck.check(be.conv2d_fwd(plan, fptr(x), fptr(w), fptr(b), fptr(y)) == 0, f"{tag} conv fwd rc")
        X, W = t64(x, True), t64(w, True)
        B = t64(b, True) if bias else None
        Y = F.conv2d(X, W, B, stride=(d.stride_h, d.stride_w), padding=(d.pad_h, d.pad_w),
                     dilation=(d.dil_h, d.dil_w), groups=g)
        ck.close(y, Y.detach().numpy(), TOL, f"{tag} conv fwd {c}")
        dy = rand(*y.shape)
        dx, dw = acc(x.shape), acc(w.shape)
        db = acc((d.c_out,)) if bias else None
        ck.check(be.conv2d_bwd(plan, fptr(x), fptr(w), fptr(dy), fptr(dx), fptr(dw), fptr(db)) == 0,
                 f"{tag} conv bwd rc")
        want = grads(Y, [X, W] + ([B] if bias else []), dy)
        ck.close(dx - ACC0, want[0], TOL, f"{tag} conv dx {c}")
        ck.close(dw - ACC0, want[1], TOL, f"{tag} conv dw {c}")
        if bias:
            ck.close(db - ACC0, want[2], TOL, f"{tag} conv db {c}")
        # NULL gradients are skipped: only dw requested.
        dw2 = np.zeros_like(w)
        be.conv2d_bwd(plan, fptr(x), fptr(w), fptr(dy), None, fptr(dw2), None)
        ck.close(dw2, want[1], TOL, f"{tag} conv dw only {c}")
        be.conv2d_plan_free(plan)
    be.conv2d_plan_free(None)


# ---- batch norm ----

def check_bn(be, tag):
    for n, c, hw, eps in ((4, 3, 5, 1e-5), (8, 2, 1, 1e-3), (2, 4, 9, 1e-5)):
        d = BnDesc(n=n, c=c, hw=hw, eps=eps)
        x = rand(n, c, hw, lo=-2, hi=3)
        gamma, beta = rand(c, lo=0.5, hi=1.5), rand(c)
        y = np.empty_like(x)
        mean, var, invstd = (np.empty(c, np.float32) for _ in range(3))
        be.bn_fwd_train(ctypes.byref(d), fptr(x), fptr(gamma), fptr(beta), fptr(y),
                        fptr(mean), fptr(var), fptr(invstd))
        X, G, B = t64(x, True), t64(gamma, True), t64(beta, True)
        rm, rv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
        Y = F.batch_norm(X.view(n, c, hw), rm, rv, G, B, training=True, momentum=1.0, eps=eps)
        what = f"{tag} bn train n={n} c={c} hw={hw} eps={eps}"
        ck.close(y, Y.detach().numpy(), TOL, what + " y")
        xd = torch.tensor(x, dtype=torch.float64).transpose(0, 1).reshape(c, -1)
        ck.close(mean, xd.mean(1).numpy(), TOL, what + " mean")
        ck.close(var, xd.var(1, unbiased=False).numpy(), TOL, what + " var (biased)")
        ck.close(invstd, (1 / torch.sqrt(xd.var(1, unbiased=False) + eps)).numpy(), TOL,
                 what + " invstd")
        dy = rand(n, c, hw)
        dx, dg, dbt = acc(x.shape), acc(c), acc(c)
        be.bn_bwd_train(ctypes.byref(d), fptr(x), fptr(gamma), fptr(mean), fptr(invstd),
                        fptr(dy), fptr(dx), fptr(dg), fptr(dbt))
        want = grads(Y, [X, G, B], dy)
        for got, w, nm in ((dx, want[0], "dx"), (dg, want[1], "dgamma"), (dbt, want[2], "dbeta")):
            ck.close(got - ACC0, w, TOL, f"{what} {nm}")

        rmean, rvar = rand(c), rand(c, lo=0.5, hi=2.0)
        be.bn_fwd_eval(ctypes.byref(d), fptr(x), fptr(gamma), fptr(beta), fptr(rmean),
                       fptr(rvar), fptr(y))
        X, G, B = t64(x, True), t64(gamma, True), t64(beta, True)
        Y = F.batch_norm(X, t64(rmean), t64(rvar), G, B, training=False, eps=eps)
        what = f"{tag} bn eval n={n} c={c} hw={hw} eps={eps}"
        ck.close(y, Y.detach().numpy(), TOL, what + " y")
        dx, dg, dbt = acc(x.shape), acc(c), acc(c)
        be.bn_bwd_eval(ctypes.byref(d), fptr(x), fptr(gamma), fptr(rmean), fptr(rvar),
                       fptr(dy), fptr(dx), fptr(dg), fptr(dbt))
        want = grads(Y, [X, G, B], dy)
        for got, w, nm in ((dx, want[0], "dx"), (dg, want[1], "dgamma"), (dbt, want[2], "dbeta")):
            ck.close(got - ACC0, w, TOL, f"{what} {nm}")


# ---- pooling ----

POOL_CASES = [
    # n, c, h, w, k, stride, pad, ceil
    (2, 3, 8, 8, (2, 2), (2, 2), (0, 0), 0),
    (2, 3, 13, 13, (3, 3), (2, 2), (0, 0), 1),
    (1, 2, 7, 9, (3, 3), (2, 2), (1, 1), 0),
    (1, 2, 8, 10, (3, 3), (2, 2), (1, 1), 1),
    (2, 2, 6, 6, (3, 2), (3, 2), (1, 1), 1),
    (1, 3, 10, 7, (4, 3), (3, 2), (2, 1), 1),
    (1, 1, 5, 5, (2, 2), (2, 2), (1, 1), 1),
    (1, 2, 4, 4, (3, 3), (1, 1), (1, 1), 0),
]


def pool_desc(c, cip=1):
    n, ch, h, w, k, s, p, ceil = c
    d = PoolDesc(n=n, c=ch, h_in=h, w_in=w, kh=k[0], kw=k[1], stride_h=s[0], stride_w=s[1],
                 pad_h=p[0], pad_w=p[1], ceil_mode=ceil, count_include_pad=cip)
    err = Err()
    rc = lib.pl_pool_desc_init(ctypes.byref(d), ctypes.byref(err))
    assert rc == 0, err.msg
    return d


def pool_kw(d):
    return dict(kernel_size=(d.kh, d.kw), stride=(d.stride_h, d.stride_w),
                padding=(d.pad_h, d.pad_w), ceil_mode=bool(d.ceil_mode))


def check_maxpool(be, tag):
    for c in POOL_CASES:
        d = pool_desc(c)
        # A permutation: all values distinct, so argmax is unambiguous.
        x = rng.permutation(d.n * d.c * d.h_in * d.w_in).astype(np.float32)
        x = (x - x.size / 2).reshape(d.n, d.c, d.h_in, d.w_in) / 7
        y = np.empty((d.n, d.c, d.h_out, d.w_out), np.float32)
        am = np.empty(y.shape, np.int32)
        be.maxpool_fwd(ctypes.byref(d), fptr(x), fptr(y), am.ctypes.data_as(c_int32_p))
        X = t64(x, True)
        Y, idx = F.max_pool2d(X, return_indices=True, **pool_kw(d))
        ck.close(y, Y.detach().numpy(), TOL, f"{tag} maxpool fwd {c}")
        ck.check(np.array_equal(am, idx.numpy()), f"{tag} maxpool argmax {c}")
        dy = rand(*y.shape)
        dx = acc(x.shape)
        be.maxpool_bwd(ctypes.byref(d), am.ctypes.data_as(c_int32_p), fptr(dy), fptr(dx))
        ck.close(dx - ACC0, grads(Y, [X], dy)[0], TOL, f"{tag} maxpool dx {c}")
    # Ties: first max wins; NaN propagates.
    d = pool_desc((1, 1, 2, 4, (2, 2), (2, 2), (0, 0), 0))
    x = np.array([[[[1, 3, 5, 5], [3, 2, 5, np.nan]]]], np.float32)
    y, am = np.empty((1, 1, 1, 2), np.float32), np.empty((1, 1, 1, 2), np.int32)
    be.maxpool_fwd(ctypes.byref(d), fptr(x), fptr(y), am.ctypes.data_as(c_int32_p))
    Y, idx = F.max_pool2d(torch.tensor(x), 2, return_indices=True)
    ck.check(y[0, 0, 0, 0] == 3 and am[0, 0, 0, 0] == idx[0, 0, 0, 0].item(),
             f"{tag} maxpool tie: got idx {am[0, 0, 0, 0]} want {idx[0, 0, 0, 0].item()}")
    ck.check(np.isnan(y[0, 0, 0, 1]) and np.isnan(Y[0, 0, 0, 1].item()), f"{tag} maxpool NaN")


def check_avgpool(be, tag):
    for c in POOL_CASES:
        for cip in (1, 0):
            d = pool_desc(c, cip)
            x = rand(d.n, d.c, d.h_in, d.w_in)
            y = np.empty((d.n, d.c, d.h_out, d.w_out), np.float32)
            be.avgpool_fwd(ctypes.byref(d), fptr(x), fptr(y))
            X = t64(x, True)
            Y = F.avg_pool2d(X, count_include_pad=bool(cip), **pool_kw(d))
            ck.close(y, Y.detach().numpy(), TOL, f"{tag} avgpool fwd {c} cip={cip}")
            dy = rand(*y.shape)
            dx = acc(x.shape)
            be.avgpool_bwd(ctypes.byref(d), fptr(dy), fptr(dx))
            ck.close(dx - ACC0, grads(Y, [X], dy)[0], TOL, f"{tag} avgpool dx {c} cip={cip}")


def check_adapool(be, tag):
    for (h, w), (ho, wo) in (((1, 1), (7, 7)), ((2, 2), (7, 7)), ((5, 5), (3, 3)),
                             ((7, 7), (7, 7)), ((8, 6), (1, 1)), ((5, 7), (3, 4)),
                             ((3, 4), (5, 9))):
        d = AdaDesc(n=2, c=3, h_in=h, w_in=w, h_out=ho, w_out=wo)
        x = rand(2, 3, h, w)
        y = np.empty((2, 3, ho, wo), np.float32)
        be.adapool_fwd(ctypes.byref(d), fptr(x), fptr(y))
        X = t64(x, True)
        Y = F.adaptive_avg_pool2d(X, (ho, wo))
        ck.close(y, Y.detach().numpy(), TOL, f"{tag} adapool fwd {h}x{w}->{ho}x{wo}")
        dy = rand(*y.shape)
        dx = acc(x.shape)
        be.adapool_bwd(ctypes.byref(d), fptr(dy), fptr(dx))
        ck.close(dx - ACC0, grads(Y, [X], dy)[0], TOL, f"{tag} adapool dx {h}x{w}->{ho}x{wo}")


# ---- activations and log-softmax ----

ACTS = [(0, "relu", F.relu), (1, "relu6", F.relu6), (2, "hardswish", F.hardswish),
        (3, "hardsigmoid", F.hardsigmoid)]


def check_act(be, tag):
    # Include the kinks exactly: the conventions in backend.h must match torch's.
    kinks = np.array([-3, 0, 3, 6, -6, 7, 2.5, -2.5], np.float32)
    xs = np.concatenate([rand(1000, lo=-8, hi=8), kinks])
    for kind, name, fn in ACTS:
        # torch 1.13's vectorised and scalar hardswish backward disagree at
        # exactly x=3 (1 vs 1.5); backend.h follows the scalar kernel.
        x = xs[xs != 3.0] if name == "hardswish" else xs
        y = np.empty_like(x)
        be.act_fwd(kind, x.size, fptr(x), fptr(y))
        X = t64(x, True)
        Y = fn(X)
        ck.close(y, Y.detach().numpy(), TOL, f"{tag} {name} fwd")
        dy = rand(x.size)
        dx = acc(x.shape)
        be.act_bwd(kind, x.size, fptr(x), fptr(dy), fptr(dx))
        ck.close(dx - ACC0, grads(Y, [X], dy)[0], TOL, f"{tag} {name} dx")
        y2 = x.copy()
        be.act_fwd(kind, x.size, fptr(y2), fptr(y2))
        ck.check(np.array_equal(y2, y), f"{tag} {name} fwd in place (y aliases x)")


def check_logsoftmax(be, tag):
    for rows, cols in ((4, 10), (3, 1), (2, 1000)):
        x = rand(rows, cols, lo=-5, hi=5)
        x[0, 0] = 80.0  # exp(80) overflows float: the max must be subtracted
        y = np.empty_like(x)
        be.logsoftmax_fwd(rows, cols, fptr(x), fptr(y))
        X = t64(x, True)
        Y = F.log_softmax(X, dim=1)
        ck.close(y, Y.detach().numpy(), TOL, f"{tag} log_softmax fwd {rows}x{cols}")
        dy = rand(rows, cols)
        dx = acc(x.shape)
        be.logsoftmax_bwd(rows, cols, fptr(y), fptr(dy), fptr(dx))
        ck.close(dx - ACC0, grads(Y, [X], dy)[0], TOL, f"{tag} log_softmax dx {rows}x{cols}")


# ---- descriptor output sizes ----

def torch_pool_out(h, w, k, s, p, ceil):
    """PyTorch's output size (None if it rejects the shape). The meta device
    runs PyTorch's own shape checks and size formula without computing."""
    x = torch.zeros(1, 1, h, w, device="meta")
    try:
        return tuple(F.max_pool2d(x, k, s, p, ceil_mode=bool(ceil)).shape[2:])
    except RuntimeError:
        return None


def check_pool_sizes():
    bad = []
    for h in range(1, 16):
        for k in range(1, 5):
            for s in range(1, 4):
                # p > k/2 is rejected by both (checked below); raising is slow in torch.
                for p in range(0, k // 2 + 1):
                    for ceil in (0, 1):
                        want = torch_pool_out(h, h + 1, k, s, p, ceil)
                        d = PoolDesc(n=1, c=1, h_in=h, w_in=h + 1, kh=k, kw=k, stride_h=s,
                                     stride_w=s, pad_h=p, pad_w=p, ceil_mode=ceil,
                                     count_include_pad=1)
                        rc = lib.pl_pool_desc_init(ctypes.byref(d), None)
                        got = (d.h_out, d.w_out) if rc == 0 else None
                        if want != got:
                            bad.append(f"h={h} w={h + 1} k={k} s={s} p={p} ceil={ceil}: "
                                       f"got {got} want {want}")
    ck.check(not bad, f"pl_pool_desc_init output size vs torch, {len(bad)} cases: "
             + "; ".join(bad[:10]))
    # The classic ceil_mode edge cases, named so a failure is easy to read.
    for h, k, s, p in ((13, 3, 2, 0), (14, 3, 2, 1), (5, 2, 2, 1), (6, 3, 3, 1), (112, 3, 2, 1)):
        d = PoolDesc(n=1, c=1, h_in=h, w_in=h, kh=k, kw=k, stride_h=s, stride_w=s, pad_h=p,
                     pad_w=p, ceil_mode=1, count_include_pad=1)
        lib.pl_pool_desc_init(ctypes.byref(d), None)
        want = torch_pool_out(h, h, k, s, p, 1)[0]
        ck.check(d.h_out == want, f"pool ceil h={h} k={k} s={s} p={p}: got {d.h_out} want {want}")
    for k, p in ((3, 2), (2, 2), (4, 3)):
        d = PoolDesc(n=1, c=1, h_in=9, w_in=9, kh=k, kw=k, stride_h=1, stride_w=1, pad_h=p, pad_w=p)
        rc = lib.pl_pool_desc_init(ctypes.byref(d), None)
        want = torch_pool_out(9, 9, k, 1, p, 0)
        ck.check(rc != 0 and want is None, f"pool k={k} pad={p} > k/2: rc {rc}, torch {want}")
    d = PoolDesc(n=1, c=1, h_in=8, w_in=8, kh=3, kw=3, stride_h=0, stride_w=0)
    lib.pl_pool_desc_init(ctypes.byref(d), None)
    ck.check((d.h_out, d.w_out) == (2, 2), f"pool stride 0 defaults to kernel: got {d.h_out}")


def torch_conv_out(h, w, k, s, p, dl):
    """PyTorch's output size on the meta device; None where the CPU kernel
    raises (kernel larger than the padded input gives sizes < 1 on meta)."""
    x, wt = torch.zeros(1, 1, h, w, device="meta"), torch.zeros(1, 1, k, k, device="meta")
    try:
        out = tuple(F.conv2d(x, wt, None, s, p, dl).shape[2:])
    except RuntimeError:
        return None
    return out if min(out) >= 1 else None


def check_conv_sizes():
    bad = []
    for h in range(1, 12):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for p in (0, 1, 2):
                    for dl in (1, 2):
                        want = torch_conv_out(h, h + 2, k, s, p, dl)
                        d = ConvDesc(n=1, c_in=1, h_in=h, w_in=h + 2, c_out=1, kh=k, kw=k,
                                     stride_h=s, stride_w=s, pad_h=p, pad_w=p, dil_h=dl,
                                     dil_w=dl, groups=1)
                        rc = lib.pl_conv2d_desc_init(ctypes.byref(d), None)
                        got = (d.h_out, d.w_out) if rc == 0 else None
                        if want != got:
                            bad.append(f"h={h} k={k} s={s} p={p} dil={dl}: got {got} want {want}")
    ck.check(not bad, "pl_conv2d_desc_init output size vs torch: " + "; ".join(bad[:10]))


def backends():
    names = os.environ.get("PL_TORCH_BACKENDS", "ref").split(",")
    out = []
    for name in names:
        p = lib.pl_backend_ref() if name == "ref" else lib.pl_backend_by_name(name.encode())
        ck.check(bool(p), f"backend {name!r} not available")
        if p:
            ck.check(p.contents.name.decode() == name, f"backend {name!r} reports its name")
            out.append((name, p.contents))
    return out


def main():
    torch.set_num_threads(2)
    check_pool_sizes()
    check_conv_sizes()
    for tag, be in backends():
        for fn in (check_gemm, check_conv, check_bn, check_maxpool, check_avgpool,
                   check_adapool, check_act, check_logsoftmax):
            fn(be, tag)
    ck.finish()


if __name__ == "__main__":
    main()
