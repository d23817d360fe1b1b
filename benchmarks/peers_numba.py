"""Hand-written ``@njit(parallel=True)`` kernels: the bar a generated kernel must clear.

Written the way a careful Numba user would: ``prange`` over rows, a contiguous inner loop
that LLVM vectorises, and the whole time loop inside compiled code.
"""

from __future__ import annotations

import numpy as np

from .harness import Impl, Unavailable
from .workloads import G0, G1, GrayScott, Heat, padded

try:
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a runtime dependency of ritz
    njit = prange = None


def _kernels():
    if njit is None:
        raise Unavailable("numba is not importable")
    return _build()


_CACHE: dict[str, object] = {}


def _build():
    if _CACHE:
        return _CACHE

    @njit(parallel=True)
    def heat_run(u, w, c, steps):
        n0, n1 = u.shape[0] - 2, u.shape[1] - 2
        for _ in range(steps):
            for j in range(1, n1 + 1):
                u[0, j] = G0 * u[1, j] + G1 * u[2, j]
                u[n0 + 1, j] = G0 * u[n0, j] + G1 * u[n0 - 1, j]
            for i in range(1, n0 + 1):
                u[i, 0] = G0 * u[i, 1] + G1 * u[i, 2]
                u[i, n1 + 1] = G0 * u[i, n1] + G1 * u[i, n1 - 1]
            for i in prange(1, n0 + 1):
                for j in range(1, n1 + 1):
                    w[i, j] = u[i, j] + c * (
                        u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1] - 4.0 * u[i, j]
                    )
            u, w = w, u
        return u, w

    @njit
    def periodic(a):
        n0, n1 = a.shape[0] - 2, a.shape[1] - 2
        for j in range(1, n1 + 1):
            a[0, j] = a[n0, j]
            a[n0 + 1, j] = a[1, j]
        for i in range(1, n0 + 1):
            a[i, 0] = a[i, n1]
            a[i, n1 + 1] = a[i, 1]

    @njit(parallel=True)
    def gs_stage(yu, yv, u, v, au, av, ou, ov, cu, cv, f, fk, a, b, dt, stage):
        # k = f(y); acc (=) + b*k; out = u + dt*a*k, or u + dt*acc at the last stage.
        n0, n1 = u.shape[0] - 2, u.shape[1] - 2
        for i in prange(1, n0 + 1):
            for j in range(1, n1 + 1):
                y0, z0 = yu[i, j], yv[i, j]
                uvv = y0 * z0 * z0
                ku = (
                    cu * (yu[i - 1, j] + yu[i + 1, j] + yu[i, j - 1] + yu[i, j + 1] - 4.0 * y0)
                    - uvv
                    + f * (1.0 - y0)
                )
                kv = (
                    cv * (yv[i - 1, j] + yv[i + 1, j] + yv[i, j - 1] + yv[i, j + 1] - 4.0 * z0)
                    + uvv
                    - fk * z0
                )
                if stage == 0:
                    au[i, j] = b * ku
                    av[i, j] = b * kv
                    ou[i, j] = u[i, j] + a * dt * ku
                    ov[i, j] = v[i, j] + a * dt * kv
                elif stage < 3:
                    au[i, j] += b * ku
                    av[i, j] += b * kv
                    ou[i, j] = u[i, j] + a * dt * ku
                    ov[i, j] = v[i, j] + a * dt * kv
                else:
                    ou[i, j] = u[i, j] + dt * (au[i, j] + b * ku)
                    ov[i, j] = v[i, j] + dt * (av[i, j] + b * kv)

    @njit
    def gs_run(u, v, s1u, s1v, s2u, s2v, au, av, cu, cv, f, fk, dt, steps):
        for _ in range(steps):
            periodic(u)
            periodic(v)
            gs_stage(u, v, u, v, au, av, s1u, s1v, cu, cv, f, fk, 0.5, 1.0 / 6.0, dt, 0)
            periodic(s1u)
            periodic(s1v)
            gs_stage(s1u, s1v, u, v, au, av, s2u, s2v, cu, cv, f, fk, 0.5, 1.0 / 3.0, dt, 1)
            periodic(s2u)
            periodic(s2v)
            gs_stage(s2u, s2v, u, v, au, av, s1u, s1v, cu, cv, f, fk, 1.0, 1.0 / 3.0, dt, 2)
            periodic(s1u)
            periodic(s1v)
            gs_stage(s1u, s1v, u, v, au, av, s2u, s2v, cu, cv, f, fk, 0.0, 1.0 / 6.0, dt, 3)
            u, s2u = s2u, u
            v, s2v = s2v, v
        return u, v, s1u, s1v, s2u, s2v, au, av

    _CACHE.update(heat_run=heat_run, gs_run=gs_run)
    return _CACHE


def heat(case: Heat) -> Impl:
    run_kernel = _kernels()["heat_run"]

    def setup():
        u = padded(case.initial()["u"])
        return u, np.zeros_like(u)

    def run(state, steps):
        return run_kernel(state[0], state[1], case.c, steps)

    return Impl("numba (hand)", setup, run, lambda s: {"u": s[0][1:-1, 1:-1]})


def gray_scott(case: GrayScott) -> Impl:
    run_kernel = _kernels()["gs_run"]
    cu, cv = case.du / case.h**2, case.dv / case.h**2

    def setup():
        init = case.initial()
        u, v = padded(init["u"]), padded(init["v"])
        return (u, v, *(np.zeros_like(u) for _ in range(6)))

    def run(state, steps):
        return run_kernel(*state, cu, cv, case.f, case.f + case.k, case.dt, steps)

    return Impl(
        "numba (hand)", setup, run, lambda s: {"u": s[0][1:-1, 1:-1], "v": s[1][1:-1, 1:-1]}
    )
