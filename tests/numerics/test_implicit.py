"""Implicit schemes: ``cn`` (Crank-Nicolson) and ``imex`` (Crank-Nicolson on the part linear in
the state, second-order Adams-Bashforth on the rest, split symbolically). Both are second order
in time, stable far past the explicit step limit, and reuse one factorised Jacobian per step
size wherever it depends on neither the state nor the time."""

from __future__ import annotations

import numpy as np
import pytest

import ritz
from ritz.dsl import RuntimeInputError

HEAT = """
pde heat {
    space x in [0, 1]
    time t in [0, 0.1]
    field u
    param nu = 1
    dt(u) = nu * diff(u, x, 2)
    boundary u = 0 at all
    initial u = sin(pi * x)
    solve fd(cells = 400, scheme = cn, dt = 1e-2)
}
"""

ALLEN_CAHN = """
pde allen_cahn {
    space x in [0, 1]
    time t in [0, 0.2]
    field u
    param eps = 0.02
    dt(u) = eps * diff(u, x, 2) + u - u^3
    boundary diff(u, x) = 0 at all
    initial u = 0.5 * cos(3 * pi * x) + 0.1 * x
    solve fd(cells = 200, scheme = cn, dt = 1e-2)
}
"""

WAVE = """
pde wave {
    space x in [0, 1]
    time t in [0, 0.5]
    field u
    dt(u, 2) = diff(u, x, 2)
    boundary u = 0 at all
    initial u = sin(pi * x)
    initial dt(u) = 0
    solve fd(cells = 400, scheme = cn, dt = 1e-2)
}
"""


def _orders(errors: list[float]) -> np.ndarray:
    e = np.array(errors)
    return np.log2(e[:-1] / e[1:])


@pytest.mark.parametrize("scheme", ["cn", "imex"])
def test_heat_is_second_order_in_time(scheme: str) -> None:
    handle = ritz.compile(HEAT).heat
    errors = []
    for dt in (0.02, 0.01, 0.005):
        sol = handle.solve(dt=dt, scheme=scheme)
        exact = np.exp(-(np.pi**2) * 0.1) * np.sin(np.pi * sol.coords["x"])
        errors.append(float(np.abs(sol["u"][-1] - exact).max()))
    # dt = 0.02 is 8000 times the explicit limit h^2 / 2 on 400 cells
    assert np.all(np.abs(_orders(errors) - 2) < 0.15), errors
    assert errors[-1] < 1e-4


@pytest.mark.parametrize("scheme", ["cn", "imex"])
def test_nonlinear_allen_cahn_is_second_order_in_time(scheme: str) -> None:
    handle = ritz.compile(ALLEN_CAHN).allen_cahn
    ref = handle.solve(scheme="rk4", dt=1e-4)["u"][-1]
    errors = [
        float(np.abs(handle.solve(dt=dt, scheme=scheme)["u"][-1] - ref).max())
        for dt in (0.01, 0.005, 0.0025)
    ]
    assert np.all(np.abs(_orders(errors) - 2) < 0.1), errors


def test_second_order_in_time_equation_with_cn() -> None:
    handle = ritz.compile(WAVE).wave
    errors = []
    for dt in (0.02, 0.01, 0.005):
        sol = handle.solve(dt=dt)
        exact = np.cos(np.pi * 0.5) * np.sin(np.pi * sol.coords["x"])
        errors.append(float(np.abs(sol["u"][-1] - exact).max()))
    assert np.all(np.abs(_orders(errors) - 2) < 0.15), errors


def test_the_factorisation_is_reused_where_the_jacobian_is_constant() -> None:
    heat = ritz.compile(HEAT).heat
    sim = heat.prepare(dt=0.01)
    assert sim.plan["meta"]["constant_jacobian"] and sim.plan["meta"]["scheme"] == "cn"
    sim.advance(10)
    # a linear problem: one Newton step per time step, on one factorisation
    assert sim.newton_steps == 10 and len(sim._factors) == 1
    ac = ritz.compile(ALLEN_CAHN).allen_cahn
    assert not ac.prepare(scheme="cn").plan["meta"]["constant_jacobian"]
    # imex leaves u - u^3 to the explicit part except its linear term u: L is constant
    imex = ac.prepare(scheme="imex")
    assert imex.plan["meta"]["constant_jacobian"]
    imex.advance(5)
    assert imex.newton_steps == 5 and len(imex._factors) == 1
    sol = ac.solve(scheme="imex", dt=0.02)
    assert sol.info["steps"] == 10 and sol.info["newton_steps"] == 10


