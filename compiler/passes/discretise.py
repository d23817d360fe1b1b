"""discretise: Diff ops -> centred finite-difference stencils of Shift ops.

Input: a Program whose Diff ops apply to Inputs or to other Diffs (mixed derivatives).
Output: no Diff ops remain; each becomes a Map of ``sum w * Shift(...)(u) / h^n`` whose weights
come from ``sympy.finite_diff_weights`` at accuracy ``ctx.order``. Shifts carry the field name as
their boundary key, so that the ghost values beyond a face follow that field's condition.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..ir.ops import LEAVES, Diff, Input, Op, Shift, Spacing, placeholder
from ..ir.program import Builder, Program, rebuild
from ..symbolic import fd_weights
from .manager import PassContext


def _stencil(prog: Program, i: int, order: int) -> tuple[Input, dict[tuple[int, ...], sympy.Expr]]:
    """The base Input of a Diff chain and its stencil {offsets: coefficient (with h symbols)}."""
    op = prog.ops[i]
    if isinstance(op, Input):
        ndim = len(op.shape)
        return op, {(0,) * ndim: sympy.Integer(1)}
    if not isinstance(op, Diff):
        raise TypeError(f"derivative of a {op.kind}: the front end must expand it")
    base, inner = _stencil(prog, op.args[0], order)
    h = sympy.Symbol(f"h{op.axis}")
    out: dict[tuple[int, ...], sympy.Expr] = {}
    for offsets, coef in inner.items():
        for k, w in fd_weights(op.order, order):
            shifted = list(offsets)
            shifted[op.axis] += k
            key = tuple(shifted)
            out[key] = out.get(key, sympy.Integer(0)) + coef * w / h**op.order
    return base, {k: v for k, v in out.items() if v != 0}


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
        base_op, stencil = _stencil(prog, index, ctx.order)
        base = b.add(base_op)
        leaves: list[int] = []
        body = sympy.Integer(0)
        spacing_symbols = {}
        for offsets, coef in sorted(stencil.items()):
            leaves.append(shifted(b, base, base_op, offsets, base_op.name))
            body += coef * placeholder(len(leaves) - 1)
        for axis in range(len(base_op.shape)):
            h = sympy.Symbol(f"h{axis}")
            if body.has(h):
                leaves.append(b.add(Spacing(axis=axis, dtype=base_op.dtype)))
                spacing_symbols[h] = placeholder(len(leaves) - 1)
        return b.map(body.subs(spacing_symbols), leaves, op.origin)

    return rebuild(prog, rewrite)
