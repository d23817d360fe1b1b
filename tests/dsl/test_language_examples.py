"""Every example of LANGUAGE.md parses and checks; the pde examples check to the expected form."""

from pathlib import Path

import pytest
import sympy
from sympy import Derivative, Function, Symbol, pi, sin

from ritz.dsl import ast as A
from ritz.dsl import load_file, load_text, parse_source
from ritz.dsl.source import SourceFile

CASES = Path(__file__).parent / "cases"
EXAMPLES = sorted(p for p in CASES.glob("*.dsl"))
x, y, t = Symbol("x"), Symbol("y"), Symbol("t")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_parses(path: Path) -> None:
    module = parse_source(SourceFile(str(path), path.read_text()))
    assert module.items


@pytest.mark.parametrize(
    "name", ["top_level", "heat1d", "more_pdes", "mlp2", "std_networks", "fit_sine"]
)
def test_example_checks(name: str) -> None:
    load_file(CASES / f"{name}.dsl")


def test_bilevel_examples_check_with_heat1d() -> None:
    text = (CASES / "heat1d.dsl").read_text() + (CASES / "bilevel.dsl").read_text()
    checked = load_text(text, "bilevel.dsl")
    assert set(checked.problems) == {"heat1d", "ridge", "cournot", "oligopoly", "fit_diffusivity"}
    fit = checked.problems["fit_diffusivity"]
    assert isinstance(fit, A.Bilevel)
    low = fit.lower_solutions[0]
    assert (low.name, low.problem.name, low.field) == ("u", "heat1d", "u")
    assert low.at[0].name == "t"


@pytest.fixture(scope="module")
def pdes() -> dict[str, A.PdeProblem]:
    out = {}
    for name in ("heat1d", "more_pdes"):
        out.update(load_file(CASES / f"{name}.dsl").problems)
    return out


def test_heat1d(pdes: dict) -> None:
    p = pdes["heat1d"]
    u = Function("u")(x)
    assert [a.name for a in p.axes] == ["x"] and p.axes[0].hi == 1.0
    assert p.time is not None and (p.time.t0, p.time.t1) == (0.0, 0.1)
    assert p.fields == ("u",)
    assert p.params[0].name == "nu" and p.params[0].default == 0.05
    eq = p.equations[0]
    assert eq.time_order == 1 and eq.rhs == Symbol("nu") * Derivative(u, (x, 2))
    assert [(b.axis, b.side, b.alpha, b.beta, b.data) for b in p.boundaries] == [
        ("x", "lo", 1, 0, 0),
        ("x", "hi", 1, 0, 0),
    ]
    assert p.initials[0].expr == sin(pi * x)
    assert p.solves[0].method == "fd"
    assert p.solves[0].options == {"cells": 200, "scheme": "rk4", "dt": 2e-5}


def test_wave2d_second_order(pdes: dict) -> None:
    p = pdes["wave2d"]
    u = Function("u")(x, y)
    assert p.equations[0].time_order == 2
    lap = Derivative(u, (x, 2)) + Derivative(u, (y, 2))
    assert sympy.simplify(p.equations[0].rhs - Symbol("c") ** 2 * lap) == 0
    assert {(i.field, i.time_derivative) for i in p.initials} == {("u", 0), ("u", 1)}
    assert len(p.boundaries) == 4  # 'at all' = both faces of x and y


def test_gray_scott_periodic(pdes: dict) -> None:
    p = pdes["gray_scott"]
    assert all(a.periodic for a in p.axes)
    assert p.boundaries == ()
    assert [e.field for e in p.equations] == ["u", "v"]
    assert p.solves[0].options["every"] == 100


def test_poisson_steady(pdes: dict) -> None:
    p = pdes["poisson"]
    u = Function("u")(x, y)
    assert p.time is None and p.equations[0].time_order == 0
    expected = -(Derivative(u, (x, 2)) + Derivative(u, (y, 2))) - 2 * pi**2 * sin(pi * x) * sin(
        pi * y
    )
    assert sympy.expand(p.equations[0].rhs - expected) == 0
    assert p.solves[0].options == {"cells": 128, "tol": 1e-10}


def test_burgers_pinn_solve(pdes: dict) -> None:
    p = pdes["burgers"]
    assert p.params[0].default == pytest.approx(0.01 / 3.141592653589793)
    pinn = p.solves[1]
    assert pinn.method == "pinn"
    net = pinn.options["net"]
    assert isinstance(net, A.Call) and net.name == "nn.mlp"
    assert {k.name for k in net.kwargs} == {"width", "depth", "act"}
    assert pinn.options["optimizer"].name == "adam"


def test_default_solve_is_fd() -> None:
    src = (
        "pde p {\n space x in [0, 1] periodic\n time t in [0, 1]\n field u\n dt(u) = 0\n"
        " initial u = 0\n}\n"
    )
    p = load_text(src).problems["p"]
    assert [(s.method, s.options) for s in p.solves] == [("fd", {})]


def test_robin_boundary_and_divergence() -> None:
    src = """
pde rod {
    space x in [0, 2]
    time t in [0, 1]
    field u
    param k = 2, h = 0.5
    dt(u) = div(k * grad(u)) + t
    boundary diff(u, x) + h * u = sin(t) at x = 0
    boundary u = 1 at x = 2
    initial u = x
    solve fd(cells = [64], order = 4, dt = auto)
}
"""
    p = load_text(src).problems["rod"]
    u = Function("u")(x)
    assert p.equations[0].rhs == Symbol("k") * Derivative(u, (x, 2)) + t
    lo = p.boundaries[0]
    assert (lo.side, lo.alpha, lo.beta, lo.data) == ("lo", Symbol("h"), 1, sin(t))
    assert p.solves[0].options == {"cells": [64], "order": 4, "dt": "auto"}


def test_product_rule_applied() -> None:
    src = """
pde p {
    space x in [0, 1] periodic
    space y in [0, 1] periodic
    time t in [0, 1]
    field u
    dt(u) = diff(u * diff(u, y), x) + lap(x * y)
    initial u = 0
}
"""
    p = load_text(src).problems["p"]
    u = Function("u")(x, y)
    want = Derivative(u, x) * Derivative(u, y) + u * Derivative(u, x, y)
    assert sympy.expand(p.equations[0].rhs - want) == 0
