"""theta: right-hand sides -> the explicit half and the implicit residual of a theta step.

Input: a Program with one output ``rhs:<f>`` per state field (flat Maps over leaves and Shift
chains of Inputs, as ``simplify`` leaves them). Each right-hand side is split f = L + N into an
implicit part L and an explicit part N:

* ``cn`` (Crank-Nicolson): L = f, N = 0;
* ``imex``: L = the terms linear in the state with coefficients free of it (diffusion, linear
  reaction and advection), N = the rest, found symbolically in each Map body.

Output, with theta = 1/2 (the trapezoidal rule for L):

* ``explicit:<f>@b`` = u + dt * ((1 - theta) * L(u) + E), evaluated at time t, where the
  explicit part E is, for imex, the second-order Adams-Bashforth extrapolation
  3/2 N(u) - 1/2 N(u_prev) of N to the middle of the step (N(u_prev) is kept in ``<f>@n``, and
  ``explicit:<f>@n`` = N(u) stores this step's for the next);
* ``start:<f>@b`` and ``start:<f>@n``: the same with E = N(u), for a first step or after a
  change of dt, when no previous N of the same step size exists;
* ``res:<f>`` = w - theta * dt * L(w) - ``<f>@b``, evaluated at time t + dt with w in the
  buffers of the fields: zero at the new state.

So ``cn`` is the Crank-Nicolson scheme and ``imex`` the Crank-Nicolson/Adams-Bashforth scheme
(CNAB2), both of second order in time.

``linearize`` then derives J(w) v = v - theta * dt * dL/dw v, and the runtime solves res = 0 by
Newton's method each step: one step when L is linear (always for ``imex``), whose factorised
Jacobian is reused for as long as dt and the parameters stay the same.
"""

from __future__ import annotations

import sympy

from ..ir.ops import Input, Map, Shift, StepSize, placeholder
from ..ir.program import Builder, Program, copy_op
from .manager import PassContext

THETA = sympy.Rational(1, 2)


def rhs_buffer(field: str) -> str:
    """The buffer holding the explicit half of the step for ``field``."""
    return f"{field}@b"


def history_buffer(field: str) -> str:
    """The buffer holding the explicit part N of the previous step (imex)."""
    return f"{field}@n"


def _reads_state(prog: Program, i: int, fields: set[str]) -> bool:
    op = prog.ops[i]
    while isinstance(op, Shift):
        op = prog.ops[op.args[0]]
    return isinstance(op, Input) and op.name in fields


def split_linear(body: sympy.Expr, state: list[sympy.Symbol]) -> tuple[sympy.Expr, sympy.Expr]:
    """``body`` = linear + rest, where ``linear`` holds the terms of degree one in ``state``
    whose coefficients do not involve it."""
    linear = sympy.Integer(0)
    for term in sympy.Add.make_args(sympy.expand(body)):
        coeff, dep = term.as_independent(*state, as_Add=False)
        if dep in state and not coeff.has(*state):
            linear += term
    return linear, sympy.expand(body) - linear


def theta(prog: Program, ctx: PassContext) -> Program:
    scheme = ctx.scheme
    if scheme not in ("cn", "imex"):
        raise ValueError(f"theta needs scheme cn or imex, not {scheme!r}")
    fields = [name.split(":", 1)[1] for name in prog.outputs if name.startswith("rhs:")]
    b = Builder(prog.grid)
    b.boundaries = dict(prog.boundaries)
    ids: dict[int, int] = {}
    for i, op in enumerate(prog.ops):
        ids[i] = copy_op(b, op, tuple(ids[a] for a in op.args))
    dt = b.add(StepSize(dtype=ctx.dtype))
    for f in fields:
        value = prog.outputs[f"rhs:{f}"]
        op = prog.ops[value]
        body, args = (op.body, op.args) if isinstance(op, Map) else (placeholder(0), (value,))
        n = len(args)
        state = [placeholder(k) for k, a in enumerate(args) if _reads_state(prog, a, set(fields))]
        if scheme == "cn":
            implicit, explicit = body, sympy.Integer(0)
        else:
            implicit, explicit = split_linear(body, state)
        shape = b.ops[ids[value]].shape
        origin = getattr(op, "origin", None)
        u = b.add(Input(name=f, shape=shape, dtype=ctx.dtype))
        rhs = b.add(Input(name=rhs_buffer(f), shape=shape, dtype=ctx.dtype))
        prev = b.add(Input(name=history_buffer(f), shape=shape, dtype=ctx.dtype))
        base = (*(ids[a] for a in args), u, dt)  # placeholders 0..n-1, then u = n, dt = n + 1
        p_u, p_dt, p_extra = placeholder(n), placeholder(n + 1), placeholder(n + 2)
        residual = p_u - THETA * p_dt * implicit - p_extra  # the extra argument: b
        b.output(f"res:{f}", b.map(residual, (*base, rhs), origin))
        if scheme == "cn":
            half = p_u + p_dt * (1 - THETA) * implicit
            b.output(f"explicit:{rhs_buffer(f)}", b.map(half, base, origin))
            continue
        ab2 = sympy.Rational(3, 2) * explicit - sympy.Rational(1, 2) * p_extra  # extra: N(u_prev)
        half = p_u + p_dt * ((1 - THETA) * implicit + ab2)
        b.output(f"explicit:{rhs_buffer(f)}", b.map(half, (*base, prev), origin))
        start = p_u + p_dt * ((1 - THETA) * implicit + explicit)
        b.output(f"start:{rhs_buffer(f)}", b.map(start, base, origin))
        # N(u) alone (+ 0 * u keeps a field argument, so even a constant N lives on the grid)
        stored = b.map(explicit + 0 * p_u, base, origin)
        b.output(f"explicit:{history_buffer(f)}", stored)
        b.output(f"start:{history_buffer(f)}", stored)
    return b.build()
