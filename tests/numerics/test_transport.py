"""Transported (first-order hyperbolic) fields: conditions only where characteristics enter.

An outflow face goes without a condition; its ghosts continue the interior by a polynomial of
degree ``order``, and the observed order is the scheme's. A condition on an outflow face (the
old requirement) over-specifies the problem and is refused (R322)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ritz
from ritz.dsl import RitzError, RuntimeInputError

ROOT = Path(__file__).resolve().parents[2]

ADVECTION = """
pde adv {{
    space x in [0, 1]
    time t in [0, 0.5]
    field u
    param c = 1
    dt(u) = -c * diff(u, x)
    boundary u = sin(2*pi*(x - c*t)) at {faces}
    initial u = sin(2*pi*x)
    solve fd(cells = 20, scheme = rk4, dt = 1e-3, order = {order})
}}
"""

# u_t = v_x, v_t = u_x: u + v travels left and u - v right, so one condition per face, here on
# u alone; v is continued at both faces. Exact: u = sin(2(x+t)) + cos(3(x-t)),
# v = sin(2(x+t)) - cos(3(x-t)).
WAVE_SYSTEM = """
pde wave1 {{
    space x in [0, 1]
    time t in [0, 0.5]
    field u, v
    dt(u) = diff(v, x)
    dt(v) = diff(u, x)
    boundary u = sin(2*(x + t)) + cos(3*(x - t)) at x = 0, x = 1
    initial u = sin(2*x) + cos(3*x)
    initial v = sin(2*x) - cos(3*x)
    solve fd(cells = 20, scheme = {scheme}, dt = 1e-3, order = {order})
}}
"""


def _rates(errors: list[float]) -> np.ndarray:
    e = np.array(errors)
    return np.log2(e[:-1] / e[1:])


def _advection_errors(order: int, faces: str, cells=(40, 80, 160)) -> list[float]:
    handle = ritz.compile(ADVECTION.format(order=order, faces=faces)).adv
    out = []
    for n in cells:
        sol = handle.solve(cells=n, dt=0.2 / n)
        x, t = sol.coords["x"], sol.t[-1]
        out.append(float(np.abs(sol["u"][-1] - np.sin(2 * np.pi * (x - t))).max()))
    return out


@pytest.mark.parametrize("order", [2, 4])
def test_advection_with_an_open_outflow_face_converges_at_the_scheme_order(order: int) -> None:
    rates = _rates(_advection_errors(order, "x = 0"))
    assert rates.min() > order - 0.15, rates


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (ADVECTION.format(order=2, faces="x = 0, x = 1"), "u has a condition at x = 1"),
        (ADVECTION.format(order=2, faces="all"), "u has a condition at x = 1"),
        (
            WAVE_SYSTEM.format(scheme="rk4", order=2).replace(
                "    initial u", "    boundary v = 0 at x = 0\n    initial u", 1
            ),
            "u, v have 2 conditions at x = 0, where only 1 characteristic enters",
        ),
    ],
)
def test_a_condition_on_an_outflow_face_is_refused(text: str, where: str) -> None:
    """Over-specified: the outgoing wave cannot meet the condition. The scheme reflects it as a
    grid-scale mode: at order 2 with exact data the error falls at rate 1 instead of 2, and with
    data the solution does not meet (u = 0 where a pulse leaves) it is wrong by O(1)."""
    with pytest.raises(RitzError) as info:
        ritz.compile(text)
    assert info.value.code == "R322" and where in str(info.value)


def test_fields_that_stand_still_at_a_face_may_take_a_condition() -> None:
    """A coefficient field (dt(kappa) = 0) is differentiated once, at speed zero: a condition on
    it fixes no characteristic and over-specifies nothing."""
    ritz.load(str(ROOT / "examples" / "inverse_heat.dsl"))


@pytest.mark.parametrize(("scheme", "order"), [("rk4", 2), ("rk4", 4), ("ssprk3", 2), ("cn", 2)])
def test_wave_system_with_one_condition_per_face(scheme: str, order: int) -> None:
    handle = ritz.compile(WAVE_SYSTEM.format(scheme=scheme, order=order)).wave1
    errors = []
    for n in (40, 80, 160):
        sol = handle.solve(cells=n, dt=0.2 / n if scheme != "cn" else 0.05 / n)
        x, t = sol.coords["x"], sol.t[-1]
        exact_u = np.sin(2 * (x + t)) + np.cos(3 * (x - t))
        exact_v = np.sin(2 * (x + t)) - np.cos(3 * (x - t))
        errors.append(
            max(
                float(np.abs(sol["u"][-1] - exact_u).max()),
                float(np.abs(sol["v"][-1] - exact_v).max()),
            )
        )
    rates = _rates(errors)
    assert rates.min() > order - 0.2, (errors, rates)


def test_long_run_with_open_faces_stays_bounded() -> None:
    """Forty transits of each characteristic: a spurious boundary instability would grow."""
    text = WAVE_SYSTEM.format(scheme="rk4", order=4).replace("[0, 0.5]", "[0, 20]")
    sol = ritz.compile(text).wave1.solve(cells=80, dt=0.5 / 80)
    x, t = sol.coords["x"], sol.t[-1]
    assert np.abs(sol["u"][-1] - (np.sin(2 * (x + t)) + np.cos(3 * (x - t)))).max() < 1e-5


def test_adjoint_through_an_open_face_matches_finite_differences() -> None:
    """The bump leaves through the open face before the end: the gradient is the face's."""
    text = (
        ADVECTION.format(order=2, faces="x = 0")
        .replace("sin(2*pi*(x - c*t))", "0")
        .replace("initial u = sin(2*pi*x)", "initial u = exp(-100 * (x - 0.6)^2)")
    )
    handle = ritz.compile(text).adv
    weights = np.linspace(0.5, 1.5, 40)

    def objective(c: float, u0: np.ndarray | None = None) -> float:
        initial = None if u0 is None else {"u": u0}
        return float(weights @ handle.solve(c=c, cells=40, dt=5e-3, initial=initial)["u"][-1])

    sol = handle.solve(c=0.7, cells=40, dt=5e-3)
    g = sol.vjp({"u": weights})
    step = 1e-6
    fd = (objective(0.7 + step) - objective(0.7 - step)) / (2 * step)
    assert abs(g.params["c"] - fd) < 1e-6 * max(1.0, abs(fd)), (g.params["c"], fd)
    # the initial-state gradient is the transpose of the whole step map, open face included:
    # the map is linear in u0, so a finite difference along any direction is exact
    u0 = sol["u"][0]
    direction = np.random.default_rng(0).normal(size=40)
    fd0 = (objective(0.7, u0 + direction) - objective(0.7, u0 - direction)) / 2
    assert abs(g.initial["u"] @ direction - fd0) < 1e-10 * max(1.0, abs(fd0))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (  # the inflow face of a right-moving wave
            "dt(u) = -diff(u, x)\n    boundary u = 0 at x = 1",
            "no boundary condition at x = 0: 1 characteristic of u enters there",
        ),
        (  # a nonlinear flux: the direction is the solution's
            "dt(u) = -u * diff(u, x)\n    boundary u = 0 at x = 0",
            "depends on the solution",
        ),
        (  # v enters at x = 1, and a condition on u there does not fix it
            "dt(u) = -diff(u, x)\n    dt(v) = diff(v, x)\n    boundary u = 0 at x = 0, x = 1",
            "at x = 1: 1 characteristic of u, v enters there, and the conditions on u do not "
            "fix it",
        ),
    ],
)
def test_a_face_that_characteristics_enter_needs_a_condition(body: str, message: str) -> None:
    fields = "u, v" if "dt(v)" in body else "u"
    initial = "".join(f"    initial {f} = 0\n" for f in fields.split(", "))
    text = (
        "pde p {\n    space x in [0, 1]\n    time t in [0, 1]\n"
        f"    field {fields}\n    {body}\n{initial}"
        "    solve fd(cells = 10, dt = 1e-3)\n}\n"
    )
    with pytest.raises(RitzError) as info:
        ritz.compile(text)
    assert info.value.code == "R313"
    assert message in str(info.value)


def test_a_flow_that_enters_through_part_of_a_face_needs_a_condition_there() -> None:
    text = """
pde rot {
    space x in [-1, 1]
    space y in [-1, 1]
    time t in [0, 0.5]
    field u
    dt(u) = y * diff(u, x) - x * diff(u, y)
    boundary u = 0 at x = -1
    boundary u = 0 at y = -1, y = 1
    initial u = exp(-10*(x^2 + y^2))
    solve fd(cells = 20, dt = 1e-3)
}
"""
    with pytest.raises(RitzError) as info:
        ritz.compile(text)
    assert info.value.code == "R313" and "at x = 1: 1 characteristic of u enters" in str(info.value)


def test_a_parameter_that_turns_the_flow_around_is_refused_at_run_time() -> None:
    handle = ritz.compile(ADVECTION.format(order=2, faces="x = 0")).adv
    with pytest.raises(RuntimeInputError) as info:
        handle.solve(c=-1.0)
    assert info.value.code == "R544" and "at x = 1" in str(info.value)
