"""Printers against SymPy: random scalar expressions, printed by each backend printer, must
evaluate to what SymPy evaluates (in high precision) at random points.

The Numba printer's output runs as Python (a generated module imported by path, as the runtime
does); the CUDA printer's output is C99-compatible, so a C compiler checks it without a GPU."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ritz.compiler.backends.cuda_printer import CudaPrinter
from ritz.compiler.backends.numba_printer import NumbaPrinter
from ritz.runtime.loader import import_path

A, B, C = sympy.symbols("a b c", real=True)
LEAVES = st.sampled_from(
    [A, B, C, sympy.Integer(2), sympy.Rational(1, 3), sympy.Float(0.75), sympy.pi, sympy.E]
)
UNARY = [
    sympy.sin,
    sympy.cos,
    sympy.tanh,
    lambda x: sympy.exp(sympy.sin(x)),  # bounded argument: no overflow
    lambda x: sympy.log(1 + x**2),
    lambda x: sympy.sqrt(1 + x**2),
    lambda x: 1 / (1 + x**2),
    lambda x: x**2,
    lambda x: x**3,
    lambda x: -x,
    sympy.Abs,
]
BINARY = [
    lambda x, y: x + y,
    lambda x, y: x - y,
    lambda x, y: x * y,
    lambda x, y: x / (2 + y**2),
    lambda x, y: sympy.Max(x, y),
    lambda x, y: sympy.Piecewise((x, x > y), (y * y, True)),
]


def _expr(depth: int) -> st.SearchStrategy:
    if depth == 0:
        return LEAVES
    sub = _expr(depth - 1)
    return st.one_of(
        LEAVES,
        st.builds(lambda f, x: f(x), st.sampled_from(UNARY), sub),
        st.builds(lambda f, x, y: f(x, y), st.sampled_from(BINARY), sub, sub),
    )


POINTS = np.array([[0.3, -1.2, 2.5], [-0.7, 0.4, 0.05], [1.9, 1.1, -0.6]])


def _reference(expr: sympy.Expr) -> np.ndarray:
    # substitute first (30-digit values), so Piecewise conditions resolve to numbers before
    # evalf (evalf's own subs= recurses without end on some Piecewise forms)
    values = []
    for p in POINTS:
        point = {A: sympy.Float(p[0], 30), B: sympy.Float(p[1], 30), C: sympy.Float(p[2], 30)}
        values.append(float(expr.xreplace(point).evalf(30)))
    return np.array(values)


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    # double rounding in a few dozen operations stays below 1e-13 relative; a wrong function,
    # precedence or literal is off by O(1)
    return bool(np.all(np.abs(got - want) <= 1e-10 * (1 + np.abs(want))))


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(exprs=st.lists(_expr(3), min_size=5, max_size=5))
def test_numba_printer_matches_sympy(exprs: list[sympy.Expr], tmp_path_factory) -> None:
    printer = NumbaPrinter("float64")
    lines = ["import math", "import numpy as np", ""]
    for i, e in enumerate(exprs):
        lines += [f"def f{i}(a, b, c):", f"    return {printer.doprint(e)}", ""]
    path = tmp_path_factory.mktemp("numba_printer") / "exprs.py"
    path.write_text("\n".join(lines))
    module = import_path(path, f"ritz_test_printer_{abs(hash(path))}")
    for i, e in enumerate(exprs):
        got = np.array([getattr(module, f"f{i}")(*p) for p in POINTS])
        assert _close(got, _reference(e)), (e, printer.doprint(e), got)


CC = shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(CC is None, reason="no C compiler to check the CUDA printer's C99 output")
@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(exprs=st.lists(_expr(3), min_size=5, max_size=5))
def test_cuda_printer_matches_sympy(exprs: list[sympy.Expr], tmp_path_factory) -> None:
    printer = CudaPrinter("float64")
    lines = ["#include <math.h>", "#include <stdbool.h>", ""]  # CUDA is C++: true/false
    for i, e in enumerate(exprs):
        lines.append(
            f"double f{i}(double a, double b, double c) {{ return {printer.doprint(e)}; }}"
        )
    folder: Path = tmp_path_factory.mktemp("cuda_printer")
    source, lib = folder / "exprs.c", folder / "exprs.so"
    source.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [
            str(CC),
            "-std=c99",
            "-O0",
            "-shared",
            "-fPIC",
            "-Werror",
            str(source),
            "-o",
            str(lib),
            "-lm",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(lib))
    for i, e in enumerate(exprs):
        fn = getattr(so, f"f{i}")
        fn.restype = ctypes.c_double
        fn.argtypes = [ctypes.c_double] * 3
        got = np.array([fn(*p) for p in POINTS])
        assert _close(got, _reference(e)), (e, printer.doprint(e), got)
