"""Spatial derivatives of canonical pde expressions, taken by the chain rule.

The compiler discretises ``diff(f(u), x)`` as the chain rule expands it (``f'(u) * diff(u, x)``),
so the expansion must mean what the user wrote. Two things stand in the way:

- SymPy treats names as complex unless told: ``d|u|/dx`` comes out in ``re`` and ``im``. Every
  name (axis, time, parameter) and every field is made real for the differentiation and put
  back after, so ``abs``, ``max`` and ``min`` differentiate to signs and steps.
- A function that jumps along the axis (a comparison, ``sign``) has a delta function in its
  derivative, and so has a kink differentiated twice: no pointwise value, no stencil.
  Comparisons become steps for the differentiation, and every delta must vanish where it sits
  (``u * (u > 0)`` is relu: ``u * delta(u)`` is zero); one that does not is refused where the
  derivative is written (R328) instead of being dropped, which would silently lose what the
  jump means. ``floor``, ``ceiling``, ``%`` and ``==`` along the axis are refused at once.

Derivatives kept in flux form (dsl/flux.py: ``div(k * grad(u))`` with a piecewise k) are not
expanded here, except for the checker's analyses (``strict=False``).
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.core.function import AppliedUndef

from ..diagnostics import DslTypeError
from ..indicator import Equal, Greater, GreaterEqual
from ..remainder import Remainder
from ..source import Span

# jumps whose derivative is refused outright where they vary along the axis
JUMPS = (sympy.floor, sympy.ceiling, Remainder, Equal)

JUMP_HINT = (
    "a delta function has no value at a point: smooth the jump, e.g. "
    "0.5 * (1 + tanh((x - 0.5) / w)) for (x > 0.5). A jumping coefficient of a flux "
    "(div(k * grad(u)), diff(k * diff(u, x), x)) is fine with method fd, which takes fluxes on "
    "the cell faces"
)


def space_diff(
    expr: Any, axis: sympy.Symbol, order: int, span: Span | None, strict: bool = True
) -> Any:
    """``d^order expr / d axis^order`` with every name real; R328 where a delta would appear.

    ``strict=False`` (for analyses that only ask which derivatives of fields occur, of a
    derivative discretised in flux form): deltas and derivatives of jumps are dropped instead."""
    for jump in expr.atoms(*JUMPS):
        if strict and axis in jump.free_symbols:
            raise DslTypeError(
                f"the derivative along '{axis}' of {_show(jump)}, which jumps along '{axis}'",
                span,
                JUMP_HINT,
                "R328",
            )
    steps = {
        c: sympy.Heaviside(c.args[0] - c.args[1], 0 if isinstance(c, Greater) else 1)
        for c in expr.atoms(Greater, GreaterEqual)
        if axis in c.free_symbols
    }
    stepped = expr.xreplace(steps)
    to_real, back = _real_names(stepped)
    d = sympy.diff(stepped.xreplace(to_real), to_real.get(axis, axis), order).xreplace(back)
    if not strict:
        d = d.replace(
            lambda e: (
                isinstance(e, sympy.DiracDelta)
                or (isinstance(e, sympy.Derivative) and not isinstance(e.expr, AppliedUndef))
            ),
            lambda e: sympy.Integer(0),
        )
    if d.has(sympy.DiracDelta):
        d = _drop_null_deltas(d)
    deltas = d.atoms(sympy.DiracDelta)
    if deltas:
        where = min((_plain(delta.args[0]) for delta in deltas), key=len)
        raise DslTypeError(
            f"this derivative along '{axis}' has a delta function where {where} = 0: the "
            "expression jumps there (a comparison, sign), or has a kink (max, min, abs) "
            "differentiated twice",
            span,
            JUMP_HINT,
            "R328",
        )
    return d.xreplace({v: k for k, v in steps.items()})


def _drop_null_deltas(d: Any) -> Any:
    """Drop each ``delta(z)`` whose coefficient vanishes where z does: ``z * delta(z)`` is zero
    (``diff(abs(u - 1) * (u - 1), x, 2)`` has ``2 (u - 1) delta(u - 1) diff(u, x)^2``, and
    ``diff(max(u, 0)^2, x, 2)`` has ``2 max(u, 0) delta(u) diff(u, x)^2``). The coefficient is
    evaluated on z = 0 by solving z for one of its fields or names, in which it must be linear;
    anything not shown to vanish keeps its delta (and is refused)."""
    for delta in sorted(d.atoms(sympy.DiracDelta), key=sympy.default_sort_key):
        if len(delta.args) != 1:
            continue  # a derivative of delta: never a pointwise value
        slot = sympy.Dummy("delta")
        coeff = sympy.diff(d.xreplace({delta: slot}), slot)
        if coeff.has(slot) or not _vanishes_where_zero(coeff, delta.args[0]):
            continue
        d = d.xreplace({delta: sympy.Integer(0)})
    return d


def _vanishes_where_zero(coeff: Any, z: Any) -> bool:
    derivs = {g: sympy.Dummy("deriv") for g in coeff.atoms(sympy.Derivative)}
    frozen = coeff.xreplace(derivs)
    for name in [*sorted(z.atoms(AppliedUndef), key=str), *sorted(z.free_symbols, key=str)]:
        slope = sympy.diff(z, name)
        if slope == 0 or slope.has(name):
            continue
        root = sympy.simplify(name - z / slope)
        if root.has(name):
            continue
        return sympy.simplify(frozen.subs(name, root)) == 0
    return False


def _real_names(expr: Any) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Real stand-ins for the names and fields of ``expr``, and the way back."""
    symbols = {s: sympy.Dummy(s.name, real=True) for s in expr.free_symbols}
    fields: dict[Any, Any] = {}
    for f in expr.atoms(AppliedUndef):
        real_fn = sympy.Function(f.func.__name__, real=True)
        fields[f] = real_fn(*(a.xreplace(symbols) for a in f.args))
    to_real = {**symbols, **fields}
    back = {v: k for k, v in to_real.items()}
    return to_real, back


def _plain(e: Any) -> str:
    """``e`` as the user writes it: fields without their arguments (``u - 0.5``)."""
    return str(e.xreplace({f: sympy.Symbol(f.func.__name__) for f in e.atoms(AppliedUndef)}))


def _show(jump: Any) -> str:
    name = type(jump).__name__
    if isinstance(jump, Equal):
        return "a comparison (== or !=)"
    return "a remainder (%)" if name == "Remainder" else f"{name}()"
