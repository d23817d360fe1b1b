"""discretise: Diff ops -> centred finite-difference stencils of Shift ops.

Input: a Program whose Diff ops apply to Inputs, to other Diffs (mixed derivatives), or to a Map
over such leaves (a derivative in flux form, dsl/flux.py).
Output: no Diff ops remain; each becomes a Map of ``sum w * Shift(...)(u) / h^n`` whose weights
come from ``sympy.finite_diff_weights`` at accuracy ``ctx.order``. Shifts carry the field name as
their boundary key, so that the ghost values beyond a face follow that field's condition.

A Diff of a Map F is conservative: ``sum_s w_s F(x + s h) / h^n`` over positions s centred on
the cell, half-integer for an odd order (F on the faces: a staggered difference) and integer
for an even one. F at s has its leaves at s: a field and its derivatives by the
finite-difference weights for that point (interpolation on a face), a coordinate shifted by
``s h``. The differences telescope, so grid sums are conserved to rounding.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import sympy

from ..ir.ops import LEAVES, Coord, Diff, Input, Map, Op, Shift, Spacing, placeholder
from ..ir.program import Builder, Program, rebuild
from ..symbolic import fd_weights
from .manager import PassContext

Stencil = dict[tuple[int, ...], sympy.Expr]


def _stencil(
    prog: Program, i: int, order: int, at: tuple[int, sympy.Rational] | None = None
) -> tuple[Input, Stencil]:
    """The base Input of a Diff chain and its stencil {offsets: coefficient (with h symbols)},
    centred on the cell, or on position ``at = (axis, s)`` (s in cells, maybe half-integer)."""
    chain: dict[int, int] = {}
    op = prog.ops[i]
    while isinstance(op, Diff):
        chain[op.axis] = chain.get(op.axis, 0) + op.order
        op = prog.ops[op.args[0]]
    if not isinstance(op, Input):
        raise TypeError(f"derivative of a {op.kind}: the front end must expand it")
    out: Stencil = {(0,) * len(op.shape): sympy.Integer(1)}
    axes = set(chain) | ({at[0]} if at else set())
    for axis in sorted(axes):
        deriv = chain.get(axis, 0)
        s = at[1] if at and at[0] == axis else sympy.Integer(0)
        h = sympy.Symbol(f"h{axis}")
        weights = _point_weights(deriv, s, order)
        grown: Stencil = {}
        for offsets, coef in out.items():
            for k, w in weights:
                moved = list(offsets)
                moved[axis] += k
                key = tuple(moved)
                grown[key] = grown.get(key, sympy.Integer(0)) + coef * w / h**deriv
        out = {k: v for k, v in grown.items() if v != 0}
    return op, out


def _point_weights(
    deriv: int, s: sympy.Rational, order: int
) -> tuple[tuple[int, sympy.Rational], ...]:
    """Weights ``((offset, w), ...)`` with ``d^deriv u/dx^deriv (x + s h) ~ sum w u[i+offset] /
    h^deriv`` at accuracy ``order``: the centred stencil moved by s for an integer s, else the
    symmetric stencil about the half-integer s."""
    if s.is_integer:
        if deriv == 0:
            return ((int(s), sympy.Integer(1)),)
        return tuple((k + int(s), w) for k, w in fd_weights(deriv, order))
    return _half_weights(deriv, s, order)


@cache
def _half_weights(
    deriv: int, s: sympy.Rational, order: int
) -> tuple[tuple[int, sympy.Rational], ...]:
    points = deriv + order - 1
    points += points % 2  # symmetric about a half-integer: an even number of points
    first = s - sympy.Rational(points - 1, 2)
    offsets = [int(first + j) for j in range(points)]
    weights = sympy.finite_diff_weights(deriv, offsets, s)[deriv][-1]
    return tuple((k, sympy.nsimplify(w)) for k, w in zip(offsets, weights, strict=True) if w != 0)


def _positions(deriv: int, order: int) -> tuple[tuple[sympy.Rational, sympy.Rational], ...]:
    """``((s, w), ...)`` with d^deriv F/dx^deriv ~ sum w F(x + s h) / h^deriv, the s centred and
    half-integer for an odd ``deriv`` (a staggered difference)."""
    count = deriv + order - 1
    s = [sympy.Rational(2 * j - count + 1, 2) for j in range(count)]
    weights = sympy.finite_diff_weights(deriv, s, 0)[deriv][-1]
    return tuple((p, sympy.nsimplify(w)) for p, w in zip(s, weights, strict=True) if w != 0)


def shifted(b: Builder, base: int, base_op: Input, offsets: tuple[int, ...], key: str) -> int:
    """Nested Shift ops reading ``base`` at ``offsets`` under boundary rule ``key``."""
    value = base
    for axis, k in enumerate(offsets):
        if k:
            value = b.add(
                Shift(
                    args=(value,),
                    shape=base_op.shape,
                    dtype=base_op.dtype,
                    axis=axis,
                    offset=k,
                    boundary=key,
                )
            )
    return value


def discretise(prog: Program, ctx: PassContext) -> Program:
    def rewrite(b: Builder, op: Op, args: tuple[int, ...]) -> int:
        if isinstance(op, LEAVES):
            return b.add(op)
        if not isinstance(op, Diff):
            return b.add(replace(op, args=args))
        index = prog.ops.index(op)
        leaves: list[int] = []
        if isinstance(prog.ops[op.args[0]], Map):
            body = _conservative(b, prog, op, ctx.order, leaves)
        else:
            body = _read(b, prog, index, ctx.order, None, leaves)
        spacing_symbols = {}
        for axis in range(len(op.shape)):
            h = sympy.Symbol(f"h{axis}")
            if body.has(h):
                leaves.append(b.add(Spacing(axis=axis, dtype=op.dtype)))
                spacing_symbols[h] = placeholder(len(leaves) - 1)
        return b.map(body.subs(spacing_symbols), leaves, op.origin)

    return rebuild(prog, rewrite)


def _read(
    b: Builder,
    prog: Program,
    i: int,
    order: int,
    at: tuple[int, sympy.Rational] | None,
    leaves: list[int],
) -> sympy.Expr:
    """The Diff chain (or Input) ``i`` at the cell or at ``at``, as a body over ``leaves``."""
    base_op, stencil = _stencil(prog, i, order, at)
    base = b.add(base_op)
    body = sympy.Integer(0)
    for offsets, coef in sorted(stencil.items()):
        leaves.append(shifted(b, base, base_op, offsets, base_op.name))
        body += coef * placeholder(len(leaves) - 1)
    return body


def _conservative(b: Builder, prog: Program, op: Diff, order: int, leaves: list[int]) -> sympy.Expr:
    """The Diff of a Map in flux form (the module docstring), as a body over ``leaves``."""
    flux = prog.ops[op.args[0]]
    assert isinstance(flux, Map)
    h = sympy.Symbol(f"h{op.axis}")
    total = sympy.Integer(0)
    for s, w in _positions(op.order, order):
        at = (op.axis, s)
        values = {
            placeholder(j): _leaf_at(b, prog, arg, order, at, leaves)
            for j, arg in enumerate(flux.args)
        }
        total += w * flux.body.xreplace(values)
    return total / h**op.order


def _leaf_at(
    b: Builder,
    prog: Program,
    i: int,
    order: int,
    at: tuple[int, sympy.Rational],
    leaves: list[int],
) -> sympy.Expr:
    """Leaf ``i`` of a flux at position ``at``: fields and their derivatives by their weights
    for that point, the coordinate along the axis moved by ``s h``, anything else unchanged."""
    op = prog.ops[i]
    if isinstance(op, Input | Diff):
        return _read(b, prog, i, order, at, leaves)
    if isinstance(op, Map):
        raise TypeError("a flux inside a flux: the front end must expand the inner one")
    leaves.append(b.add(op))
    value = placeholder(len(leaves) - 1)
    if isinstance(op, Coord) and op.axis == at[0]:
        return value + at[1] * sympy.Symbol(f"h{op.axis}")
    return value
