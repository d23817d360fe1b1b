"""Which faces of a transported (first-order hyperbolic) field need a boundary condition.

A field that is differentiated only once along an axis is carried by characteristics: a face
needs exactly as many conditions as characteristics enter through it, and a condition on a face
that they leave through over-specifies the problem (the scheme must reflect the outgoing wave,
and the error there falls at one order less). So an outflow face may go without a condition:
its ghosts continue the interior. This module finds the entering characteristics from the
coefficients of the first derivatives, where those do not depend on the solution, and says
whether the conditions given on each face fix them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
from sympy.core.function import AppliedUndef

from .. import ast as A

_SAMPLES = 9  # points per other axis, and times, at which varying coefficients are checked


@dataclass(frozen=True)
class OpenFace:
    """A face of ``fields`` (transported along ``axis``) on which some have no condition, and
    why that does not determine the problem (``reason``; empty where it does)."""

    axis: str
    side: str
    missing: tuple[str, ...]
    reason: str


def transported_fields(equations: Sequence[A.FieldEquation], axis: str) -> tuple[str, ...]:
    """Fields differentiated along ``axis`` in some equation, only ever once and never mixed
    with another axis, each with an equation of first order in time."""
    first_order = {eq.field for eq in equations if eq.time_order == 1}
    return tuple(sorted(set(differentiated_once(equations, axis)) & first_order))


def differentiated_once(equations: Sequence[A.FieldEquation], axis: str) -> tuple[str, ...]:
    """Fields differentiated along ``axis`` in some equation, only ever once and never mixed
    with another axis."""
    once: set[str] = set()
    other: set[str] = set()
    x = sympy.Symbol(axis)
    for eq in equations:
        for d in eq.rhs.atoms(sympy.Derivative):
            if not isinstance(d.expr, AppliedUndef) or x not in d.variables:
                continue
            name = d.expr.func.__name__
            counts = dict(d.variable_count)
            if len(counts) == 1 and counts[x] == 1:
                once.add(name)
            else:
                other.add(name)
    return tuple(sorted(once - other))


def _coefficients(
    equations: Sequence[A.FieldEquation], fields: Sequence[str], axis: str, axes: Sequence[str]
) -> sympy.Matrix | None:
    """A with dt(f) = A d(f)/d(axis) + ...: A[i, j] is how equation i's right-hand side moves
    with d(field j)/d(axis); None where it depends on the solution (a nonlinear flux)."""
    by_field = {eq.field: eq.rhs for eq in equations}
    x = sympy.Symbol(axis)
    args = tuple(sympy.Symbol(a) for a in axes)
    slots = {f: sympy.Dummy(f"d{f}") for f in fields}
    rows = []
    for f in fields:
        rhs = by_field[f].xreplace(
            {sympy.Derivative(sympy.Function(g)(*args), x): s for g, s in slots.items()}
        )
        row = [sympy.diff(rhs, slots[g]) for g in fields]
        for entry in row:
            if entry.atoms(AppliedUndef) or entry.atoms(sympy.Derivative):
                return None
            if entry.free_symbols & set(slots.values()):
                return None
        rows.append(row)
    return sympy.Matrix(rows)


@dataclass(frozen=True)
class _Sample:
    """The characteristics at one point of a face (and one time)."""

    point: dict[sympy.Symbol, sympy.Float]
    entering: np.ndarray  # right eigenvectors (columns) of those entering through the face
    standing: int  # how many have speed zero there


def _characteristics(matrix: np.ndarray, side: str) -> tuple[np.ndarray, int] | None:
    """The entering right eigenvectors and the count of zero speeds; None where the system is
    not hyperbolic there (complex speeds, or too few eigenvectors)."""
    values, vectors = np.linalg.eig(matrix)
    scale = max(1.0, float(np.abs(values).max(initial=0.0)))
    if np.abs(values.imag).max(initial=0.0) > 1e-9 * scale:
        return None
    if np.linalg.cond(vectors) > 1e8:
        return None
    speeds = -values.real  # dt(w) = lambda dx(w) carries w at speed -lambda
    tol = 1e-12 * scale
    enter = speeds > tol if side == "lo" else speeds < -tol
    return np.real(vectors[:, enter]), int(np.sum(np.abs(speeds) <= tol))


def _samples(
    equations: Sequence[A.FieldEquation],
    fields: tuple[str, ...],
    axis: A.AxisSpec,
    side: str,
    axes: Sequence[A.AxisSpec],
    time: A.TimeSpec,
    params: Mapping[str, float],
    t0: float,
    t1: float,
) -> list[_Sample] | str:
    """The characteristics along a face (coefficients that vary are sampled along it and over
    the run's times), or why they cannot be known before the run."""
    at = axis.lo if side == "lo" else axis.hi
    listed = ", ".join(fields)
    matrix = _coefficients(equations, fields, axis.name, [a.name for a in axes])
    if matrix is None:
        return (
            f"the speed at which {listed} {'travel' if len(fields) > 1 else 'travels'} "
            f"along {axis.name} depends on the solution, so whether a characteristic enters at "
            f"{axis.name} = {at:g} is not known before the run"
        )
    subs: dict[sympy.Basic, sympy.Basic] = {
        sympy.Symbol(k): sympy.Float(v) for k, v in params.items()
    }
    subs[sympy.Symbol(axis.name)] = sympy.Float(at)
    matrix = matrix.xreplace(subs)
    sampled = [
        (sympy.Symbol(a.name), np.linspace(a.lo, a.hi, _SAMPLES)) for a in axes if a is not axis
    ]
    sampled.append((sympy.Symbol(time.name), np.linspace(t0, t1, _SAMPLES)))
    used = [(sym, pts) for sym, pts in sampled if matrix.has(sym)]
    grids = np.meshgrid(*[p for _, p in used], indexing="ij") if used else []
    count = grids[0].size if used else 1
    out = []
    for k in range(count):
        point = {sym: sympy.Float(g.flat[k]) for (sym, _), g in zip(used, grids, strict=True)}
        value = matrix.xreplace(point)
        if value.free_symbols:
            unknown = ", ".join(sorted(str(sym) for sym in value.free_symbols))
            return f"the transport speeds along {axis.name} depend on {unknown}"
        found = _characteristics(np.array(value.tolist(), dtype=float), side)
        if found is None:
            return (
                f"the first-order system of {listed} along {axis.name} is not hyperbolic (its "
                "speeds are not real, or it lacks a full set of characteristics)"
            )
        out.append(_Sample(point, *found))
    return out


def open_faces(
    equations: Sequence[A.FieldEquation],
    axes: Sequence[A.AxisSpec],
    time: A.TimeSpec | None,
    params: Mapping[str, float],
    given: Iterable[tuple[str, str, str]],
    span: tuple[float, float] | None = None,
) -> list[OpenFace]:
    """Every face on which a transported field has no condition, with the reason it needs one
    (``reason`` empty: the conditions given there fix every entering characteristic).

    ``given``: (field, axis, side) of the conditions; ``params``: the values the coefficients
    are judged with; ``span``: the times of the run (default: the problem's time interval).
    """
    given = set(given)
    out: list[OpenFace] = []
    for axis, side, fields, clock, t0, t1 in _faces(equations, axes, time, span):
        missing = tuple(f for f in fields if (f, axis.name, side) not in given)
        if missing:
            out.append(
                _judge(equations, fields, missing, axis, side, axes, clock, params, given, t0, t1)
            )
    return out


def _faces(
    equations: Sequence[A.FieldEquation],
    axes: Sequence[A.AxisSpec],
    time: A.TimeSpec | None,
    span: tuple[float, float] | None,
) -> Iterator[tuple[A.AxisSpec, str, tuple[str, ...], A.TimeSpec, float, float]]:
    """(axis, side, transported fields, time, t0, t1) of every non-periodic face of a
    time-dependent problem with fields transported across it."""
    if time is None:
        return
    t0, t1 = span if span is not None else (time.t0, time.t1)
    for axis in axes:
        fields = () if axis.periodic else transported_fields(equations, axis.name)
        for side in ("lo", "hi") if fields else ():
            yield axis, side, fields, time, t0, t1


def _judge(
    equations: Sequence[A.FieldEquation],
    fields: tuple[str, ...],
    missing: tuple[str, ...],
    axis: A.AxisSpec,
    side: str,
    axes: Sequence[A.AxisSpec],
    time: A.TimeSpec,
    params: Mapping[str, float],
    given: set[tuple[str, str, str]],
    t0: float,
    t1: float,
) -> OpenFace:
    samples = _samples(equations, fields, axis, side, axes, time, params, t0, t1)
    if isinstance(samples, str):
        return OpenFace(axis.name, side, missing, samples)
    given_rows = [i for i, f in enumerate(fields) if (f, axis.name, side) in given]
    for sample in samples:
        n_in = sample.entering.shape[1]
        if n_in and np.linalg.matrix_rank(sample.entering[given_rows, :], tol=1e-9) < n_in:
            fixed = [fields[i] for i in given_rows]
            reason = (
                f"{n_in} characteristic{'s' if n_in > 1 else ''} of {', '.join(fields)} "
                f"enter{'' if n_in > 1 else 's'} there"
                + (f" (at {_point(sample.point)})" if sample.point else "")
            )
            if fixed:
                reason += f", and the conditions on {', '.join(fixed)} do not fix "
                reason += "them" if n_in > 1 else "it"
            return OpenFace(axis.name, side, missing, reason)
    return OpenFace(axis.name, side, missing, "")


def over_specified(
    equations: Sequence[A.FieldEquation],
    axes: Sequence[A.AxisSpec],
    time: A.TimeSpec | None,
    params: Mapping[str, float],
    given: Iterable[tuple[str, str, str]],
    span: tuple[float, float] | None = None,
) -> list[tuple[str, str, tuple[str, ...], int]]:
    """(axis, side, fields given there, how many conditions the face can take) of every face
    on which transported fields have more conditions than characteristics enter or stand still,
    at every point of the face and every time: an outgoing wave cannot meet such a condition,
    and the scheme reflects it (a flow that enters through part of a face needs its condition
    there, and is left alone)."""
    given = set(given)
    out: list[tuple[str, str, tuple[str, ...], int]] = []
    for axis, side, fields, clock, t0, t1 in _faces(equations, axes, time, span):
        have = tuple(f for f in fields if (f, axis.name, side) in given)
        if not have:
            continue
        samples = _samples(equations, fields, axis, side, axes, clock, params, t0, t1)
        if isinstance(samples, str):
            continue
        room = max(x.entering.shape[1] + x.standing for x in samples)
        if len(have) > room:
            out.append((axis.name, side, have, room))
    return out


def _point(point: Mapping[sympy.Symbol, sympy.Float]) -> str:
    return ", ".join(f"{s} = {float(v):.4g}" for s, v in point.items())
