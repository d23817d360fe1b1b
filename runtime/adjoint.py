"""Discrete adjoints of explicit time stepping: what ``Solution.vjp`` runs.

The gradient is that of the computed numbers: the transpose of each compiled Runge-Kutta step,
applied from the last step to the first. The states the reverse sweep needs are recomputed from
checkpoints: the forward run keeps one state every K ~ sqrt(N) steps, and each segment of K
steps is recomputed (its states kept) just before its reverse sweep, so memory holds about
2 sqrt(N) states and the work is about two forward solves plus the adjoint steps.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dsl.diagnostics import RuntimeInputError, UnsupportedError
from .drivers.integrators import Simulation

if TYPE_CHECKING:
    from .api import PdeHandle
    from .results import Solution


@dataclass
class Gradient:
    """``params[name]``: d loss / d parameter; ``initial[field]``: d loss / d initial state."""

    params: dict[str, float]
    initial: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Gradient(params={self.params}, initial fields {list(self.initial)})"


def step_schedule(times: np.ndarray, dt: float) -> tuple[list[tuple[float, float]], dict[int, int]]:
    """The steps ``(t_n, dt_n)`` the forward run took between ``times`` (as ``run`` takes them),
    and for each output time after the first, the index of the step that ends there."""
    steps: list[tuple[float, float]] = []
    ends: dict[int, int] = {}
    for k, (ta, tb) in enumerate(itertools.pairwise(times), start=1):
        n = max(1, math.ceil((tb - ta) / dt - 1e-9))
        h = (tb - ta) / n
        steps += [(ta + j * h, h) for j in range(n)]
        ends[len(steps) - 1] = k
    return steps, ends


def _cotangents(
    sol: Solution, given: dict[str, Any], fields: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Cotangents per field as [len(t), *cells] (zeros where none is given)."""
    assert sol.t is not None
    out = {}
    for name, value in given.items():
        if name not in sol.fields:
            raise RuntimeInputError(
                f"vjp got a cotangent for '{name}', which is not a field of the solution",
                hint=f"fields: {', '.join(sol.fields)}",
                code="R513",
            )
        array = np.asarray(value, dtype=float)
        frames = sol.fields[name].shape
        if array.shape == frames[1:]:
            full = np.zeros(frames)
            full[-1] = array
            array = full
        elif array.shape != frames:
            raise RuntimeInputError(
                f"the cotangent of '{name}' has shape {array.shape}; it must match the final "
                f"field {frames[1:]} or every output {frames}",
                hint="give d loss / d u at the final time, or one frame per output time",
                code="R513",
            )
        if not np.all(np.isfinite(array)):
            raise RuntimeInputError(f"the cotangent of '{name}' is not finite", code="R513")
        out[name] = array
    return out


