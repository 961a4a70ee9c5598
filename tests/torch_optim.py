"""Optimizers and ReduceLROnPlateau against torch.optim (PyTorch 1.13).

Each optimizer/option combination runs 20 steps on the same random float32
parameter vector with a fresh random gradient per step, halving lr after
step 10, through libpeerless (ctypes) and through torch.optim (foreach=False).
Parameters and every state vector must agree to relative error <= 1e-6.
The plateau scheduler must give torch's lr after every step; the per-step
schedules (cosine = CosineAnnealingLR, onecycle = OneCycleLR with momentum
cycling) must give torch's lr and momentum/beta1 before every update and the
same parameters after the run.
"""
import ctypes
import math

import numpy as np
import torch

from pl_ctypes import Checker, fptr, lib

c_float_p = ctypes.POINTER(ctypes.c_float)


class Err(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 512)]


class PlateauConfig(ctypes.Structure):
    _fields_ = [("factor", ctypes.c_double), ("patience", ctypes.c_int),
                ("threshold", ctypes.c_double), ("threshold_abs", ctypes.c_int),
                ("cooldown", ctypes.c_int), ("min_lr", ctypes.c_double),
                ("eps", ctypes.c_double)]


class Plateau(ctypes.Structure):
    _fields_ = [("cfg", PlateauConfig), ("lr", ctypes.c_double), ("best", ctypes.c_double),
                ("num_bad_epochs", ctypes.c_int), ("cooldown_counter", ctypes.c_int),
                ("last_epoch", ctypes.c_int64)]


class SchedConfig(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("total_steps", ctypes.c_int64), ("lr", ctypes.c_double),
                ("min_lr", ctypes.c_double), ("pct_start", ctypes.c_double),
                ("div_factor", ctypes.c_double), ("final_div_factor", ctypes.c_double),
                ("cycle_momentum", ctypes.c_int), ("base_momentum", ctypes.c_double),
                ("max_momentum", ctypes.c_double)]


ERR = ctypes.POINTER(Err)
lib.pl_optim_kind_parse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ERR]
lib.pl_optim_config_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ERR]
lib.pl_optim_config_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_double, ERR]
lib.pl_optim_create.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
                                ctypes.c_size_t, ERR]
lib.pl_optim_destroy.argtypes = [ctypes.c_void_p]
lib.pl_optim_step.argtypes = [ctypes.c_void_p, c_float_p, c_float_p, ctypes.c_size_t, ERR]
lib.pl_optim_set_lr.argtypes = [ctypes.c_void_p, ctypes.c_double, ERR]
lib.pl_optim_steps.argtypes = [ctypes.c_void_p]
lib.pl_optim_steps.restype = ctypes.c_int64
lib.pl_optim_state_find.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.pl_optim_state_find.restype = c_float_p
lib.pl_plateau_defaults.restype = PlateauConfig
lib.pl_plateau_init.argtypes = [ctypes.POINTER(Plateau), ctypes.POINTER(PlateauConfig),
                                ctypes.c_double, ERR]
lib.pl_plateau_step.argtypes = [ctypes.POINTER(Plateau), ctypes.c_double,
                                ctypes.POINTER(ctypes.c_int)]
lib.pl_plateau_step.restype = ctypes.c_double
lib.pl_sched_kind_parse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ERR]
lib.pl_sched_defaults.argtypes = [ctypes.c_int, ctypes.c_double]
lib.pl_sched_defaults.restype = SchedConfig
lib.pl_sched_prepare.argtypes = [ctypes.POINTER(SchedConfig), ctypes.c_void_p, ERR]
lib.pl_sched_apply.argtypes = [ctypes.POINTER(SchedConfig), ctypes.c_int64, ctypes.c_void_p, ERR]
lib.pl_optim_lr.argtypes = [ctypes.c_void_p]
lib.pl_optim_lr.restype = ctypes.c_double
lib.pl_optim_config_of.argtypes = [ctypes.c_void_p]
lib.pl_optim_config_of.restype = ctypes.c_void_p

TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
         "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}

