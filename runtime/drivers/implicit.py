"""Implicit time stepping (``scheme = cn`` or ``imex``): each step runs the compiled explicit
half, then solves the compiled residual for the new state by Newton's method.

The generated module has the entries ``explicit`` (the right-hand side b of the step, at t;
imex also has ``start``, the same without the previous step's N, for a first step or a new dt),
``residual`` (w - theta * dt * L(w) - b, at t + dt) and ``jvp`` (its derived Jacobian-vector
product); see compiler/passes/theta.py. Where the Jacobian depends on neither the state nor the
time (every imex problem, and cn on a linear one) it is assembled and factorised once per step
size and reused, so a step costs two kernel launches, one triangular solve and a residual check;
elsewhere the last factorisation is reused until it stops contracting (chord Newton).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .integrators import GridSpec, Simulation, checked_advance
from .solvers import SteadyProblem, newton

_FACTOR_CACHE = 4  # step sizes whose factorisations are kept (output intervals differ slightly)
REFRESH = 0.1  # a stale Jacobian is assembled again when a Newton step gains less than 10x


class ThetaSimulation(Simulation):
    """A Simulation whose ``advance`` takes implicit steps; same interface as the explicit one."""

    def __init__(
        self,
        module: Any,
        grid: GridSpec,
        params: dict[str, float],
        t0: float,
        dt: float,
        backend: Any,
        tol: float,
        maxiter: int,
    ) -> None:
        super().__init__(module, grid, params, t0, dt, backend)
        meta = self.plan["meta"]
        self.tol = tol
        self.maxiter = maxiter
        self.constant_jacobian = bool(meta.get("constant_jacobian", False))
        self.scheme = str(meta.get("scheme"))
        self._factors: OrderedDict[float, dict] = OrderedDict()
        self.newton_steps = 0
        # imex keeps N of the previous step: valid only for the same dt (None: start afresh)
        self._history_dt: float | None = None
        self._has_start = hasattr(module, "start")

    @checked_advance
    def advance(self, nsteps: int, dt: float | None = None) -> None:
        from threadpoolctl import threadpool_limits

        dt = self.dt if dt is None else float(dt)
        # one thread pool at a time: BLAS threads spinning next to Numba's slow both down
        with threadpool_limits(limits=1, user_api="blas"):
            for _ in range(max(0, nsteps)):
                self._step(dt)

    def starts_afresh(self, dt: float) -> bool:
        """Whether a step of size ``dt`` runs ``start``: imex with no history of that size."""
        fresh = self._history_dt is None or abs(dt - self._history_dt) > 1e-12 * dt
        return self._has_start and fresh

    def _step(self, dt: float) -> None:
        scalars = self.scalars(self.t, dt)
        half = self.module.start if self.starts_afresh(dt) else self.module.explicit
        half(*self.buffers, *scalars)
        self._history_dt = dt
        problem = SteadyProblem(self, scalars)
        # the factorised Jacobian is kept per step size: for good where it is constant, else
        # while it still contracts (chord Newton: a Jacobian from an earlier state, refreshed
        # when a Newton step reduces the residual by less than REFRESH)
        factors = self._factors.setdefault(dt, {})
        self._factors.move_to_end(dt)
        while len(self._factors) > _FACTOR_CACHE:
            self._factors.popitem(last=False)
        _, report = newton(
            problem,
            self.tol,
            self.maxiter,
            # rounding floor: the residual of the exact step is not below ~eps * ||u||
            floor=64 * float(np.finfo(self.plan["dtype"]).eps),
            factors=factors,
            refresh=None if self.constant_jacobian else REFRESH,
            what=f"the Newton solve of the {self.scheme} step from t = {self.t:.6g}",
        )
        # the last residual evaluation left the new state in the field buffers
        self.newton_steps += report.newton_steps
        self.t += dt
        self.steps_taken += 1
