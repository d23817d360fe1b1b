"""Const folding, fn inlining and imports (std modules, relative files, cycles)."""

from pathlib import Path

import pytest
import sympy
from sympy import Derivative, Function, Symbol

from ritz.dsl import DslImportError, DslNameError, RitzError, load_file, load_text
from ritz.dsl.imports import STDLIB_DIR

x = Symbol("x")
PDE = """
pde p {{
    space x in [0, L]
    time t in [0, 1]
    field u
    param a = 2 * c
    dt(u) = {rhs}
    boundary u = 0 at all
    initial u = 0
}}
"""


def check(rhs: str, prelude: str = "const L = 1\nconst c = 3\n") -> sympy.Expr:
    return load_text(prelude + PDE.format(rhs=rhs)).problems["p"].equations[0].rhs


def test_const_folding() -> None:
    prelude = "const L = 2 * pi\nconst c = L / pi + sqrt(4)\n"
    p = load_text(prelude + PDE.format(rhs="c * u")).problems["p"]
    assert p.axes[0].hi == pytest.approx(2 * 3.141592653589793)
    assert p.params[0].default == pytest.approx(8.0)
    rhs = p.equations[0].rhs
    assert rhs == sympy.Float(4.0) * Function("u")(x)


def test_consts_and_params_may_call_fns() -> None:
    """Consts may use fns declared before them (whose bodies may name later consts, and call
    each other); param values and options may use any fn."""
    prelude = (
        "fn f(z) = z^2 + k0\nconst k0 = 1\nfn g(z) = 2 * f(z)\nconst L = g(0) / 2\n"
        "const c = g(3) / 20\n"
    )
    p = load_text(prelude + PDE.format(rhs="c * u").replace("2 * c", "f(2)")).problems["p"]
    assert p.axes[0].hi == pytest.approx(1.0)
    assert p.params[0].default == pytest.approx(5.0)
    assert sympy.simplify(p.equations[0].rhs - Function("u")(x)) == 0


def test_a_const_that_overflows_is_refused() -> None:
    with pytest.raises(RitzError) as info:
        load_text("const big = 1e400\n")
    assert info.value.code == "R317" and "inf" in str(info.value)


def test_integer_const_stays_integer() -> None:
    text = "const n = 2\nconst L = 1\nconst c = 1\n" + PDE.format(rhs="diff(u, x, n)")
    p = load_text(text, "m").problems["p"]
    assert p.equations[0].rhs == Derivative(Function("u")(x), (x, 2))


def test_fn_inlining_nested() -> None:
    prelude = "const L = 1\nconst c = 1\nfn sq(z) = z^2\nfn flux(v) = sq(v) / 2\n"
    u = Function("u")(x)
    assert check("-diff(flux(u), x)", prelude) == -u * Derivative(u, x)


def test_fn_with_derivative_operator() -> None:
    prelude = "const L = 1\nconst c = 1\nfn d2(v, s) = diff(v, s, 2)\n"
    assert check("a * d2(u, x)", prelude) == Symbol("a") * Derivative(Function("u")(x), (x, 2))


def test_recursive_fn_is_an_error() -> None:
    with pytest.raises(DslNameError) as err:
        load_text("fn f(z) = g(z)\nfn g(z) = f(z) + 1\n")
    assert err.value.code == "R205"
    assert "f -> g -> f" in err.value.message or "g -> f -> g" in err.value.message


def test_std_import_and_alias() -> None:
    text = "import std.nn\n" + PDE.format(rhs="nn.softplus(u) + nn.swish(u)")
    rhs = load_text("const L = 1\nconst c = 1\n" + text).problems["p"].equations[0].rhs
    u = Function("u")(x)
    want = sympy.log(1 + sympy.exp(u)) + u / (1 + sympy.exp(-u))
    # the stdlib writes them in forms that do not overflow; they are the same functions
    for value in (-40.0, -30.0, -1.5, 0.0, 0.7, 25.0):
        got, ref = (float(e.subs(u, value)) for e in (rhs, want))
        assert got == pytest.approx(ref, rel=1e-13)


