"""SymPy -> CUDA C scalar expressions: strict, typed by dtype (``double`` or ``float``).

One table gives every function its C name; float32 programs get the ``f``-suffixed functions and
``f``-suffixed literals so that nothing is promoted to double behind the programmer's back.
Integers print as floating literals too: C's integer division must never reach a kernel body.
"""

from __future__ import annotations

import math

import sympy
from sympy.core.relational import Relational
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import ITE, And, BooleanFalse, BooleanTrue, Not, Or
from sympy.printing.c import C99CodePrinter
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.precedence import PRECEDENCE

from ...dsl.indicator import INDICATORS
from ...dsl.remainder import Remainder
from .base import IDENTIFIER, RESERVED

_MAX_EXPANDED_POWER = 8

#: SymPy function name -> C math function (double form; float32 appends ``f``)
FUNCTIONS: dict[str, str] = {
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "asin",
    "acos": "acos",
    "atan": "atan",
    "atan2": "atan2",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "exp": "exp",
    "log": "log",
    "erf": "erf",
    "floor": "floor",
    "ceiling": "ceil",
    "Abs": "fabs",
    "Min": "fmin",
    "Max": "fmax",
}

#: words C++ and CUDA reserve beyond C's (kernels are compiled as C++)
CUDA_RESERVED = frozenset(
    {
        "bool",
        "catch",
        "class",
        "delete",
        "dim3",
        "explicit",
        "export",
        "friend",
        "half",
        "mutable",
        "namespace",
        "new",
        "operator",
        "private",
        "protected",
        "public",
        "template",
        "this",
        "throw",
        "try",
        "typename",
        "using",
        "virtual",
        "blockDim",
        "blockIdx",
        "gridDim",
        "threadIdx",
        "warpSize",
    }
)

_NUMBER_TYPES = (sympy.Integer, sympy.Rational, sympy.Float, sympy.NumberSymbol)
_STRUCTURE_TYPES = (
    sympy.Symbol,
    sympy.Add,
    sympy.Mul,
    sympy.Pow,
    Relational,
    And,
    Or,
    Not,
    BooleanTrue,
    BooleanFalse,
    sympy.Piecewise,
    ITE,
    sympy.sign,
)


#: functions printed as ``?:`` selects rather than calls
_SELECTS = (sympy.Piecewise, sympy.sign, sympy.Heaviside, Remainder, *INDICATORS)


