"""integrate: right-hand sides -> the stage updates of an explicit Runge-Kutta step.

Input: a Program with one output ``rhs:<field>`` per state field (flat Maps over leaves and
Shift chains of Inputs). Output: a Program whose outputs are named ``stage<i>:<buffer>``: stage i
evaluates k_i = f(S_i) where S_1 is the state and S_m is buffer ``<field>@q<m>``, and adds
``dt * a[m][i] * k_i`` into every later stage input m (m = s + 1 is the new state, weights b).
So each stage's right-hand side and its stage combinations are one fused pass over memory, for
any Butcher tableau given as data.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..ir.ops import Input, StepSize, placeholder
from ..ir.program import Builder, Program
from .manager import PassContext, Tableau

TABLEAUS: dict[str, Tableau] = {
    t.name: t
    for t in (
        Tableau("euler", ((0.0,),), (1.0,), (0.0,), 1),
        Tableau("rk2", ((0.0, 0.0), (0.5, 0.0)), (0.0, 1.0), (0.0, 0.5), 2),
        Tableau(
            "ssprk3",
            ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.25, 0.25, 0.0)),
            (1 / 6, 1 / 6, 2 / 3),
            (0.0, 1.0, 0.5),
            3,
        ),
        Tableau(
            "rk4",
            ((0.0,) * 4, (0.5, 0.0, 0.0, 0.0), (0.0, 0.5, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0)),
            (1 / 6, 1 / 3, 1 / 3, 1 / 6),
            (0.0, 0.5, 0.5, 1.0),
            4,
        ),
    )
}


def stage_buffer(field: str, m: int) -> str:
    """Name of the buffer that accumulates the input of stage m (m = s+1: the new state)."""
    return f"{field}@q{m}"


def _row(t: Tableau, m: int) -> tuple[float, ...]:
    """Coefficients of k_1.. in the input of stage m (1-based); m = s+1 gives the weights b."""
    return t.b if m == t.stages + 1 else t.a[m - 1]


def stage_input(field: str, t: Tableau, m: int) -> str:
    """The buffer read by stage m: the state itself when no earlier stage contributes to it."""
    return stage_buffer(field, m) if any(_row(t, m)) else field


def _copy_into(b: Builder, prog: Program, i: int, rename: dict[str, str], memo: dict) -> int:
    """Copy value i of ``prog`` into ``b`` with Inputs renamed (stage inputs)."""
    if i in memo:
        return memo[i]
    op = prog.ops[i]
    if isinstance(op, Input):
        new = b.add(replace(op, name=rename.get(op.name, op.name)))
    elif op.args:
        new = b.add(replace(op, args=tuple(_copy_into(b, prog, a, rename, memo) for a in op.args)))
    else:
        new = b.add(op)
    memo[i] = new
    return new


def integrate(prog: Program, ctx: PassContext) -> Program:
    t = ctx.tableau
    if t is None:
        raise ValueError("integrate needs a tableau")
    fields = [name.split(":", 1)[1] for name in prog.outputs if name.startswith("rhs:")]
    b = Builder(prog.grid)
    b.boundaries = dict(prog.boundaries)
    s = t.stages
    dt = b.add(StepSize(dtype=ctx.dtype))
    for i in range(1, s + 1):
        rename = {f: stage_input(f, t, i) for f in fields}
        memo: dict[int, int] = {}
        for f in fields:
            k = _copy_into(b, prog, prog.outputs[f"rhs:{f}"], rename, memo)
            for m in range(i + 1, s + 2):
                coef = _row(t, m)[i - 1]
                if coef == 0:
                    continue
                started = any(_row(t, m)[: i - 1])
                prev = stage_buffer(f, m) if started else f
                shape = b.ops[k].shape
                prev_id = b.add(Input(name=prev, shape=shape, dtype=ctx.dtype))
                body = placeholder(0) + placeholder(1) * sympy.Float(coef) * placeholder(2)
                out = b.map(body, (prev_id, dt, k), b.ops[k].origin)
                b.output(f"stage{i}:{stage_buffer(f, m)}", out)
    return b.build()