class AdjointRun:
    """The reverse sweep of one explicit solve on the adjoint module (forward step + adjoint
    entries in one kernel group, so both see the same buffers)."""

    def __init__(self, module: Any, sim: Simulation) -> None:
        self.module = module
        self.sim = sim
        self.plan = module.PLAN
        self.index = {b: i for i, b in enumerate(self.plan["buffers"])}
        halo = self.plan["halo"]
        self.inner = tuple(slice(halo, halo + n) for n in sim.grid.cells)
        self.pool: list[Any] = []  # stage-buffer arrays free for the next recomputed segment
        self.lent: list[Any] = []
        # the stage buffers <field>@q<m>: written by every step, read by its adjoint
        self.stage_slots = [
            i
            for i, b in enumerate(self.plan["buffers"])
            if "@q" in b and b.split("@")[0] in self.plan["fields"]
        ]

    def _view(self, bufs: list[Any], name: str) -> Any:
        return bufs[self.index[name]][self.inner]

    def _save(self, bufs: list[Any], fields: tuple[str, ...]) -> dict[str, Any]:
        return {f: self._view(bufs, f).copy() for f in fields}

    def _restore(self, bufs: list[Any], state: dict[str, Any]) -> None:
        for f, v in state.items():
            self._view(bufs, f)[...] = v

    def _advance(self, bufs: list[Any], t: float, dt: float, n: int) -> list[Any]:
        return list(self.module.advance(*bufs, *self.sim.scalars(t, dt), n))

    def _kept_step(self, bufs: list[Any], t: float, dt: float) -> tuple[list[Any], list[Any]]:
        """One step into fresh stage buffers: returns the buffers as the adjoint of this step
        reads them (the state and its stage states S_i, halos filled) and those of the next
        step. Nothing is copied: the fresh arrays are simply kept."""
        fresh = list(bufs)
        for i in self.stage_slots:
            # reuse the arrays of a segment already swept (their contents are finite, and
            # halo cells a step does not fill are only ever multiplied by zero cotangents)
            array = self.pool.pop() if self.pool else None
            if array is None:
                array = self.sim.backend.zeros(bufs[i].shape, self.plan["dtype"])
            self.lent.append(array)
            fresh[i] = array
        return fresh, self._advance(fresh, t, dt, 1)

    def _reclaim(self, bufs: list[Any]) -> None:
        """Arrays lent to a swept segment go back to the pool, except those still in use."""
        busy = {id(a) for a in bufs}
        self.pool += [a for a in self.lent if id(a) not in busy]
        self.lent = [a for a in self.lent if id(a) in busy]

    def run(
        self,
        steps: list[tuple[float, float]],
        ends: dict[int, int],
        cotangents: dict[str, np.ndarray],
        fields: tuple[str, ...],
        checkpoints: int | None = None,
        given: tuple[str, ...] = (),
    ) -> tuple[dict[str, np.ndarray], dict[str, float], int]:
        """The reverse sweep. ``checkpoints``: states kept by the forward sweep (default
        ceil(sqrt(N))); segments between them are recomputed once, keeping their stage
        states. With ``checkpoints >= N`` every step's stage states are kept on the forward
        sweep itself, and nothing is recomputed."""
        backend = self.sim.backend
        bufs = list(self.sim.buffers)
        nsteps = len(steps)
        count = max(1, math.ceil(math.sqrt(nsteps)) if checkpoints is None else int(checkpoints))
        length = max(1, math.ceil(nsteps / count))  # steps per segment

        def inject(k: int) -> None:
            for f, ct in cotangents.items():
                if np.any(ct[k]):
                    lam = self._view(bufs, f"{f}@adj")
                    lam += backend.from_host(np.ascontiguousarray(ct[k], dtype=lam.dtype))

        def reverse(kept: list[list[Any]], first: int) -> None:
            for j in range(first + len(kept) - 1, first - 1, -1):
                if j in ends:
                    inject(ends[j])
                self.module.adjoint_step(*kept.pop(), *self.sim.scalars(*steps[j]))

        if length == 1:  # keep everything: no recomputation
            kept = []
            for j in range(nsteps):
                state, bufs = self._kept_step(bufs, *steps[j])
                kept.append(state)
            reverse(kept, 0)
        else:
            saved: dict[int, dict[str, Any]] = {}
            n = 0
            while n < nsteps:  # forward: keep a state every `length` steps
                saved[n] = self._save(bufs, fields)
                last = min(n + length, nsteps)
                while n < last:  # steps of equal size, as few calls as the schedule allows
                    t, dt = steps[n]
                    run = 1
                    while n + run < last and steps[n + run][1] == dt:
                        run += 1
                    bufs = self._advance(bufs, t, dt, run)
                    n += run
            for first in sorted(saved, reverse=True):
                self._restore(bufs, saved.pop(first))
                kept = []
                for j in range(first, min(first + length, nsteps)):
                    state, bufs = self._kept_step(bufs, *steps[j])
                    kept.append(state)
                reverse(kept, first)
                self._reclaim(bufs)
        inject(0)
        backend.synchronize()
        initial = {
            f: np.array(backend.to_host(self._view(bufs, f"{f}@adj")), dtype=float) for f in fields
        }
        if hasattr(self.module, "adjoint_initial"):
            for f in given:  # initial values given as arrays: no parameter enters them
                self._view(bufs, f"{f}@adj")[...] = 0
            t0 = steps[0][0] if steps else self.sim.t
            self.module.adjoint_initial(*bufs, *self.sim.scalars(t0, steps[0][1]))
            backend.synchronize()
        params = {
            p: float(np.sum(np.asarray(backend.to_host(self._view(bufs, f"{p}@gp")), dtype=float)))
            for p in self.plan["meta"].get("adjoint_params", ())
        }
        return initial, params, min(count, nsteps)


