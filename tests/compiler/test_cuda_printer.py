"""The CUDA printer: typed literals and functions, expanded powers, strictness, Piecewise."""

from __future__ import annotations

import math

import pytest
import sympy
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from ritz.compiler.backends.cuda_printer import FUNCTIONS, CudaPrinter

x, y = sympy.symbols("x y", real=True)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [("float64", "1.5*x"), ("float32", "1.5f*x")],
)
def test_float_literals_follow_dtype(dtype: str, expected: str) -> None:
    assert CudaPrinter(dtype).doprint(sympy.Float(1.5) * x) == expected


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_integers_print_as_floating_literals(dtype: str) -> None:
    # C's integer division must never reach a kernel: 2*x and x + 3 stay in floating point
    suffix = "f" if dtype == "float32" else ""
    p = CudaPrinter(dtype)
    assert p.doprint(2 * x) == f"2.0{suffix}*x"
    assert p.doprint(x + 3) == f"x + 3.0{suffix}"
    assert p.doprint(sympy.Rational(1, 4) + x) == f"x + 0.25{suffix}"


def test_constants_are_literals() -> None:
    assert CudaPrinter("float64").doprint(sympy.pi * x) == f"{math.pi!r}*x"
    assert CudaPrinter("float32").doprint(sympy.E * x) == f"{math.e!r}f*x"


@pytest.mark.parametrize(
    ("expr", "double", "single"),
    [
        (sympy.sin(x), "sin(x)", "sinf(x)"),
        (sympy.exp(x), "exp(x)", "expf(x)"),
        (sympy.tanh(x), "tanh(x)", "tanhf(x)"),
        (sympy.log(x), "log(x)", "logf(x)"),
        (sympy.atan2(x, y), "atan2(x, y)", "atan2f(x, y)"),
        (sympy.Abs(x), "fabs(x)", "fabsf(x)"),
        (sympy.ceiling(x), "ceil(x)", "ceilf(x)"),
        (sympy.Min(x, y), "fmin(x, y)", "fminf(x, y)"),
        (sympy.Max(x, y), "fmax(x, y)", "fmaxf(x, y)"),
        (sympy.sqrt(x), "sqrt(x)", "sqrtf(x)"),
    ],
)
def test_functions_take_the_dtype_suffix(expr: sympy.Expr, double: str, single: str) -> None:
    assert CudaPrinter("float64").doprint(expr) == double
    assert CudaPrinter("float32").doprint(expr) == single


def test_every_table_function_prints() -> None:
    p = CudaPrinter("float32")
    for name, cname in FUNCTIONS.items():
        fn = getattr(sympy, name)
        expr = fn(x, y) if name in ("atan2", "Min", "Max") else fn(x)
        assert f"{cname}f(" in p.doprint(expr), name


def test_min_of_three_folds_into_pairs() -> None:
    assert CudaPrinter("float64").doprint(sympy.Min(x, y, 1)) == "fmin(fmin(1.0, x), y)"


def test_small_integer_powers_are_multiplications() -> None:
    p = CudaPrinter("float64")
    assert p.doprint(x**2) == "(x*x)"
    assert p.doprint((x + y) ** 3) == "((x + y)*(x + y)*(x + y))"
    assert p.doprint(x**-2) == "1.0/(x*x)"
    assert p.doprint(x ** sympy.Rational(-1, 2)) == "1.0/sqrt(x)"
    assert CudaPrinter("float32").doprint(x**2.5) == "powf(x, 2.5f)"


def test_piecewise_is_a_ternary() -> None:
    pw = sympy.Piecewise((x, x < 1), (y, True))
    assert CudaPrinter("float64").doprint(pw) == "((x < 1.0) ? (x) : y)"
    partial = sympy.Piecewise((x, x < 1))
    assert CudaPrinter("float32").doprint(partial) == '((x < 1.0f) ? (x) : nanf(""))'


def test_sign_is_a_ternary() -> None:
    assert CudaPrinter("float64").doprint(sympy.sign(x)) == (
        "((x) > 0.0 ? 1.0 : ((x) < 0.0 ? -1.0 : 0.0))"
    )


@pytest.mark.parametrize(
    "expr",
    [
        sympy.gamma(x),
        sympy.Function("f")(x),
        sympy.I * x,
        sympy.oo * x,
        sympy.Derivative(sympy.Function("f")(x), x),
        sympy.DiracDelta(x),
    ],
)
def test_strict_unknown_nodes_raise(expr: sympy.Expr) -> None:
    with pytest.raises(PrintMethodNotImplementedError):
        CudaPrinter("float64").doprint(expr)


def test_reserved_words_are_renamed_and_bad_names_refused() -> None:
    p = CudaPrinter("float64")
    assert p.doprint(sympy.Symbol("double") + sympy.Symbol("new")) == "double_ + new_"
    with pytest.raises(ValueError):
        p.doprint(sympy.Symbol("a b"))


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(ValueError):
        CudaPrinter("float16")
