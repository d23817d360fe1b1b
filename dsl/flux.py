"""Derivatives kept in conservative (flux) form: ``diff(F, x)`` and ``diff(G, x, 2)`` whole.

The chain rule turns ``div(k(u) * grad(u))`` into ``k(u) lap(u) + k'(u) |grad(u)|^2``, which is
the same operator in the limit but not on a grid: its centred stencils do not telescope, so the
discrete scheme loses conservation (the total of u drifts under no-flux conditions), and
Newton's first Jacobian of a steady problem carries the ``k'(u) u_x^2`` term with u_x ~ 1/h at a
face, which can pull the iteration to a spurious discrete root. With a coefficient that jumps
the chain rule has no pointwise value at all (a delta function at the interface).

So a derivative whose argument is not linear with constant (along the axis) coefficients in the
fields is kept as ``FluxDiff(F, axis, order)``, and the compiler discretises it as peers do:

- order 1 with a derivative along the axis inside (a flux, ``k(u) * diff(u, x)``): F is
  evaluated on the cell faces from face-interpolated values and face derivatives, and its
  staggered difference taken (``(F[i+1/2] - F[i-1/2]) / h`` at second order);
- order 2 (``lap(u^3)``, ``diff(f(u), x, 2)``): the centred stencil applied to F evaluated at
  the neighbouring cells, as Devito and py-pde do for a derivative of an expression.

Both telescope, so sums over the grid are conserved exactly. Order-1 derivatives of expressions
without a derivative along the axis (``diff(u^2 / 2, x)``, transport) keep the chain rule, on
which the characteristic analysis of transported fields rests. The analyses of the checker
(which fields are differentiated how often, boundary counts, characteristics) read the chain
rule expansion, ``expand_fluxes``; the discretisation reads the form as written.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.core.function import AppliedUndef

from .source import Span


class FluxDiff(sympy.Function):
    """``d^order flux / d axis^order``, kept whole for a conservative discretisation."""

    nargs = 3

    @classmethod
    def eval(cls, flux: Any, axis: Any, order: Any) -> None:
        return None

    @property
    def flux(self) -> Any:
        return self.args[0]

    @property
    def axis(self) -> sympy.Symbol:
        return self.args[1]

    @property
    def order(self) -> int:
        return int(self.args[2])

    def _eval_derivative(self, s: Any) -> Any:
        return sympy.diff(expand_fluxes(self, None, strict=False), s)


def flux_form(inner: Any, axis: sympy.Symbol, order: int) -> bool:
    """Whether ``d^order inner / d axis^order`` is kept whole (see the module docstring)."""
    if order not in (1, 2) or inner.has(FluxDiff):
        return False
    derivs = [d for d in inner.atoms(sympy.Derivative) if isinstance(d.expr, AppliedUndef)]
    fields = inner.atoms(AppliedUndef)
    if not fields:
        return False
    if order == 1 and not any(axis in d.variables for d in derivs):
        return False
    slots = {d: sympy.Dummy("d") for d in derivs}
    frozen = inner.xreplace(slots)
    field_slots = {f: sympy.Dummy("f") for f in frozen.atoms(AppliedUndef)}
    frozen = frozen.xreplace(field_slots)
    every = [*slots.values(), *field_slots.values()]
    for s in every:
        coeff = sympy.diff(frozen, s)
        if coeff.has(*every) or axis in coeff.free_symbols:
            return True
    return False


def expand_fluxes(expr: Any, span: Span | None, strict: bool = True) -> Any:
    """``expr`` with each FluxDiff expanded by the chain rule.

    ``strict``: a delta function in the expansion (a coefficient that jumps) is refused (R328),
    as for any derivative taken by the chain rule; otherwise, for the checker's analyses, which
    only ask which derivatives occur, it is dropped, as are derivatives of jumps."""
    from .check.space_diff import space_diff  # the chain rule, with its real-name handling

    if not isinstance(expr, sympy.Basic) or not expr.has(FluxDiff):
        return expr
    if isinstance(expr, sympy.MatrixBase):
        return expr.applyfunc(lambda e: expand_fluxes(e, span, strict))

    def expand(node: Any) -> Any:
        inner = expand_fluxes(node.flux, span, strict)
        return space_diff(inner, node.axis, node.order, span, strict=strict)

    return expr.replace(lambda e: isinstance(e, FluxDiff), expand)