def test_imex_splits_the_linear_part_symbolically() -> None:
    from ritz.compiler.ir.ops import placeholder
    from ritz.compiler.passes.theta import split_linear

    u0, u1, x = placeholder(0), placeholder(1), placeholder(2)
    body = 3 * u0 - u1**3 + x * u1 + u0 * u1 + 2 * x + u0 * (1 + x)
    linear, rest = split_linear(body, [u0, u1])
    assert (linear - (4 * u0 + x * u1 + x * u0)).expand() == 0
    assert (rest - (-(u1**3) + u0 * u1 + 2 * x)).expand() == 0


def test_gray_scott_imex_matches_rk4_at_a_large_step() -> None:
    # diffusion and the linear reaction terms implicit, u*v^2 explicit
    gs = ritz.load("examples/gray_scott.dsl").gray_scott
    ref = gs.solve(cells=48, dt=0.25, scheme="rk4")
    got = gs.solve(cells=48, dt=2.0, scheme="imex")
    for f in ("u", "v"):
        err = float(np.abs(got[f][-1] - ref[f][-1]).max())
        assert err < 2e-2 * float(np.abs(ref[f][-1]).max()), (f, err)


def test_stiff_step_explicit_blows_up_implicit_does_not() -> None:
    handle = ritz.compile(HEAT).heat
    with pytest.raises(RuntimeInputError, match="R540"):
        handle.solve(dt=1e-3, scheme="rk4")
    sol = handle.solve(dt=1e-3, scheme="cn")
    exact = np.exp(-(np.pi**2) * 0.1) * np.sin(np.pi * sol.coords["x"])
    assert float(np.abs(sol["u"][-1] - exact).max()) < 1e-5


OVERFLOWING = """
pde c {
    space x in [0, 1]
    time t in [0, 1]
    field u
    dt(u) = diff(u, x, 2) - u^3
    boundary u = 0 at all
    initial u = 1e120 * sin(pi * x)
    solve fd(cells = 8, scheme = cn, dt = 0.1)
}
pde nd {
    space x in [0, 1]
    time t in [0, 2]
    field u
    dt(u) = diff((1 + u^2) * diff(u, x), x)
    boundary u = 0 at x = 0
    boundary u = 1 at x = 1
    initial u = x
    solve fd(cells = 16, scheme = imex, dt = 0.01)
}
"""


@pytest.mark.parametrize("name", ["c", "nd"])
def test_a_residual_that_overflows_never_counts_as_converged(name: str) -> None:
    """An infinite residual norm made an infinite target: the step "converged" at once and the
    state froze (cn from 1e120, u^3 overflowing; imex past its explicit part's stability, which
    grew to 2.6e59 and then stayed there to the end). Now the step fails where it happens."""
    with pytest.raises(RuntimeInputError) as err:
        ritz.compile(OVERFLOWING)[name].solve()
    assert err.value.code == "R542" and "not finite" in err.value.message


def test_dt_auto_is_refused_for_implicit_schemes() -> None:
    with pytest.raises(RuntimeInputError) as err:
        ritz.compile(HEAT).heat.solve(dt="auto")
    assert err.value.code == "R512"


def test_outputs_every_interval_and_a_new_dt_restart_the_history() -> None:
    # every = 0.03 over [0, 0.1]: the last interval has a different step; imex restarts its
    # Adams-Bashforth history there and stays second order
    handle = ritz.compile(ALLEN_CAHN).allen_cahn
    ref = handle.solve(scheme="rk4", dt=1e-4, every=0.03)
    errors = []
    for dt in (0.01, 0.005, 0.0025):
        sol = handle.solve(scheme="imex", dt=dt, every=0.03)
        np.testing.assert_allclose(sol.t, ref.t)
        errors.append(float(np.abs(sol["u"] - ref["u"]).max()))
    # each restart takes one first-order step (a local error of O(dt^2)): still second order,
    # approached from above on these steps
    assert np.all(_orders(errors) > 1.9), errors
