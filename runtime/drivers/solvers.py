"""Steady solves: Newton's method on the compiled residual and its derived Jacobian.

The generated module provides ``residual`` (R(u) into the ``<f>@r`` buffers) and ``jvp``
(J(u) v into ``<f>@jv``, the exact linearisation derived by the compiler). The sparse Jacobian
is assembled from a few such products by colouring the stencil, then factorised (SciPy's sparse
LU), or used as an incomplete-LU preconditioner for GMRES on large grids. A linear problem
converges in one Newton step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from ...dsl.diagnostics import RuntimeInputError
from .integrators import Simulation


@dataclass
class SteadyReport:
    converged: bool
    newton_steps: int
    krylov_iterations: int
    residual_norms: list[float] = field(default_factory=list)
    # "tol": the residual met the tolerance; "rounding": it stopped at what the dtype resolves
    # (float32 cannot reach tol = 1e-10), which is converged as far as the arithmetic goes
    stopped: str = "tol"


class SteadyProblem:
    """Moves flat vectors in and out of the padded buffers around the compiled entries, which
    run with ``scalars`` (default: t = 0, dt = 0, as a steady problem has no time)."""

    def __init__(self, sim: Simulation, scalars: tuple | None = None) -> None:
        self.sim = sim
        self.scalars = sim.scalars(0.0, 0.0) if scalars is None else scalars
        meta = sim.plan["meta"]
        self.radius = int(meta["coupling"])  # how far apart two coupled unknowns can be
        self.periodic = tuple(meta["periodic"])
        self.fields = sim.plan["fields"]
        self.cells = sim.grid.cells
        self.size = int(np.prod(self.cells))

    def _put(self, suffix: str, vector: np.ndarray) -> None:
        backend = self.sim.backend
        for k, f in enumerate(self.fields):
            name = f if not suffix else f"{f}@{suffix}"
            part = vector[k * self.size : (k + 1) * self.size].reshape(self.cells)
            self.sim.interior(name)[...] = backend.from_host(part)

    def _get(self, suffix: str) -> np.ndarray:
        backend = self.sim.backend
        return np.concatenate(
            [
                np.asarray(
                    backend.to_host(self.sim.interior(f"{f}@{suffix}" if suffix else f))
                ).ravel()
                for f in self.fields
            ]
        )

    def _call(self, entry: str) -> None:
        getattr(self.sim.module, entry)(*self.sim.buffers, *self.scalars)

    def state(self) -> np.ndarray:
        return self._get("")

    def residual(self, u: np.ndarray) -> np.ndarray:
        self._put("", u)
        self._call("residual")
        return self._get("r")

    def jvp(self, v: np.ndarray) -> np.ndarray:
        self._put("v", v)
        self._call("jvp")
        return self._get("jv")


def _seam_period(n: int, p: int) -> int:
    """The colour period of a periodic axis of ``n`` cells: at least ``p`` and a divisor of n,
    so that two cells of one colour are ``p`` or more apart across the seam too (n itself,
    every cell its own colour, where no smaller divisor exists)."""
    return next((d for d in range(p, n) if n % d == 0), n)


def assemble_jacobian(problem: SteadyProblem):
    """The sparse Jacobian from a few Jacobian-vector products (stencil colouring).

    Cells whose indices agree modulo p = 2 * radius + 1 along every axis (on a periodic axis
    modulo a divisor of its cell count, see ``_seam_period``) never share a row's stencil
    (``radius`` bounds the coupling distance, ghost extrapolation included), so one product with
    the indicator of such a colour class yields one entry per row."""
    from scipy import sparse

    cells, radius, periodic = problem.cells, problem.radius, problem.periodic
    nd = len(cells)
    p = 2 * radius + 1
    periods = np.array(
        [_seam_period(n, p) if per else p for per, n in zip(periodic, cells, strict=True)]
    )[:, None]
    index = np.indices(cells).reshape(nd, -1)
    size = problem.size
    nf = len(problem.fields)
    rows, cols, vals = [], [], []
    row_ids = np.arange(size)
    for f in range(nf):
        for colour in np.ndindex(
            *(min(int(q), n) for q, n in zip(periods[:, 0], cells, strict=True))
        ):
            mask = np.all(index % periods == np.array(colour)[:, None], axis=0)
            v = np.zeros(size * nf)
            v[f * size + np.flatnonzero(mask)] = 1.0
            jv = problem.jvp(v)
            # the column of each row: the cell of this colour within `radius` of the row's cell
            # (none where the offset exceeds the radius: those rows read zero and are dropped)
            offset = (np.array(colour)[:, None] - index + radius) % periods - radius
            target = index + offset
            inside = np.ones(size, dtype=bool)
            for a in range(nd):
                if periodic[a]:
                    target[a] %= cells[a]
                else:
                    inside &= (target[a] >= 0) & (target[a] < cells[a])
            # NumPy's stubs pick the scalar overload for a 2-D index array
            col = cast(np.ndarray, np.ravel_multi_index(np.where(inside, target, 0), cells))
            for g in range(nf):
                values = jv[g * size : (g + 1) * size]
                keep = inside & (values != 0.0)
                rows.append(g * size + row_ids[keep])
                cols.append(f * size + col[keep])
                vals.append(values[keep])
    n = size * nf
    return sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


DIRECT_LIMIT = 400_000  # unknowns up to which the Newton systems are factorised exactly


def _block_rows(jac: Any, blocks: int) -> np.ndarray | None:
    """A permutation of the equations (row blocks, one per field) that puts on the diagonal the
    block whose diagonal is largest: equations are assigned to fields in the order written, so
    ``-lap(v) + u = 1`` may sit in u's rows with a diagonal of 1 beside entries of 4/h^2, and
    partial pivoting then abandons the fill-reducing order (a hundredfold slower LU). None
    where the order written is already the best."""
    import itertools

    n = jac.shape[0]
    if blocks < 2 or blocks > 6 or n % blocks:
        return None
    size = n // blocks
    score = np.zeros((blocks, blocks))
    for e in range(blocks):
        for f in range(blocks):
            k = (f - e) * size
            start = e * size if k >= 0 else f * size
            diag = np.abs(jac.diagonal(k)[start : start + size])
            with np.errstate(divide="ignore"):
                score[e, f] = float(np.sum(np.log(diag)))  # -inf where one entry is 0
    best = max(
        itertools.permutations(range(blocks)),
        key=lambda p: sum(score[p[f], f] for f in range(blocks)),
    )
    if list(best) == list(range(blocks)):
        return None
    return np.concatenate([np.arange(e * size, (e + 1) * size) for e in best])


def linear_solver(jac: Any, n: int, blocks: int = 1) -> Any:
    """``solve(rhs, rel, budget) -> (x, Krylov iterations)`` for J x = rhs: a sparse LU
    factorisation up to DIRECT_LIMIT unknowns, else GMRES preconditioned by an incomplete LU.
    ``blocks``: the number of fields, whose equations may be reordered (``_block_rows``)."""
    rows = _block_rows(jac, blocks)
    if rows is not None:
        inner = linear_solver(jac[rows, :].tocsc(), n)
        return lambda rhs, rel, budget: inner(rhs[rows], rel, budget)
    from scipy.sparse.linalg import LinearOperator, gmres, spilu, splu

    if n <= DIRECT_LIMIT:
        try:
            # minimum degree on the pattern of J + J^T: stencil Jacobians are structurally
            # (nearly) symmetric, and this ordering fills half as much as COLAMD on them
            lu = splu(jac, permc_spec="MMD_AT_PLUS_A")
        except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
            raise RuntimeInputError(
                f"the Jacobian of the problem is singular ({exc})",
                hint="the conditions may not determine the solution: a problem with only "
                "Neumann or periodic conditions fixes u only up to a constant; add a "
                "Dirichlet or Robin condition",
                code="R543",
            ) from None
        return lambda rhs, rel, budget: (lu.solve(rhs), 0)
    ilu = spilu(jac, drop_tol=1e-5, fill_factor=20)
    precond = LinearOperator((n, n), matvec=ilu.solve, dtype=float)

    def solve(rhs: np.ndarray, rel: float, budget: int) -> tuple[np.ndarray, int]:
        count = {"n": 0}

        def matvec(v: np.ndarray) -> np.ndarray:
            count["n"] += 1
            return jac @ v

        restart = min(80, budget)
        x, _ = gmres(
            LinearOperator((n, n), matvec=matvec, dtype=float),
            rhs,
            rtol=rel,
            restart=restart,
            M=precond,
            maxiter=max(1, budget // restart),
        )
        return x, count["n"]

    return solve


#: Newton steps at most (each also within the Krylov budget ``maxiter``)
NEWTON_STEPS = 100
#: halvings of a Newton step that does not reduce the residual
_HALVINGS = 12


def norm2(v: np.ndarray) -> float:
    """The 2-norm, which cannot overflow: where the plain one does (squares past 1e308), it is
    taken again scaled by the largest entry (a residual of 1e200 has a norm of 1e200, not inf);
    inf or NaN entries give inf or NaN. One pass over v in the usual case (every Newton step of
    an implicit time step takes a few)."""
    with np.errstate(over="ignore", invalid="ignore"):
        plain = float(np.linalg.norm(v))
    if np.isfinite(plain):
        return plain
    big = float(np.max(np.abs(v)))
    if not np.isfinite(big):
        return big
    return big * float(np.linalg.norm(v / big))


class PseudoTime:
    """Pseudo-transient continuation (Kelley and Keyes 1998) for a steady Newton solve that
    starts far from its solution. Newton from a guess that breaks the boundary conditions (the
    default u = 0 against u = 1 on a face) can converge to a spurious root of the discrete
    equations: for ``-diff((1 + u^2) * diff(u, x), x) = 0`` the chain rule's
    ``-2 u diff(u, x)^2`` term balances the second difference at O(1/h^2) with an O(1) jump
    at the face, at every resolution. The early steps here are implicit Euler steps of the
    pseudo-time flow du/dtau = -s R(u) instead, (J + s D / sigma) d = -R, which follow the
    physical relaxation towards the stable solution; sigma grows as the residual falls
    (switched evolution relaxation, sigma_k = sigma_(k-1) ||R_(k-1)|| / ||R_k||, and at least
    tenfold) until the shift is negligible and the iteration is Newton's: easy problems take
    two or three more steps than Newton alone. D is each field's typical diagonal of J,
    s its sign (``lap(u) = f`` and ``-lap(u) = f`` flow the same way)."""

    #: the shift is dropped once sigma passes this (pure Newton from there)
    NEWTON_AT = 1e6
    #: the least growth of sigma after a step that reduced the residual
    GROWTH = 10.0

    def __init__(self, scale: np.ndarray, rows: np.ndarray | None) -> None:
        self.scale = scale
        self.rows = rows
        self.sigma = 1.0

    @classmethod
    def start(cls, jac: Any, blocks: int) -> PseudoTime | None:
        """From the first Jacobian. The rows of one field's equation may hold another field's
        leading term (``-lap(v) + u = 1`` written first): the shift goes where the linear
        solver's row order (``_block_rows``) puts the large diagonal. None where every typical
        diagonal is zero (no flow to follow)."""
        rows = _block_rows(jac, blocks)
        diag = (jac[rows, :] if rows is not None else jac).diagonal()
        size = len(diag) // blocks
        scale = np.concatenate(
            [
                np.full(size, float(np.median(diag[f * size : (f + 1) * size])))
                for f in range(blocks)
            ]
        )
        return cls(scale, rows) if np.any(scale != 0) else None

    def shifted(self, jac: Any, norms: list[float]) -> Any:
        from scipy import sparse

        if len(norms) >= 2 and norms[-1] > 0:
            ratio = norms[-2] / norms[-1]
            # ten times larger at least after a step that reduced the residual, so that an
            # easy problem is Newton's after a few steps, and one near a fold (Bratu close to
            # its turning point, whose flow is slow) is not held back by its slow residual
            self.sigma *= max(self.GROWTH, ratio) if ratio > 1 else ratio
        if self.sigma >= self.NEWTON_AT:
            return jac
        n = len(self.scale)
        rows = self.rows if self.rows is not None else np.arange(n)
        shift = sparse.csc_matrix((self.scale / self.sigma, (rows, np.arange(n))), shape=(n, n))
        return (jac + shift).tocsc()


def _rounding_floor(jac: Any, u: np.ndarray, eps: float) -> float:
    """What rounding alone leaves in ||R(u)||: each row of R sums terms as large as
    |J| |u| (its stencil times the state), each rounded at eps; 4 of that is converged."""
    return 4 * eps * norm2(abs(jac) @ np.abs(u))


def _damped(
    problem: SteadyProblem, u: np.ndarray, delta: np.ndarray, norm: float, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The iterate after a Newton step, its residual and the step taken. A full step that does
    not reduce ||R|| (far from the solution, Newton can overshoot and diverge) is halved until it
    does (Armijo's sufficient decrease); the smallest residual seen is kept if none does. Only
    for an exact Jacobian: a stale one's step is no descent direction, and is refreshed instead."""
    trial = u + delta
    r = problem.residual(trial)
    best = (norm2(r), trial, delta)
    if not exact or best[0] <= (1 - 1e-4) * norm:
        return trial, r, delta
    scale = 1.0
    for _ in range(_HALVINGS):
        scale /= 2
        step = scale * delta
        r_try = problem.residual(u + step)
        value = norm2(r_try)
        if np.isfinite(value) and value < best[0]:
            best = (value, u + step, step)
        if value <= (1 - 1e-4 * scale) * norm:
            break
    _, trial, step = best
    return trial, problem.residual(trial), step


