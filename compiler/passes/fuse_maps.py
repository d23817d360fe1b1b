"""Passes over gridless tensor Programs (networks, losses and their gradients) before printing.

- ``reuse_maps``: a Map whose body recomputes another Map's body over the same arguments reads
  that Map's result instead; this is what turns the derived ``1 - tanh(z)^2`` into
  ``1 - h^2`` with the forward activation ``h``, for every activation, not one by hand.
- ``hoist_calls``: a transcendental call inside a larger body (``tanh(z)`` in the derivative
  ``(1 - tanh(z)^2) * dz``) becomes a Map of its own, shared by every body that calls it on the
  same arguments: each element costs one call, not one per body (nested tangents of a PINN
  called tanh five times per element of a layer). Calls made once go back inline below.
- ``inline_maps``: a Map read by exactly one other Map of the same shape is substituted into
  it (one loop instead of two, and no array in between); identity Maps disappear.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from ..ir.ops import Map, Shape, placeholder
from ..ir.program import Builder, Program, copy_op, rebuild
from ..rules import compact_map, to_shape


def _has_call(body: sympy.Basic) -> bool:
    return any(isinstance(n, sympy.Function) for n in sympy.preorder_traversal(body))


def _map_pass(
    prog: Program, rewrite: Callable[[Builder, int, Map, tuple[int, ...]], int]
) -> Program:
    """Copy ``prog`` with every Map replaced by ``rewrite(builder, old id, map, new args)``."""
    b = Builder(prog.grid)
    new: dict[int, int] = {}
    for i, op in enumerate(prog.ops):
        args = tuple(new[a] for a in op.args)
        new[i] = rewrite(b, i, op, args) if isinstance(op, Map) else copy_op(b, op, args)
    for name, v in prog.outputs.items():
        b.output(name, new[v])
    return rebuild(b.build(), copy_op)


def kept_shape(b: Builder, made: int, shape: Shape) -> int:
    """``made`` with the shape of the Map it replaces: a body that no longer uses an argument
    (a gradient that is identically zero, a residual that is constant) drops it, and with it
    the argument's axes, which its readers still sum over and count."""
    return to_shape(b, made, shape)


def reuse_maps(prog: Program) -> Program:
    """Replace recomputed Map bodies by the Map values that already hold them."""
    maps: list[int] = []  # ids (in the new Program) of Maps whose bodies are worth reusing

    def rewrite(b: Builder, i: int, op: Map, args: tuple[int, ...]) -> int:
        body, extra = op.body, list(args)
        for m in reversed(maps):
            prev = b.ops[m]
            assert isinstance(prev, Map)
            if not set(prev.args) <= set(extra) or m in extra:
                continue
            pattern = prev.body.xreplace(
                {placeholder(k): placeholder(extra.index(a)) for k, a in enumerate(prev.args)}
            )
            if body.has(pattern) and body != pattern:
                body = body.xreplace({pattern: placeholder(len(extra))})
                extra.append(m)
        made = kept_shape(b, compact_map(b, body, extra, op.origin), op.shape)
        result = b.ops[made]
        if isinstance(result, Map) and _has_call(result.body):
            maps.append(made)
        return made

    return _map_pass(prog, rewrite)


EXPENSIVE = (
    sympy.exp,
    sympy.log,
    sympy.tanh,
    sympy.sinh,
    sympy.cosh,
    sympy.sin,
    sympy.cos,
    sympy.tan,
    sympy.atan,
    sympy.asin,
    sympy.acos,
    sympy.erf,
)


def hoist_calls(prog: Program) -> Program:
    """Give every transcendental call nested in a Map body a Map of its own (interned, so
    equal calls on equal arguments are one value)."""

    def rewrite(b: Builder, i: int, op: Map, args: tuple[int, ...]) -> int:
        body, extra = op.body, list(args)
        calls = {
            n
            for n in sympy.preorder_traversal(op.body)
            if isinstance(n, EXPENSIVE) and n != op.body and n.free_symbols
        }
        for call in sorted(calls, key=sympy.count_ops):  # inner calls first
            if not body.has(call):
                continue
            used = [k for k in range(len(extra)) if call.has(placeholder(k))]
            inner = call.xreplace({placeholder(k): placeholder(j) for j, k in enumerate(used)})
            value = compact_map(b, inner, [extra[k] for k in used], op.origin)
            body = body.xreplace({call: placeholder(len(extra))})
            extra.append(value)
        return kept_shape(b, compact_map(b, body, extra, op.origin), op.shape)

    return _map_pass(prog, rewrite)


def inline_maps(prog: Program) -> Program:
    """Substitute single-use Maps into the Maps that read them; drop identity Maps."""
    users = prog.users()
    outputs = set(prog.outputs.values())

    def rewrite(b: Builder, i: int, op: Map, args: tuple[int, ...]) -> int:
        subs: dict[sympy.Symbol, sympy.Expr] = {}
        extra: list[int] = []
        for k, (old, a) in enumerate(zip(op.args, args, strict=True)):
            src = b.ops[a]
            fusable = (
                isinstance(src, Map)
                and isinstance(prog.ops[old], Map)
                and users[old] == [i]
                and old not in outputs
                and src.shape in (op.shape, ())
            )
            if fusable:
                assert isinstance(src, Map)
                base = len(op.args) + len(extra)
                subs[placeholder(k)] = src.body.xreplace(
                    {placeholder(j): placeholder(base + j) for j in range(len(src.args))}
                )
                extra.extend(src.args)
        body = op.body.xreplace(subs) if subs else op.body
        all_args = [*args, *extra]
        if body == placeholder(0) and b.ops[all_args[0]].shape == op.shape:
            return all_args[0]
        return kept_shape(b, compact_map(b, body, all_args, op.origin), op.shape)

    return _map_pass(prog, rewrite)


__all__ = ["hoist_calls", "inline_maps", "reuse_maps"]
