"""dt(u) in the right-hand side of a second-order equation is the velocity the reduction to
first order makes: the damped wave u_tt = c^2 u_xx - g u_t against its exact solution, the
adjoint through the damping against central differences, Kelvin-Voigt damping (a derivative
of the velocity, which needs the velocity's ghosts) and sol["dt(u)"]."""

from __future__ import annotations

import numpy as np
import pytest

import ritz
from ritz.dsl import RitzError

DAMPED = """
pde damped {
    space x in [0, 1]
    time  t in [0, 0.5]
    field u
    param g = 0.5
    dt(u, 2) = diff(u, x, 2) - g * dt(u)
    boundary u = 0 at x = 0, x = 1
    initial u = sin(pi * x)
    initial dt(u) = 0
    solve fd(cells = 32, scheme = rk4, dt = 2e-4)
}
"""


def exact(x: np.ndarray, t: float, g: float) -> tuple[np.ndarray, np.ndarray]:
    w = np.sqrt(np.pi**2 - g**2 / 4)
    u = np.exp(-g * t / 2) * (np.cos(w * t) + g / (2 * w) * np.sin(w * t))
    v = -(np.pi**2) / w * np.exp(-g * t / 2) * np.sin(w * t)
    return u * np.sin(np.pi * x), v * np.sin(np.pi * x)


def test_damped_wave_converges_at_second_order_with_its_velocity() -> None:
    handle = ritz.compile(DAMPED)["damped"]
    errors = []
    for cells in (16, 32):
        sol = handle.solve(cells=cells)
        u, v = exact(sol.coords["x"], 0.5, 0.5)
        errors.append(float(np.abs(sol["u"][-1] - u).max()))
        assert "dt(u)" in sol and list(sol) == ["u"]
        assert float(np.abs(sol["dt(u)"][-1] - v).max()) < 4 * errors[-1]
    assert errors[1] < 2e-3 and 3.5 < errors[0] / errors[1] < 4.5, errors


def test_adjoint_through_the_damping() -> None:
    handle = ritz.compile(DAMPED.replace("t in [0, 0.5]", "t in [0, 0.1]"))["damped"]
    w = np.random.default_rng(1).standard_normal(32)
    grad = handle.solve().vjp({"u": w})
    h = 1e-4  # the loss is near-quadratic in g over this step; rounding is far below it
    up, down = (float(w @ handle.solve(g=0.5 + s)["u"][-1]) for s in (h, -h))
    assert grad.params["g"] == pytest.approx((up - down) / (2 * h), rel=1e-6)


def test_cotangent_of_the_velocity() -> None:
    """A loss on sol["dt(u)"] as well as on u: its gradient with respect to g and to the
    initial velocity against central differences."""
    handle = ritz.compile(DAMPED.replace("t in [0, 0.5]", "t in [0, 0.1]"))["damped"]
    rng = np.random.default_rng(2)
    w, wv = rng.standard_normal(32), rng.standard_normal(32)

    def loss(sol) -> float:
        return float(w @ sol["u"][-1] + wv @ sol["dt(u)"][-1])

    grad = handle.solve().vjp({"u": w, "dt(u)": wv})
    h = 1e-4
    up, down = (loss(handle.solve(g=0.5 + s)) for s in (h, -h))
    assert grad.params["g"] == pytest.approx((up - down) / (2 * h), rel=1e-6)
    x = handle.solve().coords["x"]
    direction = np.cos(3 * x)
    up, down = (loss(handle.solve(initial={"dt(u)": s * direction})) for s in (h, -h))
    assert float(grad.initial["dt(u)"] @ direction) == pytest.approx((up - down) / (2 * h), 1e-7)


def test_a_derivative_of_the_velocity() -> None:
    """Kelvin-Voigt: u_tt = u_xx + b (u_t)_xx on the mode sin(k x), k = pi/2, whose amplitude
    solves a'' = -k^2 a - b k^2 a' (Dirichlet at 0, Neumann at 1: the velocity's faces too)."""
    text = """
pde kv {
    space x in [0, 1]
    time  t in [0, 0.2]
    field u
    param b = 0.05
    dt(u, 2) = diff(u, x, 2) + b * diff(dt(u), x, 2)
    boundary u = 0 at x = 0
    boundary diff(u, x) = 0 at x = 1
    initial u = sin(pi * x / 2)
    initial dt(u) = 0
    solve fd(cells = 40, scheme = cn, dt = 1e-3)
}
"""
    sol = ritz.compile(text)["kv"].solve()
    k, b = np.pi / 2, 0.05
    roots = np.roots([1, b * k * k, k * k])
    c = np.linalg.solve(np.array([[1, 1], roots]), [1, 0])
    amplitude = float((c * np.exp(roots * 0.2)).sum().real)
    err = np.abs(sol["u"][-1] - amplitude * np.sin(k * sol.coords["x"])).max()
    assert err < 1e-4, err


def test_velocity_of_a_first_order_field_is_refused() -> None:
    with pytest.raises(RitzError) as err:
        ritz.compile(DAMPED.replace("dt(u, 2) =", "dt(u) =").replace("initial dt(u) = 0", ""))
    assert err.value.code == "R305" and "dt(u) = v, dt(v)" in (err.value.hint or "")


def test_save_writes_the_velocity(tmp_path) -> None:
    sol = ritz.compile(DAMPED.replace("t in [0, 0.5]", "t in [0, 0.01]"))["damped"].solve()
    with np.load(sol.save(tmp_path / "s.npz")) as saved:
        assert np.array_equal(saved["field_dt(u)"], sol["dt(u)"])
        assert np.array_equal(saved["field_u"], sol["u"])


def test_a_moving_coefficient_on_a_differentiated_velocity_is_refused() -> None:
    """Kelvin-Voigt with diff(u, x) + (1 + t) u = g(t): the velocity's condition would need
    -u at the face times d(1 + t)/dt in its data; compiled without it the error stayed 0.07 at
    every resolution. R416 at the boundary line, from the check."""
    text = """
pde kv {
    space x in [0, 1]
    time  t in [0, 0.5]
    field u
    dt(u, 2) = diff(u, x, 2) + 0.5 * diff(dt(u), x, 2)
    boundary u = 0 at x = 0
    boundary diff(u, x) + (1 + t) * u = 0 at x = 1
    initial u = sin(x)
    initial dt(u) = 0
}
"""
    with pytest.raises(RitzError) as err:
        ritz.compile(text)
    assert err.value.code == "R416" and err.value.line == 8
    # without the damping term the velocity's ghosts are never read: nothing to refuse
    plain = text.replace(" + 0.5 * diff(dt(u), x, 2)", "")
    assert ritz.compile(plain).kv.solve(cells=16, dt=1e-3)["u"].shape == (2, 16)