def newton(
    problem: SteadyProblem,
    tol: float,
    maxiter: int,
    floor: float = 0.0,
    factors: dict | None = None,
    refresh: float | None = None,
    what: str = "the steady solve",
    pseudo_time: bool = False,
    steady: bool = False,
) -> tuple[np.ndarray, SteadyReport]:
    """Solve R(u) = 0 to ||R(u)|| <= max(tol * ||R(u0)||, floor * ||u0||), or until a Newton
    update after the first is below the rounding of u in its dtype. Each Newton system J d = -R
    uses the Jacobian assembled from derived Jacobian-vector products (see ``linear_solver``;
    ``maxiter`` caps the Krylov iterations in all). With ``factors`` (a dict the caller keeps
    between solves) the factorisation is made once and reused: for good where the Jacobian
    depends on neither the state nor the time; with ``refresh``, where it does (chord Newton),
    until a step reduces the residual by less than that factor, when it is assembled again at the
    current iterate. ``pseudo_time``: start with pseudo-transient continuation (``PseudoTime``).
    ``steady``: a Jacobian with constants in its null space is R543 (``_constant_null_space``),
    checked at once where it is constant (``pseudo_time`` off), else where Newton fails."""
    n = problem.size * len(problem.fields)
    continuation: PseudoTime | None = None
    last_jac = None
    eps = float(np.finfo(problem.sim.plan["dtype"]).eps)
    u = problem.state()
    r = problem.residual(u)
    norms = [norm2(r)]
    if not np.isfinite(norms[0]):  # an infinite target would count anything as converged
        raise RuntimeInputError(
            f"{what} cannot start: the residual of its initial state is not finite ({norms[0]})",
            hint="the state is too large for the equations (a power or exp overflows) or holds "
            "NaN; start from smaller values, or, in a time step, take a smaller dt",
            code="R542",
        )
    target = max(tol * norms[0], floor * norm2(u), np.finfo(float).tiny)
    report = SteadyReport(norms[0] <= target, 0, 0, norms)
    for step in range(1, NEWTON_STEPS + 1):
        if report.converged or report.krylov_iterations >= maxiter:
            break
        solve = factors.get("solve") if factors is not None else None
        exact = solve is None or refresh is None  # the Jacobian is this iterate's
        if solve is None:
            jac = last_jac = assemble_jacobian(problem)
            problem.residual(u)  # the probes moved the buffers; restore the iterate's state
            if steady and not pseudo_time:
                _constant_null_space(jac, problem.fields)
            if pseudo_time and continuation is None:
                continuation = PseudoTime.start(jac, len(problem.fields))
            if continuation is not None:
                jac = continuation.shifted(jac, norms)
            solve = linear_solver(jac, n, len(problem.fields))
            if factors is not None:
                factors["solve"] = solve
        budget = max(1, maxiter - report.krylov_iterations)
        delta, iterations = solve(-r, max(target / norms[-1], 1e-14), budget)
        report.krylov_iterations += iterations
        u, r, delta = _damped(problem, u, delta, norms[-1], exact)
        norms.append(norm2(r))
        report.newton_steps = step
        if refresh is not None and factors is not None and norms[-1] > refresh * norms[-2]:
            factors.pop("solve", None)  # a stale Jacobian no longer contracts fast enough
        # or stalled at rounding: a second update below what the dtype resolves in u, or a
        # residual as small as the rounding of its own evaluation (past it, the updates are
        # that rounding amplified by J^-1, and Newton would wander at the floor)
        stalled = step > 1 and norm2(delta) <= 64 * eps * norm2(u)
        met = norms[-1] <= target
        report.converged = (
            met
            or stalled
            or (last_jac is not None and norms[-1] <= _rounding_floor(last_jac, u, eps))
        )
        report.stopped = "tol" if met else "rounding"
        if not np.isfinite(norms[-1]):
            break
    # the last residual evaluation (or the first, if u0 already solved it) left u in the buffers
    if not report.converged and steady and last_jac is not None:
        _constant_null_space(last_jac, problem.fields)
    if not report.converged:
        raise RuntimeInputError(
            f"{what} did not converge: residual {norms[-1]:.3g} after "
            f"{report.newton_steps} Newton steps (asked for {target:.3g}); residual history "
            + ", ".join(f"{v:.3g}" for v in norms[:8])
            + (" ..." if len(norms) > 8 else ""),
            hint="loosen tol, raise maxiter, use fewer cells, or check that the problem has a "
            "solution (a pure Neumann problem determines u only up to a constant); in a time "
            "step, a smaller dt also helps Newton's method",
            code="R542",
        )
    return u, report


