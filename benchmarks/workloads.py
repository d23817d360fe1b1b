"""The benchmarked problems: sizes, parameters, initial states and the ritz programs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# u = 0 on a face, imposed the way ritz does at order 2: the quadratic through the face value
# and the first two cell centres, evaluated at the ghost centre, gives
# ghost = G0 * (first cell) + G1 * (second cell).
G0, G1 = -2.0, 1.0 / 3.0


@dataclass(frozen=True)
class Heat:
    """2-D heat, explicit Euler, 5-point Laplacian, u = 0 on every face (cell-centred)."""

    n: int
    steps: int
    dt: float = 1e-8
    nu: float = 1.0
    length: float = 1.0

    @property
    def h(self) -> float:
        return self.length / self.n

    @property
    def c(self) -> float:
        """nu * dt / h^2, the one coefficient of the Euler update."""
        return self.nu * self.dt / self.h**2

    def initial(self, dtype=np.float64) -> dict[str, np.ndarray]:
        x = (np.arange(self.n) + 0.5) * self.h
        s = np.sin(np.pi * x)
        return {"u": np.outer(s, s).astype(dtype)}

    def source(self) -> str:
        return HEAT_DSL.format(n=self.n, dt=repr(self.dt))


@dataclass(frozen=True)
class GrayScott:
    """Gray-Scott reaction-diffusion, periodic square, classical RK4 (LANGUAGE.md parameters)."""

    n: int
    steps: int
    # dt = 1.0 (the 256-cell example) is unstable for RK4 at 1024 cells: Du*dt*8/h^2 = 27 > 2.79.
    dt: float = 0.0625
    du: float = 2e-5
    dv: float = 1e-5
    f: float = 0.04
    k: float = 0.06
    length: float = 2.5

    @property
    def h(self) -> float:
        return self.length / self.n

    def initial(self, dtype=np.float64) -> dict[str, np.ndarray]:
        x = (np.arange(self.n) + 0.5) * self.h - 1.25
        g = np.exp(-100.0 * (x[:, None] ** 2 + x[None, :] ** 2))
        return {"u": (1.0 - 0.5 * g).astype(dtype), "v": (0.25 * g).astype(dtype)}

    def source(self) -> str:
        return GRAY_SCOTT_DSL.format(n=self.n, dt=repr(self.dt))


HEAT_DSL = """\
pde heat2d {{
    space x in [0, 1]
    space y in [0, 1]
    time t in [0, 1]
    field u
    param nu = 1
    dt(u) = nu * lap(u)
    boundary u = 0 at all
    initial u = sin(pi * x) * sin(pi * y)
    solve fd(cells = {n}, scheme = euler, dt = {dt})
}}
"""

GRAY_SCOTT_DSL = """\
pde gray_scott {{
    space x in [0, 2.5] periodic
    space y in [0, 2.5] periodic
    time  t in [0, 1000]
    field u, v
    param Du = 2e-5, Dv = 1e-5, F = 0.04, k = 0.06
    dt(u) = Du * lap(u) - u * v^2 + F * (1 - u)
    dt(v) = Dv * lap(v) + u * v^2 - (F + k) * v
    initial u = 1 - 0.5 * exp(-100 * ((x - 1.25)^2 + (y - 1.25)^2))
    initial v = 0.25 * exp(-100 * ((x - 1.25)^2 + (y - 1.25)^2))
    solve fd(cells = {n}, scheme = rk4, dt = {dt})
}}
"""


@dataclass(frozen=True)
class Sizes:
    """One run's problem sizes; ``quick`` is a smoke test, ``full`` the issue's sizes."""

    triad_n: int
    heat: Heat
    gray_scott: GrayScott
    repeats: int


FULL = Sizes(triad_n=1 << 25, heat=Heat(2048, 200), gray_scott=GrayScott(1024, 20), repeats=5)
QUICK = Sizes(triad_n=1 << 24, heat=Heat(256, 50), gray_scott=GrayScott(128, 10), repeats=3)


def padded(a: np.ndarray) -> np.ndarray:
    """Copy of ``a`` with one ghost layer on every side (ghost values left zero)."""
    p = np.zeros((a.shape[0] + 2, a.shape[1] + 2), dtype=a.dtype)
    p[1:-1, 1:-1] = a
    return p
