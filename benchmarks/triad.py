"""STREAM-style triad ``a = b + s*c``: the memory bandwidth a stencil can hope to reach."""

from __future__ import annotations

import time

import numpy as np

from .harness import Row

try:
    from numba import njit, prange
except ImportError:  # pragma: no cover
    njit = prange = None

_KERNEL = []


def _kernel():
    if not _KERNEL:

        @njit(parallel=True)
        def triad(a, b, c, s):
            for i in prange(a.shape[0]):
                a[i] = b[i] + s * c[i]

        _KERNEL.append(triad)
    return _KERNEL[0]


def run(n: int, repeats: int) -> Row:
    """Best-of-``repeats`` triad over ``n`` float64 elements; traffic counts 3 arrays x 8 B."""
    row = Row("triad", "numba prange", points=float(n), bytes=3.0 * 8 * n)
    if njit is None:
        row.note = "skipped: numba is not importable"
        return row
    kernel = _kernel()
    b = np.full(n, 1.0)
    c = np.full(n, 2.0)
    a = np.empty(n)
    kernel(a, b, c, 3.0)  # compile, and touch every page
    best = float("inf")
    for _ in range(max(repeats, 5)):
        t0 = time.perf_counter()
        kernel(a, b, c, 3.0)
        best = min(best, time.perf_counter() - t0)
    row.seconds = best
    row.note = f"{n * 8 / 2**20:.0f} MiB per array"
    if not np.all(a == 7.0):
        row.note += "; WRONG RESULT"
    return row
