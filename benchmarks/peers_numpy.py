"""Plain array slicing: what a user writes before reaching for a compiler.

Written against the array API that NumPy, CuPy and PyTorch share, so the GPU suite runs the
same code as its CuPy-slicing and PyTorch-eager peers.
"""

from __future__ import annotations

import numpy as np

from .harness import Impl
from .workloads import G0, G1, GrayScott, Heat


class Arrays:
    """How to make device arrays and bring them back: NumPy by default."""

    name = "numpy"

    def device(self, a: np.ndarray):
        return a

    def host(self, a) -> np.ndarray:
        return np.asarray(a)

    def padded(self, a: np.ndarray):
        p = np.zeros((a.shape[0] + 2, a.shape[1] + 2), dtype=a.dtype)
        p[1:-1, 1:-1] = a
        return self.device(p)

    def zeros_like(self, a):
        return np.zeros_like(a)


NUMPY = Arrays()


def _dirichlet_ghosts(u: np.ndarray) -> None:
    u[0, 1:-1] = G0 * u[1, 1:-1] + G1 * u[2, 1:-1]
    u[-1, 1:-1] = G0 * u[-2, 1:-1] + G1 * u[-3, 1:-1]
    u[1:-1, 0] = G0 * u[1:-1, 1] + G1 * u[1:-1, 2]
    u[1:-1, -1] = G0 * u[1:-1, -2] + G1 * u[1:-1, -3]


def _periodic_ghosts(u: np.ndarray) -> None:
    u[0, 1:-1] = u[-2, 1:-1]
    u[-1, 1:-1] = u[1, 1:-1]
    u[1:-1, 0] = u[1:-1, -2]
    u[1:-1, -1] = u[1:-1, 1]


def _lap_sum(u: np.ndarray) -> np.ndarray:
    """h^2 times the 5-point Laplacian at the interior of a padded array."""
    return u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]


def heat(case: Heat, xp: Arrays = NUMPY, dtype=np.float64) -> Impl:
    c = float(case.c)

    def setup():
        u = xp.padded(case.initial(dtype)["u"])
        return u, xp.zeros_like(u)

    def run(state, steps):
        u, w = state
        for _ in range(steps):
            _dirichlet_ghosts(u)
            w[1:-1, 1:-1] = u[1:-1, 1:-1] + c * _lap_sum(u)
            u, w = w, u
        return u, w

    return Impl(xp.name, setup, run, lambda s: {"u": xp.host(s[0][1:-1, 1:-1])})


def gray_scott(case: GrayScott, xp: Arrays = NUMPY, dtype=np.float64) -> Impl:
    cu, cv = float(case.du / case.h**2), float(case.dv / case.h**2)
    f, fk, dt = case.f, case.f + case.k, case.dt

    def rhs(u, v):
        _periodic_ghosts(u)
        _periodic_ghosts(v)
        ui, vi = u[1:-1, 1:-1], v[1:-1, 1:-1]
        uvv = ui * vi * vi
        return cu * _lap_sum(u) - uvv + f * (1.0 - ui), cv * _lap_sum(v) + uvv - fk * vi

    def setup():
        init = case.initial(dtype)
        return xp.padded(init["u"]), xp.padded(init["v"])

    def run(state, steps):
        u, v = state
        yu, yv = xp.zeros_like(u), xp.zeros_like(v)
        ui, vi = u[1:-1, 1:-1], v[1:-1, 1:-1]
        for _ in range(steps):
            k1u, k1v = rhs(u, v)
            yu[1:-1, 1:-1] = ui + 0.5 * dt * k1u
            yv[1:-1, 1:-1] = vi + 0.5 * dt * k1v
            k2u, k2v = rhs(yu, yv)
            yu[1:-1, 1:-1] = ui + 0.5 * dt * k2u
            yv[1:-1, 1:-1] = vi + 0.5 * dt * k2v
            k3u, k3v = rhs(yu, yv)
            yu[1:-1, 1:-1] = ui + dt * k3u
            yv[1:-1, 1:-1] = vi + dt * k3v
            k4u, k4v = rhs(yu, yv)
            ui += dt / 6.0 * (k1u + 2.0 * (k2u + k3u) + k4u)
            vi += dt / 6.0 * (k1v + 2.0 * (k2v + k3v) + k4v)
        return u, v

    return Impl(
        xp.name,
        setup,
        run,
        lambda s: {"u": xp.host(s[0][1:-1, 1:-1]), "v": xp.host(s[1][1:-1, 1:-1])},
    )
