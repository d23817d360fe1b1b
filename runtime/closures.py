"""Checks of the boundary closures on the grid and parameters a solve asked for.

A condition ``alpha*u + beta*du/dx = data`` is imposed through ghost values that are rational in
the grid spacing h: at degree 2 on the low face they divide by ``3*alpha*h - 8*beta``. With
beta/alpha of the sign that feeds energy in through the face, one spacing makes the closure
singular, and spacings near it amplify the ghost values without bound: the run would give large,
wrong numbers and no error. This check refuses such grids before anything runs.

A face that the program leaves without a condition (an outflow face of a transported field) is
checked again with the run's parameters: a parameter can turn the flow around.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import sympy

from ..dsl.check.characteristics import open_faces
from ..dsl.diagnostics import RuntimeInputError

#: a closure that is singular at h = h_pole > 0 needs h <= MARGIN * h_pole: nearer the pole the
#: ghost values are amplified (three times at half of it, without bound at it), a spurious
#: growing mode appears, and past it the closure changes sign
MARGIN = 0.5
_SAMPLES = 9  # face points per axis at which coordinate-dependent alpha and beta are checked
_TIMES = 65  # times in [t0, t1] at which time-dependent ones are


@cache
def _denominator(degree: int, side: str) -> tuple[sympy.Expr, sympy.Expr]:
    """The ghost values' common denominator as its (alpha*h term, beta term)."""
    from ..compiler.symbolic import GHOST_ALPHA, GHOST_BETA, GHOST_H, ghost_values

    den = sympy.fraction(sympy.together(ghost_values(degree, 1, side)[0]))[1]
    den = sympy.expand(den)
    h_term = den.coeff(GHOST_ALPHA).coeff(GHOST_H)
    b_term = den.coeff(GHOST_BETA)
    if sympy.expand(den - h_term * GHOST_ALPHA * GHOST_H - b_term * GHOST_BETA) != 0:
        raise ValueError(f"unexpected ghost denominator {den}")
    return h_term, b_term


def _values(
    exprs: tuple[sympy.Expr, ...], subs: dict, axes: list[tuple[sympy.Symbol, np.ndarray]]
) -> list[tuple[float, ...]]:
    """``exprs`` together at every combination of the sampled coordinates (and times) that any
    of them uses; empty where one depends on something not known before the run."""
    exprs = tuple(sympy.sympify(e).xreplace(subs) for e in exprs)
    used = [(s, pts) for s, pts in axes if any(e.has(s) for e in exprs)]
    grids = np.meshgrid(*[pts for _, pts in used], indexing="ij") if used else []
    count = grids[0].size if used else 1
    out = []
    for k in range(count):
        point = {s: sympy.Float(g.flat[k]) for (s, _), g in zip(used, grids, strict=True)}
        values = [e.xreplace(point) for e in exprs]
        if any(v.free_symbols for v in values):
            return []
        out.append(tuple(float(v) for v in values))
    return out


def check_robin_closures(
    problem: Any, faces: Any, grid: Any, params: dict, span: tuple[float, float]
) -> None:
    """Raise R509 where a derivative condition's closure is near-singular on ``grid`` at some
    time of the run ``span`` = (t0, t1) (alpha and beta may depend on t)."""
    specs = {(b.field, b.axis, b.side): b for b in problem.boundaries}
    names = [a.name for a in problem.axes]
    subs: dict[sympy.Basic, sympy.Basic] = {
        sympy.Symbol(k): sympy.Float(float(v)) for k, v in params.items()
    }
    times: list[tuple[sympy.Symbol, np.ndarray]] = []
    if problem.time is not None:
        times = [(sympy.Symbol(problem.time.name), np.linspace(span[0], span[1], _TIMES))]
    for field, axis, side, degree in faces:
        spec = specs.get((field, names[axis], side))
        if spec is None:  # a derived field (a velocity): its field's own condition is checked
            continue
        h = grid.spacing[axis]
        lo, hi = grid.bounds[axis]
        face_subs = dict(subs)
        face_subs[sympy.Symbol(names[axis])] = sympy.Float(lo if side == "lo" else hi)
        sampled = []
        for b, name in enumerate(names):
            if b != axis:
                centres = grid.centres(b)
                idx = np.unique(np.linspace(0, len(centres) - 1, _SAMPLES).round().astype(int))
                sampled.append((sympy.Symbol(name), centres[idx]))
        sampled += times
        c_h, c_b = (float(c) for c in _denominator(degree, side))
        worst: tuple[float, float] | None = None  # the nearest pole: (h_pole, beta/alpha)
        for alpha, beta in _values((spec.alpha, spec.beta), face_subs, sampled):
            if alpha == 0 or beta == 0:
                continue
            h_pole = -c_b * beta / (c_h * alpha)  # where c_h*alpha*h + c_b*beta vanishes
            if h_pole > 0 and (worst is None or h_pole < worst[0]):
                worst = (h_pole, beta / alpha)
        if worst is not None and h > MARGIN * worst[0] * (1 + 1e-9):
            _refuse(spec, names[axis], side, h, worst[0], worst[1], hi - lo)


def _refuse(spec, axis, side, h, h_pole, beta_over_alpha, length) -> None:
    cells = int(np.ceil(length / (MARGIN * h_pole) - 1e-9))
    raise RuntimeInputError(
        f"the condition on {spec.field} at the {side} face of {axis} (beta/alpha = "
        f"{beta_over_alpha:.4g}) feeds {spec.field} in through the face, and its boundary closure "
        f"is singular at h = {h_pole:.4g}: it needs h <= {MARGIN * h_pole:.4g}, this grid has "
        f"h = {h:.4g}",
        hint=f"use at least {cells} cells along {axis} (a boundary layer of width about "
        f"{abs(beta_over_alpha):.3g} must be resolved), or check the sign of beta: "
        f"alpha*u + beta*d{spec.field}/d{axis} = data",
        code="R509",
        span=spec.span,
    )


def check_outflow_faces(problem: Any, params: dict, span: tuple[float, float]) -> None:
    """Raise R544 where a face left without a condition (an outflow face at the parameters the
    program declares) lets a characteristic in at the parameters of this run."""
    given = {(b.field, b.axis, b.side) for b in problem.boundaries}
    for face in open_faces(problem.equations, problem.axes, problem.time, params, given, span):
        if face.reason:
            at = next(a for a in problem.axes if a.name == face.axis)
            where = f"{face.axis} = {at.lo if face.side == 'lo' else at.hi:g}"
            raise RuntimeInputError(
                f"{', '.join(face.missing)} {'have' if len(face.missing) > 1 else 'has'} no "
                f"condition at {where}, which the program leaves as an outflow face, but with "
                f"these parameters {face.reason}",
                hint=f"add 'boundary {face.missing[0]} = ... at {where}' or keep the parameters "
                "that make the flow leave there",
                code="R544",
                span=problem.span,
            )