def test_relative_import(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "mat.dsl").write_text("const c0 = 340 + 3\nfn sq(z) = z * z\n")
    main = tmp_path / "main.dsl"
    main.write_text(
        'import "lib/mat.dsl" as mat\nconst L = mat.c0\nconst c = 1\n' + PDE.format(rhs="mat.sq(u)")
    )
    p = load_file(main).problems["p"]
    assert p.axes[0].hi == 343.0
    assert p.equations[0].rhs == Function("u")(x) ** 2


def test_import_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.dsl").write_text('import "b.dsl" as b\nconst one = 1\n')
    (tmp_path / "b.dsl").write_text('\n\nimport "a.dsl" as a\n')
    with pytest.raises(DslImportError) as err:
        load_file(tmp_path / "a.dsl")
    assert err.value.code == "R251"
    assert "a.dsl -> b.dsl -> a.dsl" in err.value.message
    assert err.value.line == 3 and err.value.file.endswith("b.dsl")


def test_import_cycle_is_the_only_error(tmp_path: Path) -> None:
    """Names used from the import that failed are not reported one by one (they exist)."""
    (tmp_path / "a.dsl").write_text('import "b.dsl" as b\nfn fa(z) = b.fb(z) + 1\n')
    (tmp_path / "b.dsl").write_text('import "a.dsl" as a\nfn fb(z) = 2 * z\n')
    (tmp_path / "m.dsl").write_text('import "a.dsl" as a\nconst c = a.fa(1)\n')
    with pytest.raises(DslImportError) as err:
        load_file(tmp_path / "m.dsl")
    assert [d.code for d in err.value.diagnostics] == ["R251"]


def test_missing_import(tmp_path: Path) -> None:
    with pytest.raises(DslImportError) as err:
        load_text('import "nope.dsl" as n\n', base_dir=tmp_path)
    assert err.value.code == "R250"
    with pytest.raises(DslImportError) as err:
        load_text("import std.nope\n")
    assert err.value.code == "R250" and "std.nn" in (err.value.hint or "")


@pytest.mark.parametrize("name", ["nn", "ops", "losses"])
def test_stdlib_modules_check(name: str) -> None:
    load_file(STDLIB_DIR / f"{name}.dsl")


def test_stdlib_ops_in_a_pde() -> None:
    text = "import std.ops as ops\nconst L = 1\nconst c = 1\n" + PDE.format(
        rhs="ops.diffuse(u, a) - ops.advect(u, 2, x)"
    )
    u = Function("u")(x)
    rhs = load_text(text).problems["p"].equations[0].rhs
    assert rhs == Symbol("a") * Derivative(u, (x, 2)) - 2 * Derivative(u, x)


def test_at_is_the_dot_product_of_two_gradients() -> None:
    text = (
        "pde p {\n    space x in [0, 1]\n    space y in [0, 1]\n    time t in [0, 1]\n"
        "    field u, v\n    dt(u) = grad(u) @ grad(v)\n    dt(v) = (2 * grad(u)) @ grad(u)\n"
        "    boundary u = 0 at all\n    boundary v = 0 at all\n    initial u = 0\n"
        "    initial v = 0\n}\n"
    )
    eqs = load_text(text).problems["p"].equations
    u, v = (Function(n)(x, Symbol("y")) for n in "uv")
    ux, uy, vx, vy = (Derivative(f, s) for f in (u, v) for s in (x, Symbol("y")))
    assert eqs[0].rhs == ux * vx + uy * vy
    assert eqs[1].rhs == 2 * ux**2 + 2 * uy**2


def test_fns_in_options_and_their_arity() -> None:
    """``cells = f(8)`` is a number (it once read as a call of a method named f); a fn called
    with the wrong number of arguments in a const, param or option is R301, as in equations."""
    base = (
        "fn f(z) = 2 * z\npde p {\n    space x in [0, 1]\n    field u\n    param a = ARG\n"
        "    -diff(u, x, 2) = a\n    boundary u = 0 at all\n    solve fd(cells = CELLS)\n}\n"
    )
    ok = load_text(base.replace("ARG", "f(1)").replace("CELLS", "f(f(2))")).problems["p"]
    assert ok.solves[0].options == {"cells": 8} and ok.params[0].default == 2
    for arg, cells in (("f(1, 2)", "8"), ("1", "f(8, 1)")):
        with pytest.raises(RitzError) as err:
            load_text(base.replace("ARG", arg).replace("CELLS", cells))
        assert err.value.code == "R301" and "takes 1 argument(s), got 2" in err.value.message
