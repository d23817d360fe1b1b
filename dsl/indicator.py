"""Comparisons and ``and``/``or``/``not`` as numbers: 1 where the condition holds, else 0.

ritz has no boolean type. A condition is a 0/1 indicator of one real argument, as
``(x > 0.5) * u0`` reads in NumPy or JAX: ``a > b`` is ``[a - b > 0]``, ``a >= b`` is
``[a - b >= 0]``, ``a == b`` is ``[a - b == 0]`` (for finite doubles ``a > b`` holds exactly when
``a - b > 0`` does). The indicators are SymPy functions whose derivative is zero (what autograd
frameworks take at the jump too), so every derivative the compiler forms, in space, in time, by
the adjoint or through a network, stays finite without a special case; they are not SymPy's
relational logic, which would read ``u and 1`` as ``u``. ``and``/``or``/``not`` read any
number as a condition (non-zero holds) and give an indicator, never an operand.
"""

from __future__ import annotations

from typing import Any

import sympy


class _Indicator(sympy.Function):
    """1 where ``holds(z)``, else 0; constant on each side of the jump."""

    nargs = 1
    symbol = ""

    @classmethod
    def holds(cls, z: float) -> bool:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def eval(cls, z: Any) -> Any:
        if z.is_number and z.is_real and z.is_finite:
            return sympy.Integer(int(cls.holds(float(z))))
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)

    def _eval_is_real(self) -> bool:
        return True

    def _sympystr(self, printer: Any) -> str:
        return f"[{printer._print(self.args[0])} {self.symbol} 0]"


class IsPositive(_Indicator):
    """``[z > 0]``"""

    symbol = ">"

    @classmethod
    def holds(cls, z: float) -> bool:
        return z > 0


class IsNonNegative(_Indicator):
    """``[z >= 0]``"""

    symbol = ">="

    @classmethod
    def holds(cls, z: float) -> bool:
        return z >= 0


class IsZero(_Indicator):
    """``[z == 0]``"""

    symbol = "=="

    @classmethod
    def holds(cls, z: float) -> bool:
        return z == 0


INDICATORS: tuple[type[_Indicator], ...] = (IsPositive, IsNonNegative, IsZero)


def compare(relation: str, a: Any, b: Any) -> sympy.Expr:
    """``a REL b`` (REL one of lt, le, gt, ge, eq, ne) as an indicator of real scalars."""
    _real_scalar(a)
    _real_scalar(b)
    if relation == "gt":
        return IsPositive(a - b)
    if relation == "lt":
        return IsPositive(b - a)
    if relation == "ge":
        return IsNonNegative(a - b)
    if relation == "le":
        return IsNonNegative(b - a)
    if relation == "eq":
        return IsZero(a - b)
    if relation == "ne":
        return 1 - IsZero(a - b)
    raise ValueError(f"unknown relation {relation!r}")


def logical_not(a: Any) -> sympy.Expr:
    _real_scalar(a)
    if isinstance(a, _Indicator):
        return 1 - a
    return IsZero(a)


def logical_and(a: Any, b: Any) -> sympy.Expr:
    return (1 - logical_not(a)) * (1 - logical_not(b))


def logical_or(a: Any, b: Any) -> sympy.Expr:
    return 1 - logical_not(a) * logical_not(b)


def _real_scalar(value: Any) -> None:
    """Vectors and complex numbers have no order: the TypeError becomes a diagnostic."""
    if not isinstance(value, sympy.Expr) or isinstance(value, sympy.MatrixBase):
        raise TypeError("a comparison needs scalar operands, not a vector")
    if value.is_number and value.is_real is False:
        raise TypeError(f"a complex number has no order: {value}")
