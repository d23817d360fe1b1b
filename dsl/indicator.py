"""Comparisons and ``and``/``or``/``not`` as numbers: 1 where the condition holds, else 0.

ritz has no boolean type. A condition is a 0/1 indicator of two real arguments, as
``(x > 0.5) * u0`` reads in NumPy or JAX: ``a > b`` is ``[a > b]``, ``a < b`` is ``[b > a]``,
``a <= b`` is ``[b >= a]``, ``a != b`` is ``1 - [a == b]``. The indicators are SymPy functions
whose derivative is zero (what autograd frameworks take at the jump too), so every derivative
the compiler forms, in space, in time, by the adjoint or through a network, stays finite without
a special case; they are not SymPy's relational logic, which would read ``u and 1`` as ``u``.
``and``/``or``/``not`` read any number as a condition (non-zero holds) and give an indicator,
never an operand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy


class _Indicator(sympy.Function):
    """1 where ``holds(a, b)``, else 0; constant on each side of the jump. The two sides stay
    separate arguments, so the comparison runs on them as written: ``v + 0.3 > 1.1`` is not
    rearranged into ``v - 0.8 > 0``, which rounds differently."""

    nargs = 2
    symbol = ""

    @staticmethod
    def holds(a: Any, b: Any) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def eval(cls, a: Any, b: Any) -> Any:
        real_scalars(a, b)
        if all(v.is_number and v.is_real and v.is_finite for v in (a, b)):
            return sympy.Integer(int(bool(cls.holds(float(a), float(b)))))
        return None

    @classmethod
    def numpy(cls, a: Any, b: Any) -> Any:
        """The indicator on arrays (for NumPy evaluation of compiler expressions)."""
        return np.where(cls.holds(np.asarray(a), np.asarray(b)), 1.0, 0.0)

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)

    def _eval_is_real(self) -> bool:
        return True

    def _sympystr(self, printer: Any) -> str:
        a, b = (printer._print(v) for v in self.args)
        return f"[{a} {self.symbol} {b}]"


class Greater(_Indicator):
    """``[a > b]``"""

    symbol = ">"

    @staticmethod
    def holds(a: Any, b: Any) -> Any:
        return a > b


class GreaterEqual(_Indicator):
    """``[a >= b]``"""

    symbol = ">="

    @staticmethod
    def holds(a: Any, b: Any) -> Any:
        return a >= b


class Equal(_Indicator):
    """``[a == b]``"""

    symbol = "=="

    @staticmethod
    def holds(a: Any, b: Any) -> Any:
        return a == b


INDICATORS: tuple[type[_Indicator], ...] = (Greater, GreaterEqual, Equal)


def compare(relation: str, a: Any, b: Any) -> sympy.Expr:
    """``a REL b`` (REL one of lt, le, gt, ge, eq, ne) as an indicator of real scalars."""
    if relation == "gt":
        return Greater(a, b)
    if relation == "lt":
        return Greater(b, a)
    if relation == "ge":
        return GreaterEqual(a, b)
    if relation == "le":
        return GreaterEqual(b, a)
    if relation == "eq":
        return Equal(a, b)
    if relation == "ne":
        return 1 - Equal(a, b)
    raise ValueError(f"unknown relation {relation!r}")


def logical_not(a: Any) -> sympy.Expr:
    if isinstance(a, _Indicator):
        return 1 - a
    return Equal(a, 0)


def logical_and(a: Any, b: Any) -> sympy.Expr:
    return (1 - logical_not(a)) * (1 - logical_not(b))


def logical_or(a: Any, b: Any) -> sympy.Expr:
    return 1 - logical_not(a) * logical_not(b)


def real_scalars(*values: Any) -> None:
    """Operands of a comparison or a remainder: vectors and complex numbers have no order (the
    TypeError becomes a diagnostic where the operator is written)."""
    for value in values:
        if not isinstance(value, sympy.Expr) or isinstance(value, sympy.MatrixBase):
            raise TypeError("a comparison or a remainder needs scalar operands, not a vector")
        if value.is_number and value.is_real is False:
            raise TypeError(f"a complex number has no order: {value}")
