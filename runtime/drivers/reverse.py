"""Reverse sweeps: the discrete adjoints of explicit, implicit and steady solves, run on the
adjoint module of a problem (its compiled step plus the derived adjoint entries).

Explicit steps: the states are recomputed from checkpoints (K ~ sqrt(N) states kept by the
forward sweep; each segment is recomputed once, keeping its stage states, just before its
reverse sweep), so the work is about two forward solves plus the adjoint steps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ...dsl.diagnostics import RuntimeInputError
from ..inputs import real_array
from .integrators import Simulation

if TYPE_CHECKING:
    from ..api import PdeHandle
    from ..results import Solution


# up to this many grid points the compiled segment (which copies each step's states into one
# array, single-threaded) beats a Python call per step. Measured (rk4, 2 threads): 200 cells,
# 5000 steps 2.2x faster; 64^2 cells the same; 128^2 and up 1.1-1.25x slower
COMPILED_SEGMENT_POINTS = 1 << 12


def add_cotangents(view: Any, cotangents: dict[str, np.ndarray], k: int, backend: Any) -> None:
    """lambda += the cotangent given for output frame ``k`` (``view(name)``: a buffer's
    interior)."""
    for f, ct in cotangents.items():
        if np.any(ct[k]):
            lam = view(f"{f}@adj")
            lam += backend.from_host(np.ascontiguousarray(ct[k], dtype=lam.dtype))


def gradients(
    module: Any,
    view: Any,
    buffers: list[Any],
    scalars: tuple,
    fields: tuple[str, ...],
    given: tuple[str, ...],
    backend: Any,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """After a sweep: the initial state's cotangents, then the parameters' (their sums over
    the grid, after ``adjoint_initial`` adds the terms through the initial condition, which
    no field in ``given`` has: its initial value was an array)."""
    backend.synchronize()
    initial = {f: np.array(backend.to_host(view(f"{f}@adj")), dtype=float) for f in fields}
    if hasattr(module, "adjoint_initial"):
        for f in given:
            view(f"{f}@adj")[...] = 0
        module.adjoint_initial(*buffers, *scalars)
        backend.synchronize()
    params = {
        p: float(np.sum(np.asarray(backend.to_host(view(f"{p}@gp")), dtype=float)))
        for p in module.PLAN["meta"].get("adjoint_params", ())
    }
    return initial, params


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
        self.block: Any = None  # the stage states of one segment, allocated at once
        self.taken = 0
        # the stage buffers <field>@q<m>: written by every step, read by its adjoint
        self.stage_slots = [
            i
            for i, b in enumerate(self.plan["buffers"])
            if "@q" in b and b.split("@")[0] in self.plan["fields"]
        ]
        # (lambda, lambda'): written by each adjoint step into the other, then exchanged
        self.adjoint_swaps = [
            (self.index[a], self.index[b]) for a, b in self.plan["meta"].get("adjoint_swaps", ())
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

    def _reserve(self, steps: int, shape: tuple[int, ...]) -> None:
        """One zeroed block for the stage states of ``steps`` kept steps. A single allocation:
        thousands of separate ones cost more in page faults than the steps that fill them
        (Gray-Scott 512^2, 20 RK4 steps all kept: 186 arrays of 2 MiB took 2.2x the forward
        solve to fill, the block about 1x), and the operating system backs a large block
        with huge pages."""
        count = steps * len(self.stage_slots)
        if count:
            self.block = self.sim.backend.zeros((count, *shape), self.plan["dtype"])
        self.taken = 0

    def _fresh(self, shape: tuple[int, ...]) -> Any:
        """A zeroed stage array: one of a segment already swept (its contents are finite, and
        halo cells a step does not fill are only ever multiplied by zero cotangents), else
        the next of the block, else a new one."""
        if self.pool:
            return self.pool.pop()
        if self.block is not None and self.taken < len(self.block):
            self.taken += 1
            return self.block[self.taken - 1]
        return self.sim.backend.zeros(shape, self.plan["dtype"])

    def _kept_step(self, bufs: list[Any], t: float, dt: float) -> tuple[list[Any], list[Any]]:
        """One step into fresh stage buffers: returns the buffers as the adjoint of this step
        reads them (the state and its stage states S_i, halos filled) and those of the next
        step. Nothing is copied: the fresh arrays are simply kept."""
        fresh = list(bufs)
        for i in self.stage_slots:
            array = self._fresh(bufs[i].shape)
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
            add_cotangents(lambda name: self._view(bufs, name), cotangents, k, backend)

        def reverse(kept: list[list[Any]], first: int) -> None:
            for j in range(first + len(kept) - 1, first - 1, -1):
                if j in ends:
                    inject(ends[j])
                state = kept.pop()
                for a, b in self.adjoint_swaps:  # the cotangents as the last step left them
                    state[a], state[b] = bufs[a], bufs[b]
                self.module.adjoint_step(*state, *self.sim.scalars(*steps[j]))
                for a, b in self.adjoint_swaps:
                    bufs[a], bufs[b] = bufs[b], bufs[a]

        if length == 1:  # keep everything: no recomputation
            self._reserve(nsteps, bufs[0].shape)
            kept = []
            for j in range(nsteps):
                state, bufs = self._kept_step(bufs, *steps[j])
                kept.append(state)
            reverse(kept, 0)
        else:
            saved: dict[int, dict[str, Any]] = {}
            stops: dict[int, int] = {}
            n = 0
            while n < nsteps:  # forward: keep a state every `length` steps and at every output
                saved[n] = self._save(bufs, fields)
                last = min(n + length, min(j for j in ends if j >= n) + 1)
                stops[n] = last
                t, dt = steps[n]  # one output interval: steps of one size
                bufs = self._advance(bufs, t, dt, last - n)
                n = last
            # small grids: one compiled call per segment (a Python call per step would cost
            # more than the step); large ones: no copies, one call per step
            small = int(np.prod(self.sim.grid.cells)) <= COMPILED_SEGMENT_POINTS
            compiled = getattr(self.module, "reverse_segment", None) if small else None
            store = None
            if compiled is None:
                self._reserve(length, bufs[0].shape)
            for first in sorted(saved, reverse=True):
                self._restore(bufs, saved.pop(first))
                stop = stops[first]
                if compiled is None:  # one Python call per step, no copies (any backend)
                    kept = []
                    for j in range(first, stop):
                        state, bufs = self._kept_step(bufs, *steps[j])
                        kept.append(state)
                    reverse(kept, first)
                    self._reclaim(bufs)
                    continue
                if stop - 1 in ends:  # the forward half of the call leaves lambda alone
                    inject(ends[stop - 1])
                if store is None:
                    shape = (length, len(self.module.REVERSE_KEPT), *bufs[0].shape)
                    store = np.empty(shape, dtype=self.plan["dtype"])
                scalars = self.sim.scalars(*steps[first])
                bufs = list(compiled(*bufs, *scalars, stop - first, store))
        inject(0)
        initial, params = gradients(
            self.module,
            lambda name: self._view(bufs, name),
            bufs,
            self.sim.scalars(*steps[0]),
            fields,
            given,
            backend,
        )
        return initial, params, min(count, nsteps)


class ImplicitAdjointRun:
    """The reverse sweep of an implicit (cn, imex) solve. Step n solves R(u_{n+1}, b_n) = 0
    with b_n = B(u_n, h_n) (h: imex's N of the previous step, h_{n+1} = N(u_n)), so with
    lambda the cotangent of u_{n+1}: J^T mu = lambda at u_{n+1} (the Jacobian Newton's method
    assembles, transposed), gp -= (dR/dp)^T mu, then at u_n
    lambda = (dB/du)^T mu + (dN/du)^T lambda_h and lambda_h = (dB/dh)^T mu. Every state is
    kept (a forward sweep of Newton solves is too dear to recompute)."""

    def __init__(self, module: Any, sim: Simulation, tol: float, maxiter: int) -> None:
        from .implicit import ThetaSimulation

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

        from .solvers import SteadyProblem, assemble_jacobian, linear_solver

        sim, backend = self.theta, self.theta.backend
        states = [{f: sim.interior(f).copy() for f in fields}]
        starts = []
        with threadpool_limits(limits=1, user_api="blas"):
            for t, h in steps:  # forward: every state, and which explicit half each step ran
                starts.append(sim.starts_afresh(h))
                sim.t = t
                sim.advance(1, h)
                states.append({f: sim.interior(f).copy() for f in fields})

            def restore(state: dict[str, Any]) -> None:
                for f, v in state.items():
                    sim.interior(f)[...] = v

            constant = bool(self.plan["meta"].get("constant_jacobian"))
            solvers: dict[float, Any] = {}
            size = int(np.prod(sim.grid.cells)) * len(fields)
            for n in range(len(steps) - 1, -1, -1):
                if n in ends:
                    add_cotangents(sim.interior, cotangents, ends[n], backend)
                t, h = steps[n]
                scalars = sim.scalars(t, h)
                problem = SteadyProblem(sim, scalars)
                lam = problem._get("adj")
                restore(states[n + 1])
                solve = solvers.get(h) if constant else None
                if solve is None:
                    problem.residual(problem.state())  # ghosts of the new state, at t + dt
                    solve = linear_solver(
                        assemble_jacobian(problem).T.tocsc(), size, len(problem.fields)
                    )
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
            add_cotangents(sim.interior, cotangents, 0, backend)
        scalars = sim.scalars(*steps[0])
        initial, params = gradients(
            self.module, sim.interior, sim.buffers, scalars, fields, given, backend
        )
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


def steady_vjp(
    handle: PdeHandle,
    module: Any,
    merged: dict[str, Any],
    values: dict[str, float],
    sol: Solution,
    cotangents: dict[str, Any],
) -> tuple[dict[str, float], dict[str, Any]]:
    """R(u, p) = 0 at the solution, so dL/dp = -lambda^T dR/dp with J^T lambda = dL/du: one
    solve with the transposed Jacobian (assembled from the derived Jacobian-vector products,
    as Newton's method does) and one kernel for the parameter terms. Returns the parameter
    cotangents and an info dict (lambda per field, Krylov iterations)."""
    from threadpoolctl import threadpool_limits

    from .solvers import SteadyProblem, assemble_jacobian, linear_solver

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
        w = real_array(cotangents.get(f, np.zeros(shape)), f"the cotangent of '{f}'", "R513")
        if w.shape != shape:
            raise RuntimeInputError(
                f"the cotangent of '{f}' must be an array of shape {shape}; got {w.shape}",
                code="R513",
            )
        parts.append(w.ravel())
    state = np.concatenate([np.asarray(sol[f], dtype=float).ravel() for f in problem.fields])
    with threadpool_limits(limits=1, user_api="blas"):
        problem.residual(state)  # puts the solution into the buffers
        jac = assemble_jacobian(problem)
        nf = len(problem.fields)
        solve = linear_solver(jac.T.tocsc(), problem.size * nf, nf)
        lam, iterations = solve(np.concatenate(parts), 1e-13, 10_000)
    grads = {}
    if hasattr(module, "param_vjp"):  # none when no parameter enters the residual
        problem._put("adj", lam)
        problem._call("param_vjp")
        sim.backend.synchronize()
        grads = {
            p: -float(np.sum(np.asarray(sim.backend.to_host(sim.interior(f"{p}@gp")), float)))
            for p in module.PLAN["meta"].get("adjoint_params", ())
        }
    lam_fields = {
        f: lam[k * problem.size : (k + 1) * problem.size].reshape(shape)
        for k, f in enumerate(problem.fields)
    }
    return grads, {"adjoint_state": lam_fields, "krylov_iterations": iterations}
