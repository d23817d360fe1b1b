"""Devito (OpenMP backend, float64): the established stencil compiler.

Both problems live on an (n + 2)^2 Devito grid whose outer layer holds the ghost cells, so
Devito computes exactly what the other implementations compute. ``DEVITO_LANGUAGE=openmp``
and ``DEVITO_LOGGING=ERROR`` must be in the environment before Devito is imported
(``benchmarks.__main__`` sets them).
"""

from __future__ import annotations

import os

import numpy as np

from .harness import Impl, Unavailable
from .workloads import G0, G1, GrayScott, Heat


def _devito():
    os.environ.setdefault("DEVITO_LANGUAGE", "openmp")
    os.environ.setdefault("DEVITO_LOGGING", "ERROR")
    try:
        import devito
    except ImportError as exc:
        raise Unavailable(f"devito is not importable ({exc})") from exc
    return devito


def _grid(dv, n: int, h: float):
    # Grid points are the n cell centres plus one ghost on each side, spacing h.
    return dv.Grid(shape=(n + 2, n + 2), extent=((n + 1) * h, (n + 1) * h), dtype=np.float64)


def _lap_sum(f, x, y, i=None):
    """h^2 times the 5-point Laplacian of ``f`` (``i`` indexes time for TimeFunctions)."""
    at = (lambda a, b: f[i, a, b]) if i is not None else (lambda a, b: f[a, b])
    return at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4 * at(x, y)


def _ghosts(f, n, x, y, periodic, i=None, **kw):
    """Ghost equations: periodic wrap, or u = 0 on the faces (ritz's quadratic rule)."""
    dv = _devito()
    at = (lambda a, b: f[i, a, b]) if i is not None else (lambda a, b: f[a, b])
    dst = ((0, y), (n + 1, y), (x, 0), (x, n + 1))
    if periodic:
        src = ((n, y), (1, y), (x, n), (x, 1))
        return [dv.Eq(at(*d), at(*s), **kw) for d, s in zip(dst, src, strict=True)]
    first = ((1, y), (n, y), (x, 1), (x, n))
    second = ((2, y), (n - 1, y), (x, 2), (x, n - 1))
    return [
        dv.Eq(at(*d), G0 * at(*a) + G1 * at(*b), **kw)
        for d, a, b in zip(dst, first, second, strict=True)
    ]


def heat(case: Heat) -> Impl:
    dv = _devito()
    n = case.n
    grid = _grid(dv, n, case.h)
    x, y = grid.dimensions
    t = grid.stepping_dim
    u = dv.TimeFunction(name="u", grid=grid, space_order=2)
    c = dv.Constant(name="c", value=case.c, dtype=np.float64)
    update = dv.Eq(u[t + 1, x, y], u[t, x, y] + c * _lap_sum(u, x, y, t), subdomain=grid.interior)
    op = dv.Operator([*_ghosts(u, n, x, y, False, t), update])
    init = case.initial()["u"]
    state = {"t": 0}

    def setup():
        u.data[:] = 0.0
        u.data[0, 1:-1, 1:-1] = init
        return state

    def run(s, steps):
        op.apply(time_m=0, time_M=steps - 1)
        s["t"] = steps
        return s

    def fields(s):
        return {"u": np.array(u.data[s["t"] % 2, 1:-1, 1:-1])}

    return Impl("devito", setup, run, fields, note=f"devito {dv.__version__}, openmp")


def gray_scott(case: GrayScott) -> Impl:
    dv = _devito()
    n, dt = case.n, case.dt
    grid = _grid(dv, n, case.h)
    x, y = grid.dimensions
    t = grid.stepping_dim
    u = dv.TimeFunction(name="u", grid=grid, space_order=2)
    v = dv.TimeFunction(name="v", grid=grid, space_order=2)
    # One Function per stage input: overwriting a stage input that neighbours still read
    # would be a write-after-read hazard inside one loop nest.
    stage = {
        nm: dv.Function(name=nm, grid=grid, space_order=2)
        for nm in (
            "y2u",
            "y2v",
            "y3u",
            "y3v",
            "y4u",
            "y4v",
            "k1u",
            "k1v",
            "k2u",
            "k2v",
            "k3u",
            "k3v",
        )
    }
    const = {
        nm: dv.Constant(name=nm, value=val, dtype=np.float64)
        for nm, val in (
            ("cu", case.du / case.h**2),
            ("cv", case.dv / case.h**2),
            ("F", case.f),
            ("Fk", case.f + case.k),
            ("dts", dt),
        )
    }
    cu, cv, f, fk, dts = (const[k] for k in ("cu", "cv", "F", "Fk", "dts"))
    # Stage Functions have no time index: without implicit_dims Devito hoists their
    # equations out of the time loop.
    inner = {"subdomain": grid.interior, "implicit_dims": (grid.time_dim,)}

    def rhs(a, b, i=None):
        a0 = a[i, x, y] if i is not None else a[x, y]
        b0 = b[i, x, y] if i is not None else b[x, y]
        uvv = a0 * b0 * b0
        return (
            cu * _lap_sum(a, x, y, i) - uvv + f * (1 - a0),
            cv * _lap_sum(b, x, y, i) + uvv - fk * b0,
        )

    u0, v0 = u[t, x, y], v[t, x, y]
    tdim = {"implicit_dims": (grid.time_dim,)}
    eqs = [*_ghosts(u, n, x, y, True, t), *_ghosts(v, n, x, y, True, t)]
    ks, src = [], (u, v, t)
    for s, a in enumerate((0.5, 0.5, 1.0)):
        ku, kv = stage[f"k{s + 1}u"], stage[f"k{s + 1}v"]
        yu, yv = stage[f"y{s + 2}u"], stage[f"y{s + 2}v"]
        fu, fv = rhs(*src)
        eqs += [dv.Eq(ku, fu, **inner), dv.Eq(kv, fv, **inner)]
        eqs += [dv.Eq(yu, u0 + a * dts * ku, **inner), dv.Eq(yv, v0 + a * dts * kv, **inner)]
        eqs += [*_ghosts(yu, n, x, y, True, **tdim), *_ghosts(yv, n, x, y, True, **tdim)]
        ks.append((ku, kv))
        src = (yu, yv, None)
    f4u, f4v = rhs(yu, yv)
    (k1u, k1v), (k2u, k2v), (k3u, k3v) = ks
    eqs += [
        dv.Eq(u[t + 1, x, y], u0 + dts / 6 * (k1u + 2 * (k2u + k3u) + f4u), **inner),
        dv.Eq(v[t + 1, x, y], v0 + dts / 6 * (k1v + 2 * (k2v + k3v) + f4v), **inner),
    ]
    op = dv.Operator(eqs)
    init = case.initial()
    state = {"t": 0}

    def setup():
        for fn, nm in ((u, "u"), (v, "v")):
            fn.data[:] = 0.0
            fn.data[0, 1:-1, 1:-1] = init[nm]
        return state

    def run(s, steps):
        op.apply(time_m=0, time_M=steps - 1)
        s["t"] = steps
        return s

    def fields(s):
        i = s["t"] % 2
        return {"u": np.array(u.data[i, 1:-1, 1:-1]), "v": np.array(v.data[i, 1:-1, 1:-1])}

    return Impl("devito", setup, run, fields, note=f"devito {dv.__version__}, openmp, rk4")
