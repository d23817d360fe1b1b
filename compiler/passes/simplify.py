"""simplify: inline Maps into Maps, so every output is one Map over leaves and Shift chains.

Input: any Program. Output: the same values, where no Map argument is itself a Map; argument
lists hold no duplicates; constant arguments are folded into bodies. Common subexpressions are
left to the printers' CSE, which sees whole kernels.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..ir.ops import LEAVES, Const, Map, Op, placeholder
from ..ir.program import Builder, Program, rebuild
from .manager import PassContext


def _flatten(b: Builder, body: sympy.Expr, args: tuple[int, ...], origin: object) -> int:
    leaves: list[int] = []
    subs: dict[sympy.Symbol, sympy.Expr] = {}
    for i, a in enumerate(args):
        op = b.ops[a]
        if isinstance(op, Const):
            subs[placeholder(i)] = (
                sympy.Float(op.value) if op.value % 1 else sympy.Integer(int(op.value))
            )
            continue
        if isinstance(op, Map):
            inner: dict[sympy.Symbol, sympy.Expr] = {}
            for j, ia in enumerate(op.args):
                if ia not in leaves:
                    leaves.append(ia)
                inner[placeholder(j)] = sympy.Symbol(f"_arg{leaves.index(ia)}")
            subs[placeholder(i)] = op.body.xreplace(inner)
            continue
        if a not in leaves:
            leaves.append(a)
        subs[placeholder(i)] = sympy.Symbol(f"_arg{leaves.index(a)}")
    flat = body.xreplace(subs)
    flat = flat.xreplace({sympy.Symbol(f"_arg{k}"): placeholder(k) for k in range(len(leaves))})
    return b.map(flat, leaves, origin) if leaves else b.map(flat, (), origin)


def simplify(prog: Program, ctx: PassContext) -> Program:
    def rewrite(b: Builder, op: Op, args: tuple[int, ...]) -> int:
        if isinstance(op, LEAVES):
            return b.add(op)
        if isinstance(op, Map):
            return _flatten(b, op.body, args, op.origin)
        return b.add(replace(op, args=args))

    return rebuild(prog, rewrite)