class ImplicitAdjointRun:
    """The reverse sweep of an implicit (cn, imex) solve. Step n solves R(u_{n+1}, b_n) = 0
    with b_n = B(u_n, h_n) (h: imex's N of the previous step, h_{n+1} = N(u_n)), so with
    lambda the cotangent of u_{n+1}: J^T mu = lambda at u_{n+1} (the Jacobian Newton's method
    assembles, transposed), gp -= (dR/dp)^T mu, then at u_n
    lambda = (dB/du)^T mu + (dN/du)^T lambda_h and lambda_h = (dB/dh)^T mu. Every state is
    kept (a forward sweep of Newton solves is too dear to recompute)."""

    def __init__(self, module: Any, sim: Simulation, tol: float, maxiter: int) -> None:
        from .drivers.implicit import ThetaSimulation

        self.module = module
        self.plan = module.PLAN
        self.index = {b: i for i, b in enumerate(self.plan["buffers"])}
        self.theta = ThetaSimulation(
            module, sim.grid, sim.params, sim.t, sim.dt, sim.backend, tol, maxiter
        )
        for f in self.plan["fields"]:  # the initial state as set (and overridden) on sim
            self.theta.interior(f)[...] = sim.interior(f)

    def run(
        self,
        steps: list[tuple[float, float]],
        ends: dict[int, int],
        cotangents: dict[str, np.ndarray],
        fields: tuple[str, ...],
        given: tuple[str, ...] = (),
    ) -> tuple[dict[str, np.ndarray], dict[str, float], int]:
        from threadpoolctl import threadpool_limits

        from .drivers.solvers import SteadyProblem, assemble_jacobian, linear_solver

        sim, backend = self.theta, self.theta.backend
        states = [{f: sim.interior(f).copy() for f in fields}]
        starts = []
        with threadpool_limits(limits=1, user_api="blas"):
            for t, h in steps:  # forward: every state, and which explicit half each step ran
                fresh = sim._history_dt is None or abs(h - sim._history_dt) > 1e-12 * h
                starts.append(fresh and hasattr(self.module, "adjoint_start"))
                sim.t = t
                sim._step(h)
                states.append({f: sim.interior(f).copy() for f in fields})

            def restore(state: dict[str, Any]) -> None:
                for f, v in state.items():
                    sim.interior(f)[...] = v

            def inject(k: int) -> None:
                for f, ct in cotangents.items():
                    if np.any(ct[k]):
                        lam = sim.interior(f"{f}@adj")
                        lam += backend.from_host(np.ascontiguousarray(ct[k], dtype=lam.dtype))

            constant = bool(self.plan["meta"].get("constant_jacobian"))
            solvers: dict[float, Any] = {}
            size = int(np.prod(sim.grid.cells)) * len(fields)
            for n in range(len(steps) - 1, -1, -1):
                if n in ends:
                    inject(ends[n])
                t, h = steps[n]
                scalars = sim.scalars(t, h)
                problem = SteadyProblem(sim, scalars)
                lam = problem._get("adj")
                restore(states[n + 1])
                solve = solvers.get(h) if constant else None
                if solve is None:
                    problem.residual(problem.state())  # ghosts of the new state, at t + dt
                    solve = linear_solver(assemble_jacobian(problem).T.tocsc(), size)
                    if constant:
                        solvers[h] = solve
                mu, _ = solve(lam, 1e-13, 10_000)
                problem._put("mu", mu)
                if hasattr(self.module, "adjoint_residual"):
                    self.module.adjoint_residual(*sim.buffers, *scalars)
                restore(states[n])
                if starts[n]:  # b without the history: the history's cotangent is zero
                    self.module.adjoint_start(*sim.buffers, *scalars)
                    self._clear_history(sim)
                else:
                    self.module.adjoint_explicit(*sim.buffers, *scalars)
                    self._swap_history(sim)
            inject(0)
        backend.synchronize()
        initial = {
            f: np.array(backend.to_host(sim.interior(f"{f}@adj")), dtype=float) for f in fields
        }
        if hasattr(self.module, "adjoint_initial"):
            for f in given:
                sim.interior(f"{f}@adj")[...] = 0
            self.module.adjoint_initial(*sim.buffers, *sim.scalars(steps[0][0], steps[0][1]))
            backend.synchronize()
        params = {
            p: float(np.sum(np.asarray(backend.to_host(sim.interior(f"{p}@gp")), dtype=float)))
            for p in self.plan["meta"].get("adjoint_params", ())
        }
        return initial, params, len(states)

    def _clear_history(self, sim: Simulation) -> None:
        for f in self.plan["fields"]:
            if f"{f}@lh" in self.index:
                sim.interior(f"{f}@lh")[...] = 0

    def _swap_history(self, sim: Simulation) -> None:
        """imex: the history cotangent just computed becomes the current one."""
        for f in self.plan["fields"]:
            a, b = self.index.get(f"{f}@lh"), self.index.get(f"{f}@lh2")
            if a is not None and b is not None:
                sim.buffers[a], sim.buffers[b] = sim.buffers[b], sim.buffers[a]


