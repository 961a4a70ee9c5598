"""pl_ctypes — load libpeerless.so for the PyTorch parity tests.

Tests call library functions directly through ctypes and compare with
PyTorch. PEERLESS_LIB (set by CTest) names the shared library.
"""
import ctypes
import os
import sys

import numpy as np

LIB_PATH = os.environ.get("PEERLESS_LIB", "")
if not LIB_PATH or not os.path.exists(LIB_PATH):
    sys.exit("PEERLESS_LIB must name the built libpeerless.so (run through ctest)")
lib = ctypes.CDLL(LIB_PATH)

c_float_p = ctypes.POINTER(ctypes.c_float)
c_int32_p = ctypes.POINTER(ctypes.c_int32)


def fptr(a):
    """Pointer to a C-contiguous float32 numpy array (None -> NULL)."""
    if a is None:
        return None
    assert a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(c_float_p)


def rel_err(got, want):
    got = np.asarray(got, dtype=np.float64).ravel()
    want = np.asarray(want, dtype=np.float64).ravel()
    den = max(np.linalg.norm(want), 1e-30)
    return float(np.linalg.norm(got - want) / den)


class Checker:
    """Counts checks; finish() prints 'N passed, M failed' and exits nonzero on failure."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, file=sys.stderr)

    def close(self, got, want, tol, what):
        e = rel_err(got, want)
        self.check(e <= tol, f"{what}: relative error {e:.3g} > {tol:g}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)
