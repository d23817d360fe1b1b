"""SymPy -> Python/Numba scalar expressions: strict, with exact float literals and expanded
small integer powers (what LLVM vectorises best)."""

from __future__ import annotations

import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

_MAX_EXPANDED_POWER = 8


class NumbaPrinter(PythonCodePrinter):
    """Prints scalar kernel bodies; anything it does not know raises instead of guessing."""

    printmethod = "_numbacode"

    def __init__(self, dtype: str = "float64", fast_tanh: bool = False) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})
        self.dtype = dtype
        self.fast_tanh = fast_tanh  # call the module's ``tanh32`` (see numba_network.TANH32)

    def _print(self, expr: object, **kwargs: object) -> str:
        """A constant subexpression (``sqrt(2/pi)``, ``log(2)``) is one literal of the dtype:
        a ``math`` call on it would compute in float64 and promote a float32 kernel's
        arithmetic (and its tanh) to float64."""
        if (
            isinstance(expr, sympy.Expr)
            and not isinstance(expr, sympy.Integer | sympy.Float | sympy.Rational)
            and expr.is_number
            and expr.is_real
        ):
            return self._literal(float(expr.evalf(20)))
        return super()._print(expr, **kwargs)

    def _print_Heaviside(self, expr: sympy.Expr) -> str:
        z = self._print(expr.args[0])
        at_zero = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        one, zero, mid = (self._literal(v) for v in (1.0, 0.0, at_zero))
        return f"({one} if {z} > 0 else ({mid} if {z} == 0 else {zero}))"

    def _indicator(self, expr: sympy.Expr) -> str:
        """``[a > b]`` and its kin (dsl/indicator.py): 1 or 0 of the kernel's dtype."""
        a, b = (self.parenthesize(v, PRECEDENCE["Relational"]) for v in expr.args)
        one, zero = self._literal(1.0), self._literal(0.0)
        return f"({one} if {a} {expr.symbol} {b} else {zero})"

    _print_Greater = _print_GreaterEqual = _print_Equal = _indicator

    def _print_Remainder(self, expr: sympy.Expr) -> str:
        # always bracketed: printed as SymPy prints Mod (ranked with Mul), ``-a*(b % c)`` would
        # be ``-a*b % c``, which Python reads as ``(-a*b) % c``
        a, b = (self.parenthesize(v, PRECEDENCE["Mul"] + 1) for v in expr.args)
        return f"({a} % {b})"

    def _print_sign(self, expr: sympy.Expr) -> str:
        z = self._print(expr.args[0])
        one, zero, minus = (self._literal(v) for v in (1.0, 0.0, -1.0))
        return f"({one} if {z} > 0 else ({minus} if {z} < 0 else {zero}))"

    def _print_tanh(self, expr: sympy.Expr) -> str:
        if self.fast_tanh:
            return f"tanh32({self._print(expr.args[0])})"
        return f"math.tanh({self._print(expr.args[0])})"

    def _literal(self, value: float) -> str:
        text = repr(float(value))
        return f"np.float32({text})" if self.dtype == "float32" else text

    def _print_Float(self, expr: sympy.Float) -> str:
        return self._literal(float(expr))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return self._literal(float(expr))

    def _print_Integer(self, expr: sympy.Integer) -> str:
        # beyond 2^53 an integer is not exact in a double anyway, and beyond 2^63 Numba cannot
        # type it (2^70 * u): such constants are printed as the doubles they act as
        if abs(int(expr)) > 2**53:
            return self._literal(float(expr))
        return str(int(expr))

    def _print_Pi(self, expr: sympy.Basic) -> str:
        return self._literal(float(sympy.pi))

    def _print_Exp1(self, expr: sympy.Basic) -> str:
        return self._literal(float(sympy.E))

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 1 <= abs(int(exp)) <= _MAX_EXPANDED_POWER:
            b = self.parenthesize(base, PRECEDENCE["Pow"])
            prod = "*".join([b] * abs(int(exp)))
            if abs(int(exp)) > 1:
                prod = f"({prod})"
            return prod if exp > 0 else f"{self._literal(1.0)}/{prod}"
        if exp == sympy.S.Half:
            return f"math.sqrt({self._print(base)})"
        if exp == -sympy.S.Half:
            return f"{self._literal(1.0)}/math.sqrt({self._print(base)})"
        return super()._print_Pow(expr, rational=rational)