# (kind, torch keyword arguments); lr is always given explicitly.
CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=5e-4)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("sgd", dict(lr=0.1, weight_decay=1e-3)),
    ("adam", dict(lr=1e-3)),
    ("adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
    ("adam", dict(lr=1e-3, amsgrad=True)),
    ("adam", dict(lr=1e-3, weight_decay=1e-2)),
    ("adam", dict(lr=1e-3, weight_decay=1e-2, amsgrad=True)),
    ("adamw", dict(lr=1e-3)),
    ("adamw", dict(lr=1e-2, weight_decay=0.1)),
    ("adamw", dict(lr=1e-3, weight_decay=1e-2, amsgrad=True, betas=(0.85, 0.995))),
    ("rmsprop", dict(lr=1e-2)),
    ("rmsprop", dict(lr=1e-3, alpha=0.9, eps=1e-6)),
    ("rmsprop", dict(lr=1e-3, momentum=0.9)),
    ("rmsprop", dict(lr=1e-3, centered=True)),
    ("rmsprop", dict(lr=1e-3, centered=True, momentum=0.9, weight_decay=1e-2)),
    ("adagrad", dict(lr=1e-2)),
    ("adagrad", dict(lr=1e-1, lr_decay=0.05)),
    ("adagrad", dict(lr=1e-2, initial_accumulator_value=0.1)),
    ("adagrad", dict(lr=1e-2, lr_decay=0.01, initial_accumulator_value=0.5,
                     weight_decay=1e-2, eps=1e-8)),
]

STATE_NAMES = {"sgd": ["momentum_buffer"], "adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
               "adamw": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
               "rmsprop": ["square_avg", "momentum_buffer", "grad_avg"], "adagrad": ["sum"]}

STEPS = 20
N = 50_000  # above the library's threshold for the OpenMP parallel loop
TOL = 1e-6


def call(rc, err, what):
    if rc != 0:
        raise RuntimeError(f"{what}: status {rc}: {err.msg.decode()}")


def make_optim(kind, kwargs, n):
    err = Err()
    k = ctypes.c_int()
    call(lib.pl_optim_kind_parse(kind.encode(), ctypes.byref(k), ctypes.byref(err)), err, kind)
    cfg = ctypes.create_string_buffer(4096)  # larger than pl_optim_config
    call(lib.pl_optim_config_init(cfg, k.value, ctypes.byref(err)), err, "config_init")
    for key, val in kwargs.items():
        pairs = [("beta1", val[0]), ("beta2", val[1])] if key == "betas" else [(key, val)]
        for name, v in pairs:
            call(lib.pl_optim_config_set(cfg, name.encode(), float(v), ctypes.byref(err)),
                 err, name)
    opt = ctypes.c_void_p()
    call(lib.pl_optim_create(ctypes.byref(opt), cfg, n, ctypes.byref(err)), err, "create")
    return opt


def run_case(chk, kind, kwargs, seed):
    what = f"{kind}{kwargs}"
    gen = torch.Generator().manual_seed(seed)
    p0 = torch.randn(N, generator=gen, dtype=torch.float32)
    grads = [torch.randn(N, generator=gen, dtype=torch.float32) * (0.1 + 0.2 * s)
             for s in range(STEPS)]

    tp = torch.nn.Parameter(p0.clone())
    topt = TORCH[kind]([tp], foreach=False, **kwargs)
    ours = p0.numpy().copy()
    opt = make_optim(kind, kwargs, N)
    err = Err()
    try:
        for s in range(STEPS):
            if s == STEPS // 2:
                lr = kwargs["lr"] * 0.5
                topt.param_groups[0]["lr"] = lr
                call(lib.pl_optim_set_lr(opt, lr, ctypes.byref(err)), err, "set_lr")
            tp.grad = grads[s].clone()
            topt.step()
            g = grads[s].numpy().copy()
            call(lib.pl_optim_step(opt, fptr(ours), fptr(g), N, ctypes.byref(err)), err, "step")
        chk.close(ours, tp.detach().numpy(), TOL, f"{what}: params after {STEPS} steps")
        chk.check(lib.pl_optim_steps(opt) == STEPS, f"{what}: step count")
        check_state(chk, opt, topt.state[tp], kind, what)
    finally:
        lib.pl_optim_destroy(opt)