def pde_vjp(
    handle: PdeHandle,
    kwargs: dict[str, Any],
    sol: Solution,
    cotangents: dict[str, Any],
    params: list[str] | None = None,
    checkpoints: int | None = None,
) -> Gradient:
    """The discrete adjoint of the solve that made ``sol`` (see ``Solution.vjp``)."""
    from ..compiler.driver import IMPLICIT_SCHEMES

    problem = handle.problem
    kwargs = dict(kwargs)
    overridden = kwargs.pop("initial", None) or {}
    values, merged, fd = handle.resolve(kwargs)
    if not isinstance(cotangents, dict):
        raise RuntimeInputError(
            "vjp takes a dict of cotangents by field name, e.g. {'u': dloss_du}", code="R513"
        )
    names = [p.name for p in problem.params]
    wanted = names if params is None else list(params)
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise RuntimeInputError(
            f"'{unknown[0]}' is not a parameter of '{problem.name}'",
            hint=f"parameters: {', '.join(names) or 'none'}",
            code="R513",
        )
    module = handle.adjoint_module(fd)
    meta = module.PLAN["meta"]
    refused = [p for p in wanted if p in meta.get("boundary_params", ())]
    if refused:
        raise UnsupportedError(
            f"the adjoint does not differentiate boundary conditions yet, and "
            f"{', '.join(refused)} enters one",
            problem.span,
            "pass params=[...] naming the parameters you need, without " + ", ".join(refused),
            code="R414",
        )
    fields = tuple(module.PLAN["fields"])
    if problem.time is None:
        return _steady_vjp(handle, module, merged, values, sol, cotangents, wanted)
    # a field whose initial value was given as an array does not depend on the parameters
    drop = tuple(f for f in overridden if f in fields)
    cts = _cotangents(sol, cotangents, tuple(sol.fields))
    sim = handle.simulation(module, merged, values, float(sol.info["dt"]))
    handle.apply_initial(sim, overridden)
    assert sol.t is not None
    steps, ends = step_schedule(sol.t, float(sol.info["dt"]))
    if checkpoints is not None and int(checkpoints) < 1:
        raise RuntimeInputError("checkpoints must be at least 1", code="R513")
    if fd.scheme in IMPLICIT_SCHEMES:
        tol, maxiter = handle._newton_options(merged)
        implicit = ImplicitAdjointRun(module, sim, tol, maxiter)
        initial, grads, kept = implicit.run(steps, ends, cts, fields, drop)
    else:
        runner = AdjointRun(module, sim)
        initial, grads, kept = runner.run(steps, ends, cts, fields, checkpoints, drop)
    # a second-order equation's velocity field is the gradient of its `initial dt(u)`
    second = [eq.field for eq in problem.equations if eq.time_order == 2]
    keys = dict(zip(fields[len(problem.fields) :], (f"dt({u})" for u in second), strict=True))
    return Gradient(
        params={p: grads.get(p, 0.0) for p in wanted},
        initial={keys.get(f, f): v for f, v in initial.items()},
        info={"steps": len(steps), "checkpoints": kept, "backend": handle.backend_name},
    )


def _steady_vjp(
    handle: PdeHandle,
    module: Any,
    merged: dict[str, Any],
    values: dict[str, float],
    sol: Solution,
    cotangents: dict[str, Any],
    wanted: list[str],
) -> Gradient:
    """R(u, p) = 0 at the solution, so dL/dp = -lambda^T dR/dp with J^T lambda = dL/du: one
    solve with the transposed Jacobian (assembled from the derived Jacobian-vector products,
    as Newton's method does) and one kernel for the parameter terms."""
    from threadpoolctl import threadpool_limits

    from .drivers.solvers import SteadyProblem, assemble_jacobian, linear_solver

    sim = handle.simulation(module, merged, values, 1.0)
    problem = SteadyProblem(sim)
    shape = tuple(sim.grid.cells)
    parts = []
    for name in cotangents:
        if name not in sol.fields:
            raise RuntimeInputError(
                f"vjp got a cotangent for '{name}', which is not a field of the solution",
                hint=f"fields: {', '.join(sol.fields)}",
                code="R513",
            )
    for f in problem.fields:
        w = np.asarray(cotangents.get(f, np.zeros(shape)), dtype=float)
        if w.shape != shape or not np.all(np.isfinite(w)):
            raise RuntimeInputError(
                f"the cotangent of '{f}' must be a finite array of shape {shape}; got {w.shape}",
                code="R513",
            )
        parts.append(w.ravel())
    state = np.concatenate([np.asarray(sol[f], dtype=float).ravel() for f in problem.fields])
    with threadpool_limits(limits=1, user_api="blas"):
        problem.residual(state)  # puts the solution into the buffers
        jac = assemble_jacobian(problem)
        lam, iterations = linear_solver(jac.T.tocsc(), problem.size * len(problem.fields))(
            np.concatenate(parts), 1e-13, 10_000
        )
    problem._put("adj", lam)
    problem._call("param_vjp")
    sim.backend.synchronize()
    grads = {
        p: -float(np.sum(np.asarray(sim.backend.to_host(sim.interior(f"{p}@gp")), dtype=float)))
        for p in module.PLAN["meta"].get("adjoint_params", ())
    }
    lam_fields = {
        f: lam[k * problem.size : (k + 1) * problem.size].reshape(shape)
        for k, f in enumerate(problem.fields)
    }
    return Gradient(
        params={p: grads.get(p, 0.0) for p in wanted},
        initial={},
        info={"adjoint_state": lam_fields, "krylov_iterations": iterations},
    )