class CudaPrinter(C99CodePrinter):
    """Prints scalar kernel bodies as CUDA C; anything it does not know raises."""

    printmethod = "_cudacode"

    def __init__(self, dtype: str = "float64") -> None:
        if dtype not in ("float64", "float32"):
            raise ValueError(f"CudaPrinter: unsupported dtype {dtype!r}")
        super().__init__({"strict": True})
        self.dtype = dtype
        self.real = "float" if dtype == "float32" else "double"
        self.suffix = "f" if dtype == "float32" else ""

    # -- names and numbers ---------------------------------------------------------------------
    def name(self, text: str) -> str:
        """A safe identifier for ``text``: validated, reserved words renamed with a ``_``."""
        if not IDENTIFIER.match(text):
            raise ValueError(f"unsafe identifier in generated code: {text!r}")
        if text in RESERVED or text in CUDA_RESERVED:
            return text + "_"
        return text

    def literal(self, value: float) -> str:
        """A floating literal of the program's real type."""
        value = float(value)
        if not math.isfinite(value):
            raise PrintMethodNotImplementedError(f"non-finite constant {value!r} in a kernel")
        text = repr(value)
        if "e" not in text and "." not in text:
            text += ".0"
        return text + self.suffix

    def function(self, name: str) -> str:
        """The C math function for SymPy function ``name`` in this dtype."""
        return FUNCTIONS[name] + self.suffix

    # -- dispatch ------------------------------------------------------------------------------
    def _print(self, expr, **kwargs) -> str:
        if isinstance(expr, sympy.Basic) and not self._supported(expr):
            raise PrintMethodNotImplementedError(
                f"the CUDA printer cannot print {type(expr).__name__}: {expr}"
            )
        return super()._print(expr, **kwargs)

    def _supported(self, expr: sympy.Basic) -> bool:
        if isinstance(expr, sympy.Function) or type(expr).__name__ in ("Min", "Max"):
            known = type(expr).__name__ in FUNCTIONS
            return known or isinstance(expr, _SELECTS)
        if isinstance(expr, sympy.Number):
            return isinstance(expr, _NUMBER_TYPES) and expr.is_finite is not False
        return isinstance(expr, _NUMBER_TYPES + _STRUCTURE_TYPES + (ExprCondPair,))

    def _print_ITE(self, expr: ITE) -> str:
        # a boolean if-then-else (SymPy makes them from comparisons of Piecewise values)
        return self._print(expr.rewrite(sympy.Piecewise))

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return self.name(expr.name)

    def _print_Float(self, expr: sympy.Float) -> str:
        return self.literal(float(expr))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return self.literal(float(expr))

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return self.literal(float(expr))

    _print_Zero = _print_One = _print_NegativeOne = _print_Half = _print_Integer

    def _print_NumberSymbol(self, expr: sympy.Basic) -> str:
        return self.literal(float(expr))

    _print_Pi = _print_Exp1 = _print_NumberSymbol

    # -- operators -----------------------------------------------------------------------------
    def _print_Mul(self, expr: sympy.Mul) -> str:
        # CodePrinter's Mul (numerator / denominator split), not C99's pow-based variant
        return super(C99CodePrinter, self)._print_Mul(expr)

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 1 <= abs(int(exp)) <= _MAX_EXPANDED_POWER:
            b = self.parenthesize(base, PRECEDENCE["Pow"])
            prod = "*".join([b] * abs(int(exp)))
            if abs(int(exp)) > 1:
                prod = f"({prod})"
            return prod if exp > 0 else f"{self.literal(1.0)}/{prod}"
        if exp == sympy.S.Half:
            return f"{self.function_sqrt()}({self._print(base)})"
        if exp == -sympy.S.Half:
            return f"{self.literal(1.0)}/{self.function_sqrt()}({self._print(base)})"
        return f"pow{self.suffix}({self._print(base)}, {self._print(exp)})"

    def function_sqrt(self) -> str:
        return "sqrt" + self.suffix

    def _print_Function(self, expr: sympy.Function) -> str:
        name = type(expr).__name__
        if name not in FUNCTIONS:
            raise PrintMethodNotImplementedError(f"the CUDA printer has no function {name}")
        args = [self._print(a) for a in expr.args]
        if name in ("Min", "Max"):
            # fmin/fmax take two arguments: fold left
            out = args[0]
            for a in args[1:]:
                out = f"{self.function(name)}({out}, {a})"
            return out
        return f"{self.function(name)}({', '.join(args)})"

    def _print_sign(self, expr: sympy.sign) -> str:
        a = self._print(expr.args[0])
        one, zero = self.literal(1.0), self.literal(0.0)
        return f"(({a}) > {zero} ? {one} : (({a}) < {zero} ? -{one} : {zero}))"

    def _indicator(self, expr: sympy.Expr) -> str:
        """``[a > b]`` and its kin (dsl/indicator.py): 1 or 0 of the kernel's type."""
        a, b = (self._print(v) for v in expr.args)
        one, zero = self.literal(1.0), self.literal(0.0)
        return f"(({a}) {expr.symbol} ({b}) ? {one} : {zero})"

    _print_Greater = _print_GreaterEqual = _print_Equal = _indicator

    def _print_Remainder(self, expr: sympy.Expr) -> str:
        """Python's (and NumPy's, and Numba's) remainder, with the sign of the divisor: C's
        fmod has the dividend's, so a non-zero remainder of the other sign gets b added."""
        a, b = (self._print(v) for v in expr.args)
        r, zero = f"{self.function_fmod()}({a}, {b})", self.literal(0.0)
        return f"(({r} != {zero} && (({r} < {zero}) != (({b}) < {zero}))) ? {r} + ({b}) : {r})"

    def function_fmod(self) -> str:
        return "fmod" + self.suffix

    def _print_Heaviside(self, expr: sympy.Expr) -> str:
        # the derivative of max, min and abs; SymPy's value at 0 is 1/2 unless given
        z = self._print(expr.args[0])
        at_zero = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        one, zero, mid = self.literal(1.0), self.literal(0.0), self.literal(at_zero)
        return f"(({z}) > {zero} ? {one} : (({z}) == {zero} ? {mid} : {zero}))"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        *branches, (last_value, last_cond) = expr.args
        tail = self._print(last_value)
        if last_cond != sympy.true:  # no branch applies: NaN, as SymPy's own evaluation gives
            nan = f'nan{self.suffix}("")'
            tail = f"(({self._print(last_cond)}) ? ({tail}) : {nan})"
        for value, cond in reversed(branches):
            tail = f"(({self._print(cond)}) ? ({self._print(value)}) : {tail})"
        return tail

    def _print_Relational(self, expr: Relational) -> str:
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        if expr.rel_op not in ops:
            raise PrintMethodNotImplementedError(f"relation {expr.rel_op}")
        lhs = self.parenthesize(expr.lhs, PRECEDENCE["Relational"])
        rhs = self.parenthesize(expr.rhs, PRECEDENCE["Relational"])
        return f"{lhs} {ops[expr.rel_op]} {rhs}"

    def _print_And(self, expr: And) -> str:
        return " && ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr: Or) -> str:
        return " || ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Not(self, expr: Not) -> str:
        return f"!({self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr: sympy.Basic) -> str:
        return "true"

    def _print_BooleanFalse(self, expr: sympy.Basic) -> str:
        return "false"


# every function of the table prints through the one method above (C99's own per-function
# methods would print double-only names)
for _name in FUNCTIONS:
    setattr(CudaPrinter, f"_print_{_name}", CudaPrinter._print_Function)
