"""Guards on exact arithmetic with numbers written in a program.

SymPy computes integer powers, products and literals exactly: ``2^(2^(2^32))`` would take
forever, ``10^400`` is a number no double can hold, and ``5 % 0`` raises ZeroDivisionError. Every
value a program computes becomes a double in the end, so an exact number beyond a double's range
is refused before it is computed (its size is estimated from logarithms), and so is a division by
zero. ``NumberRangeError`` carries the reason; callers report it at their own span as R317.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import sympy

from .remainder import Remainder

DBL_MAX = sys.float_info.max
_LOG_MAX = math.log(DBL_MAX)
DBL_TINY = 5e-324  # the smallest subnormal double: below it a value would be 0
_LOG_MIN = math.log(DBL_TINY)
_MAX_DIGITS = len(str(int(DBL_MAX)))  # 309
NONFINITE = (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan)
RANGE_HINT = "a value must be a real number: 0, or between about 4.9e-324 and 1.8e308 in magnitude"


class NumberRangeError(ValueError):
    """A number the program computes would not be a finite double (or divides by zero)."""


def integer_literal(text: str) -> sympy.Integer:
    """An integer literal (digits only), refused beyond a double's range before Python parses
    it (5000 digits exceed even Python's conversion limit)."""
    digits = text.lstrip("0")
    if len(digits) > _MAX_DIGITS or (digits and int(digits) > DBL_MAX):
        raise NumberRangeError(f"the integer {_short(text)} is beyond a double's range")
    return sympy.Integer(int(text))


def _short(text: str) -> str:
    return text if len(text) <= 20 else f"{text[:8]}...({len(text)} digits)"


def _log_abs(x: sympy.Number) -> float:
    """log |x| of a non-zero SymPy number without converting it to a float (it may not fit)."""
    if isinstance(x, sympy.Rational):  # Integer included: math.log takes big ints exactly
        return math.log(abs(x.p)) - math.log(x.q)
    return float(sympy.log(abs(x)).evalf(20))


def check_power(base: Any, exp: Any) -> None:
    """Refuse ``base ^ exp`` of two numbers whose value would not be a double (or that divides
    by zero), before SymPy computes it exactly."""
    if not (isinstance(base, sympy.Number) and isinstance(exp, sympy.Number)):
        return
    if base in NONFINITE or exp in NONFINITE:
        return
    if base.is_zero:
        if exp.is_negative:
            raise NumberRangeError("this divides by zero (0 to a negative power)")
        return
    magnitude = float(exp) * _log_abs(base)
    about = f"{_show(base)}^{_show(exp)} is about 1e{magnitude / math.log(10):.0f}"
    if magnitude > _LOG_MAX:
        raise NumberRangeError(f"{about}, beyond a double's range")
    if magnitude < _LOG_MIN:
        raise NumberRangeError(f"{about}, below the smallest double (it would be 0)")


def shown(value: Any) -> str:
    """A number as a program would write it (``2.5``, ``2.0``), not SymPy's ``2.50000000000000``;
    anything else as SymPy prints it."""
    if isinstance(value, sympy.Float):
        return repr(float(value))
    return str(value)


def _show(x: sympy.Number) -> str:
    text = str(x)
    return text if len(text) <= 20 else f"{float(x):.6g}"


_NAMES = {
    sympy.zoo: "infinite (a pole: a division by zero, log(0), ...)",
    sympy.oo: "infinite",
    -sympy.oo: "infinite",
    sympy.nan: "undefined (nan)",
}


def check_result(value: Any) -> Any:
    """``value``, refused where it is a number beyond a double's range, below its smallest
    (it would silently be 0), not finite, or not real (``sqrt(-1)``, ``log(-2)``,
    ``asin(2)``: NaN in double arithmetic)."""
    if value in NONFINITE:
        raise NumberRangeError(f"this value is {_NAMES[value]}")
    if isinstance(value, sympy.Number):
        if abs(value) > DBL_MAX:
            raise NumberRangeError("this number is beyond a double's range")
        if not value.is_zero and abs(value) < DBL_TINY:
            raise NumberRangeError("this number is below the smallest double (it would be 0)")
    elif (
        isinstance(value, sympy.Expr)
        and not value.free_symbols
        and value.is_number
        and value.is_extended_real is False
    ):
        raise NumberRangeError(f"this value is not a real number ({value})")
    return value


def apply(func: Any, args: list[Any]) -> Any:
    """``func(*args)`` for a SymPy node with guards: powers and division by zero checked before,
    the range of a number checked after."""
    if func is sympy.Pow:
        check_power(args[0], args[1])
    elif func is Remainder and getattr(args[1], "is_zero", None):
        raise NumberRangeError("the remainder of a division by zero (% 0)")
    try:
        return check_result(func(*args))
    except ZeroDivisionError:
        raise NumberRangeError("this divides by zero") from None


def substitute(value: sympy.Basic, mapping: dict[Any, Any]) -> sympy.Basic:
    """``value.xreplace(mapping)`` rebuilt bottom-up through ``apply``, so a const substituted
    into a power or a division cannot start a huge exact computation or divide by zero."""
    if value in mapping:
        return mapping[value]
    if not value.args or not (value.free_symbols & set(mapping)):
        return value
    return apply(value.func, [substitute(a, mapping) for a in value.args])
