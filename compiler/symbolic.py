"""SymPy helpers shared by the passes: finite-difference weights and ghost-value solutions.

Both are derived, never tabulated: weights come from ``sympy.finite_diff_weights``, ghost values
from solving the boundary condition for the coefficients of an interpolating polynomial.
"""

from __future__ import annotations

from functools import cache

import sympy


def stencil_radius(deriv: int, order: int) -> int:
    """Half-width of the centred stencil for d^deriv/dx^deriv at accuracy ``order``."""
    if deriv < 1 or order < 2 or order % 2:
        raise ValueError(f"no centred stencil for derivative {deriv} at order {order}")
    return (deriv + 1) // 2 + order // 2 - 1


@cache
def fd_weights(deriv: int, order: int) -> tuple[tuple[int, sympy.Rational], ...]:
    """Centred weights ``((offset, w), ...)`` with d^n u/dx^n ~ sum w u[i+offset] / h^n."""
    r = stencil_radius(deriv, order)
    offsets = list(range(-r, r + 1))
    weights = sympy.finite_diff_weights(deriv, offsets, 0)[deriv][-1]
    return tuple((k, sympy.nsimplify(w)) for k, w in zip(offsets, weights, strict=True) if w != 0)


def extrapolation_degree(order: int, deriv: int) -> int:
    """Degree of the polynomial that continues a field past a face.

    The ghost values are then accurate to O(h^(degree+1)); divided by h^deriv in the stencil this
    leaves an O(h^(order-1)) error on the boundary cells only, which keeps the global error at
    O(h^order) (one lost order at the boundary layer is recovered globally)."""
    return max(1, order + deriv - 2)


def partial(expr: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr:
    """d expr / d symbol almost everywhere: a step (Heaviside, the derivative of min, max, abs)
    has a zero derivative off one point, and there, like autograd frameworks, we take it zero
    (a DiracDelta could not be evaluated anyway).

    Powers of steps are reduced as they are off the step: an even power of sign(a) is 1, and
    a power of Heaviside(a) is Heaviside(a). They come from differentiating through abs, max or
    min twice (softplus written stably as max(z, 0) + log(1 + exp(-|z|)), huber, max(a, 0)^2),
    and where the function is twice differentiable this is the value at a = 0 too:
    softplus''(0) is 1/4 (not 0), and max(a, 0)^2 / 2 + min(a, 0)^2 / 2 has second derivative
    1 at 0 (not 1/2)."""
    d = sympy.diff(expr, symbol)
    if d.has(sympy.DiracDelta):
        d = d.replace(lambda e: isinstance(e, sympy.DiracDelta), lambda e: sympy.Integer(0))
    if d.has(sympy.sign) or d.has(sympy.Heaviside):
        d = d.replace(_step_power, _step_power_value)
    return d


def _step_power(e: sympy.Basic) -> bool:
    return (
        isinstance(e, sympy.Pow)
        and isinstance(e.base, sympy.sign | sympy.Heaviside)
        and e.exp.is_Integer
        and bool(e.exp > 0)
    )


def _step_power_value(e: sympy.Pow) -> sympy.Expr:
    if isinstance(e.base, sympy.Heaviside):
        return e.base
    return sympy.Integer(1) if int(e.exp) % 2 == 0 else e.base


GHOST_DATA = sympy.Symbol("g_data")
GHOST_ALPHA = sympy.Symbol("g_alpha")
GHOST_BETA = sympy.Symbol("g_beta")
GHOST_H = sympy.Symbol("g_h", positive=True)


def interior_symbol(i: int) -> sympy.Symbol:
    """The value of the i-th interior cell counted from the face (i = 0 is next to it)."""
    return sympy.Symbol(f"g_u{i}")


@cache
def ghost_values(
    degree: int, layers: int, side: str, extrapolate: bool = False
) -> tuple[sympy.Expr, ...]:
    """Ghost values ``(g_1, ..., g_layers)`` beyond a face, g_1 nearest.

    A polynomial P(s) of ``degree`` in s = distance from the face in cells (inward positive)
    passes through the ``degree`` interior cell centres s = 1/2, 3/2, ... and satisfies
    ``alpha*P(0) + beta*du/dx = data`` at s = 0, where du/dx = +P'(0)/h on the low face and
    -P'(0)/h on the high face. Ghost j is P(-(j - 1/2)). The result is affine in the interior
    values and ``data``, rational in alpha, beta and h.

    ``extrapolate``: the face has no condition (an outflow face of a hyperbolic field), and P,
    of degree ``degree - 1``, passes through the ``degree`` interior centres alone.
    """
    if side not in ("lo", "hi"):
        raise ValueError(side)
    s = sympy.Symbol("s")
    coeffs = sympy.symbols(f"c0:{degree if extrapolate else degree + 1}")
    poly = sum(c * s**k for k, c in enumerate(coeffs))
    sign = 1 if side == "lo" else -1
    eqs = [
        sympy.Eq(poly.subs(s, sympy.Rational(2 * i + 1, 2)), interior_symbol(i))
        for i in range(degree)
    ]
    if not extrapolate:
        slope = sign * sympy.diff(poly, s).subs(s, 0) / GHOST_H
        eqs.append(sympy.Eq(GHOST_ALPHA * poly.subs(s, 0) + GHOST_BETA * slope, GHOST_DATA))
    sol = sympy.solve(eqs, coeffs, dict=True)
    if not sol:
        raise ValueError("boundary condition does not determine the ghost values")
    fitted = poly.subs(sol[0])
    return tuple(
        sympy.simplify(fitted.subs(s, -sympy.Rational(2 * j - 1, 2))) for j in range(1, layers + 1)
    )


def cse(exprs: list[sympy.Expr], prefix: str) -> tuple[list[tuple[sympy.Symbol, sympy.Expr]], list]:
    """Common-subexpression elimination with temporaries named ``prefix0, prefix1, ...``."""
    symbols = sympy.numbered_symbols(prefix, real=True)
    replacements, reduced = sympy.cse(exprs, symbols=symbols, optimizations="basic", order="none")
    return replacements, reduced