def check_state(chk, opt, tstate, kind, what):
    for name in STATE_NAMES[kind]:
        ptr = lib.pl_optim_state_find(opt, name.encode())
        want = tstate.get(name)
        chk.check(bool(ptr) == (want is not None),
                  f"{what}: state {name} present in ours={bool(ptr)} torch={want is not None}")
        if ptr and want is not None:
            got = np.ctypeslib.as_array(ptr, shape=(N,))
            chk.close(got, want.numpy(), TOL, f"{what}: state {name}")


def plateau_torch(kwargs, metrics, lr0):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", **kwargs)
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def plateau_ours(kwargs, metrics, lr0):
    cfg = lib.pl_plateau_defaults()
    for key, val in kwargs.items():
        if key == "threshold_mode":
            cfg.threshold_abs = 1 if val == "abs" else 0
        else:
            setattr(cfg, key, val)
    st, err = Plateau(), Err()
    call(lib.pl_plateau_init(ctypes.byref(st), ctypes.byref(cfg), lr0, ctypes.byref(err)),
         err, "plateau_init")
    out = []
    for m in metrics:
        red = ctypes.c_int(-1)
        out.append((lib.pl_plateau_step(ctypes.byref(st), m, ctypes.byref(red)), red.value))
    return out


def plateau_metrics():
    """Improving, flat (exactly and within the relative threshold), noisy, NaN."""
    seq = [2.0, 1.5, 1.2, 1.0]
    seq += [1.0] * 12                         # exact plateau: reduction after patience
    seq += [1.0 - 5e-5 * i for i in range(12)]  # improvements below threshold 1e-4 rel
    seq += [0.9, 0.8, 0.85, 0.95, 0.81, 0.82, 0.83]
    seq += [0.5 + 0.01 * math.sin(i) for i in range(40)]
    seq += [float("nan"), 0.49, 0.49, 0.49]
    seq += [0.3] * 60                         # long plateau: lr reaches min_lr
    return seq


def test_plateau(chk):
    metrics = plateau_metrics()
    configs = [
        {},
        dict(patience=2),
        dict(patience=3, cooldown=2, factor=0.5),
        dict(patience=1, threshold=0.05, threshold_mode="abs"),
        dict(patience=0, factor=0.3, min_lr=1e-4),
        dict(patience=2, factor=0.5, min_lr=0.0249, eps=1e-3),
        dict(patience=4, threshold=0.0, cooldown=1),
    ]
    for kwargs in configs:
        want = plateau_torch(kwargs, metrics, 0.1)
        got = plateau_ours(kwargs, metrics, 0.1)
        prev = 0.1
        bad = []
        for i, ((lr, red), wlr) in enumerate(zip(got, want)):
            ok_lr = abs(lr - wlr) <= 1e-12 * max(abs(wlr), 1e-30)
            ok_red = red == (1 if wlr != prev else 0)
            if not (ok_lr and ok_red):
                bad.append(f"step {i + 1}: lr {lr:.6g} reduced={red}, torch lr {wlr:.6g}")
            prev = wlr
        chk.check(not bad, f"plateau {kwargs}: " + "; ".join(bad[:3]))
        chk.check(len(set(want)) > 1, f"plateau {kwargs}: sequence never reduces lr (weak test)")


SCHED_CASES = [
    ("cosine", "sgd", {"lr": 0.1, "momentum": 0.9}, {"min_lr": 0.001}),
    ("cosine", "adam", {"lr": 0.01}, {}),
    ("onecycle", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}, {}),
    ("onecycle", "sgd", {"lr": 0.05}, {}),          # momentum 0: torch turns it on (0.95)
    ("onecycle", "adam", {"lr": 0.003}, {}),        # cycles beta1
    ("onecycle", "adamw", {"lr": 0.003, "weight_decay": 0.05}, {"pct_start": 0.25}),
    ("onecycle", "rmsprop", {"lr": 0.001}, {}),
]
SCHED_STEPS = 37


