"""``dt = auto``: the largest stable explicit step, from the spectrum of the discrete operator.

The right-hand side is linearised exactly (the IR's jvp rules with homogeneous boundary rules)
at the initial state; an Arnoldi iteration on that Jacobian gives Ritz values, which approximate
its extreme eigenvalues in both magnitude and direction (negative real axis for diffusion,
imaginary axis for transport). The step is the largest one whose scaled Ritz values all lie in
the scheme's stability region |R(z)| <= 1, where R is the stability polynomial of the Butcher
tableau, times a safety factor. Nonlinear problems are linearised at t0 only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...compiler.ir.evaluate import evaluate
from ...compiler.ir.program import Program
from ...compiler.passes.discretise import discretise
from ...compiler.passes.integrate import TABLEAUS
from ...compiler.passes.manager import PassContext, Tableau
from ...compiler.passes.simplify import simplify
from ...compiler.rules import jvp_program
from ...dsl.diagnostics import RuntimeInputError

SAFETY = 0.8
GROWTH_STEP = 5.0  # see stable_dt
KRYLOV = 30
KRYLOV_BYTES = 2e8  # memory allowed for the Krylov basis


def ritz_values(
    rhs: Program,
    fields: tuple[str, ...],
    state: Mapping[str, np.ndarray],
    params: Mapping[str, float],
    grid: Mapping[str, list[float]],
    t: float,
    seed: int = 0,
) -> np.ndarray:
    """Eigenvalues of the Arnoldi Hessenberg matrix of the Jacobian of ``rhs`` at ``state``."""
    lin = jvp_program(rhs, list(fields))
    sizes = [state[f].size for f in fields]
    total = sum(sizes)
    m = int(max(4, min(KRYLOV, KRYLOV_BYTES // (8 * total))))

    def apply(x: np.ndarray) -> np.ndarray:
        parts = np.split(x, np.cumsum(sizes)[:-1])
        inputs = dict(state)
        inputs.update(
            {f"dot:{f}": p.reshape(state[f].shape) for f, p in zip(fields, parts, strict=True)}
        )
        out = evaluate(lin, inputs, params, t=t, grid=grid)
        return np.concatenate([out[f"dot:rhs:{f}"].ravel() for f in fields])

    rng = np.random.default_rng(seed)
    basis = np.zeros((m + 1, total))
    h = np.zeros((m + 1, m))
    v = rng.standard_normal(total)
    basis[0] = v / np.linalg.norm(v)
    k = m
    for j in range(m):
        w = apply(basis[j])
        for _ in range(2):  # Gram-Schmidt twice keeps the basis orthogonal in floating point
            coeffs = basis[: j + 1] @ w
            w -= coeffs @ basis[: j + 1]
            h[: j + 1, j] += coeffs
        h[j + 1, j] = np.linalg.norm(w)
        if h[j + 1, j] < 1e-12 * max(1.0, np.abs(h[: j + 1, j]).max()):
            k = j + 1
            break
        basis[j + 1] = w / h[j + 1, j]
    return np.linalg.eigvals(h[:k, :k])


def amplification(tableau: Tableau, z: np.ndarray) -> np.ndarray:
    """|R(z)| of an explicit Runge-Kutta method: R(z) = 1 + z b^T (I - z A)^-1 1."""
    a = np.array(tableau.a, dtype=complex)
    b = np.array(tableau.b, dtype=complex)
    s = len(b)
    out = np.empty(z.shape)
    for i, zi in np.ndenumerate(z):
        stages = np.linalg.solve(np.eye(s) - zi * a, np.ones(s, dtype=complex))
        out[i] = abs(1 + zi * (b @ stages))
    return out


def _largest_stable_scale(tableau: Tableau, lam: np.ndarray, start: float) -> float:
    """The largest dt such that |R(z)| <= max(1, |exp(z)|) for z = s * dt * lam, every s in
    [0, 1] and every lam: no growth faster than the exact solution's (Ritz
    values of a neutral operator may carry tiny positive real parts; a growing mode may grow)."""

    def stable(dt: float) -> bool:
        ray = np.linspace(0.02, 1.0, 50)[:, None] * dt * lam[None, :]
        bound = np.maximum(1.0, np.exp(np.minimum(ray.real, 700.0)))  # no overflow warning
        return bool(np.all(amplification(tableau, ray) <= bound * (1.0 + 1e-9)))

    lo, hi = 0.0, start
    while stable(hi):
        lo, hi = hi, hi * 2
        if hi > 1e12 * start:
            return hi
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo


def stable_dt(
    rhs: Program,
    scheme: str,
    fields: tuple[str, ...],
    state: Mapping[str, np.ndarray],
    params: Mapping[str, float],
    grid: Mapping[str, list[float]],
    t: float,
    span: float,
    order: int,
) -> float:
    """A stable step for ``scheme``; ``span`` (the whole interval) if the operator vanishes."""
    ctx = PassContext(problem="auto-dt", order=order)
    discrete = simplify(discretise(rhs, ctx), ctx)
    lam = ritz_values(discrete, fields, state, params, grid, t)
    radius = float(np.abs(lam).max()) if lam.size else 0.0
    if radius <= 0.0:
        return span
    lam = lam[np.abs(lam) > 1e-6 * radius]
    # every explicit scheme's R(z) stays below e^z on the positive real axis, so growth alone
    # bounds no step (a growing solution took one step over the whole interval: 3079 for
    # 3.6e6); a growing mode is resolved, not only kept stable: as a decaying one GROWTH_STEP
    # times faster, which holds rk4's |z| near 0.5 (2e-4 relative error a step)
    # (the real part only: the tiny positive real parts of a neutral operator's Ritz values
    # leave transport's step as it is)
    lam = np.where(lam.real > 0, -GROWTH_STEP * lam.real + 1j * lam.imag, lam)
    tableau = TABLEAUS[scheme]
    dt = _largest_stable_scale(tableau, lam, 1.0 / radius)
    if dt * radius < 1e-3:
        raise RuntimeInputError(
            f"scheme '{scheme}' is not stable for this problem at any useful time step "
            f"(its operator has eigenvalues near the imaginary axis, |lambda| ~ {radius:.3g})",
            hint="use rk4 or ssprk3, whose stability regions contain part of the imaginary axis",
            code="R541",
        )
    return min(span, SAFETY * dt)