def _constant_null_space(jac: Any, fields: tuple[str, ...]) -> None:
    """R543 where adding a constant to one field changes no equation (only Neumann or periodic
    conditions, and no term in the field itself): the solution is then fixed only up to that
    constant, or does not exist. SuperLU notices in 1-D; in 2-D and 3-D rounding hides the
    zero pivot and it factorises the matrix anyway, returning an arbitrary constant."""
    n = jac.shape[0]
    size = n // len(fields)
    reference = float(abs(jac).sum(axis=1).max()) or 1.0
    columns = np.asarray(abs(jac).sum(axis=0)).ravel()
    for k, f in enumerate(fields):
        if float(columns[k * size : (k + 1) * size].max()) <= 1e-14 * reference:
            raise RuntimeInputError(
                f"the Jacobian of the problem is singular: no equation depends on '{f}' with "
                "these parameter values",
                hint="a coefficient of the field's terms may be 0 (e.g. k = 0 in -k * diff(u, "
                "x, 2) = f); give the parameters values that keep the field in its equation",
                code="R543",
            )
    for k, f in enumerate(fields):
        ones = np.zeros(n)
        ones[k * size : (k + 1) * size] = 1.0
        if float(np.abs(jac @ ones).max()) <= 1e-10 * reference:
            raise RuntimeInputError(
                f"the Jacobian of the problem is singular: adding a constant to '{f}' changes "
                "no equation, so the conditions fix it only up to a constant",
                hint="add a Dirichlet or Robin condition on some face, or a term in the field "
                "itself; with only Neumann or periodic conditions the data must also integrate "
                "to zero",
                code="R543",
            )


def solve_steady(
    sim: Simulation, tol: float, maxiter: int, continuation: bool = True
) -> tuple[dict[str, Any], SteadyReport]:
    """Fields (interior arrays) of the steady solution, and how the solve went.
    ``continuation``: pseudo-transient continuation first where the problem is nonlinear (off
    for a guess known to be close, where it only costs steps)."""
    from threadpoolctl import threadpool_limits

    problem = SteadyProblem(sim)
    # one thread pool at a time: BLAS threads spinning next to Numba's slow both down many times
    with threadpool_limits(limits=1, user_api="blas"):
        constant = bool(sim.plan["meta"].get("constant_jacobian", False))
        _, report = newton(
            problem, tol, maxiter, pseudo_time=continuation and not constant, steady=True
        )
    return {f: np.array(sim.backend.to_host(sim.interior(f))) for f in problem.fields}, report