def torch_sched(kind, topt, sargs):
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(topt, SCHED_STEPS, eta_min=sargs.get("min_lr", 0))
    return torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=topt.param_groups[0]["lr"],
                                               total_steps=SCHED_STEPS, **sargs)


def test_schedules(chk):
    for i, (skind, kind, kwargs, sargs) in enumerate(SCHED_CASES):
        what = f"{skind} {kind}{kwargs}{sargs}"
        gen = torch.Generator().manual_seed(2000 + i)
        p0 = torch.randn(N, generator=gen, dtype=torch.float32)
        tp = torch.nn.Parameter(p0.clone())
        topt = TORCH[kind]([tp], foreach=False, **kwargs)
        tsched = torch_sched(skind, topt, sargs)
        err = Err()
        k = ctypes.c_int()
        call(lib.pl_sched_kind_parse(skind.encode(), ctypes.byref(k), ctypes.byref(err)), err, skind)
        sc = lib.pl_sched_defaults(k.value, kwargs["lr"])
        sc.total_steps = SCHED_STEPS
        for key, val in sargs.items():
            setattr(sc, key, val)
        ok = ctypes.c_int()
        call(lib.pl_optim_kind_parse(kind.encode(), ctypes.byref(ok), ctypes.byref(err)), err, kind)
        cfg = ctypes.create_string_buffer(4096)
        call(lib.pl_optim_config_init(cfg, ok.value, ctypes.byref(err)), err, "config_init")
        for key, val in kwargs.items():
            call(lib.pl_optim_config_set(cfg, key.encode(), float(val), ctypes.byref(err)), err, key)
        call(lib.pl_sched_prepare(ctypes.byref(sc), cfg, ctypes.byref(err)), err, "sched_prepare")
        opt = ctypes.c_void_p()
        call(lib.pl_optim_create(ctypes.byref(opt), cfg, N, ctypes.byref(err)), err, "create")
        ours = p0.numpy().copy()
        lrs, bad = set(), []
        try:
            for s in range(SCHED_STEPS):
                call(lib.pl_sched_apply(ctypes.byref(sc), s, opt, ctypes.byref(err)), err, "apply")
                want = topt.param_groups[0]["lr"]
                got = lib.pl_optim_lr(opt)
                lrs.add(round(want, 12))
                if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-15):
                    bad.append(f"step {s}: lr {got} != torch {want}")
                g = torch.randn(N, generator=gen, dtype=torch.float32)
                tp.grad = g.clone()
                topt.step()
                tsched.step()
                gg = g.numpy().copy()
                call(lib.pl_optim_step(opt, fptr(ours), fptr(gg), N, ctypes.byref(err)), err, "step")
            chk.check(not bad, f"{what}: " + "; ".join(bad[:3]))
            chk.check(len(lrs) > SCHED_STEPS // 2, f"{what}: lr barely changes (weak test)")
            chk.close(ours, tp.detach().numpy(), 1e-5, f"{what}: params after {SCHED_STEPS} steps")
        finally:
            lib.pl_optim_destroy(opt)
    # adagrad has no momentum: onecycle with momentum cycling is refused, as torch refuses it
    err = Err()
    sc = lib.pl_sched_defaults(3, 0.01)
    sc.total_steps = 10
    cfg = ctypes.create_string_buffer(4096)
    call(lib.pl_optim_config_init(cfg, 4, ctypes.byref(err)), err, "config_init")
    rc = lib.pl_sched_prepare(ctypes.byref(sc), cfg, ctypes.byref(err))
    chk.check(rc != 0 and b"momentum" in err.msg, f"onecycle + adagrad refused: rc {rc} {err.msg!r}")


def main():
    torch.set_num_threads(1)
    chk = Checker()
    for i, (kind, kwargs) in enumerate(CASES):
        run_case(chk, kind, kwargs, seed=1000 + i)
    test_plateau(chk)
    test_schedules(chk)
    chk.finish()


if __name__ == "__main__":
    main()
