"""``a % b`` as written: Python's remainder (the sign of the divisor), kept whole.

SymPy's ``Mod`` canonicalises its arguments: ``v % 0.1`` becomes ``0.1 * ((10 * v) % 1)``,
which differs from the remainder computed in double by a whole period for about two in five
values of v rounded to one decimal. ``Remainder`` keeps the two operands as written and folds
only numbers; its derivative is 1 in a and -floor(a / b) in b (off the jumps, where a / b is a
whole number).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from .indicator import real_scalars


class Remainder(sympy.Function):
    """``a % b`` with Python's (and NumPy's) sign convention."""

    nargs = 2

    @classmethod
    def eval(cls, a: Any, b: Any) -> Any:
        real_scalars(a, b)
        if not all(v.is_number and v.is_real and v.is_finite for v in (a, b)) or b.is_zero:
            return None
        if a.is_Rational and b.is_Rational:
            return sympy.Mod(a, b)  # exact integers and fractions stay exact
        return sympy.Float(float(a) % float(b))

    @staticmethod
    def numpy(a: Any, b: Any) -> Any:
        return np.mod(a, b)

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        a, b = self.args
        return sympy.Integer(1) if argindex == 1 else -sympy.floor(a / b)

    def _eval_is_real(self) -> bool | None:
        return True if all(v.is_real for v in self.args) else None

    def _sympystr(self, printer: Any) -> str:
        a, b = (printer.parenthesize(v, 100) for v in self.args)
        return f"({a} % {b})"
