"""Gradients with respect to parameters of boundary conditions: Dirichlet and Robin data that
vary with t and along the face, and a Robin coefficient (which multiplies the state on the face),
through explicit, implicit and steady solves, checked against central differences of whole
solves. The rule table holds the ghosts fixed and the fold kernels add (dG/dp)^T of the
cotangent each ghost read received: dropping that part, or taking the ghost data at the wrong
stage time, errs at 1e-2 or more; the tolerance is 1e-6 relative."""

from __future__ import annotations

import numpy as np
import pytest

import ritz

ONE_D = """
pde h {
    space x in [0, 1]
    time t in [0, 0.02]
    field u
    param nu = 0.5, g = 0.3, q = -0.7, a = 2.0
    dt(u) = nu * diff(u, x, 2) + 0.1 * u^2
    boundary u = g * (1 + 5 * t) at x = 0
    boundary diff(u, x) + a * u = q + sin(20 * t) at x = 1
    initial u = sin(pi * x) + 0.2
    solve fd(cells = 16, scheme = SCHEME, dt = 1e-3)
}
"""

STEADY = """
pde s {
    space x in [0, 1]
    field u
    param nu = 1.0, g = 0.3, q = -0.7, a = 2.0
    -nu * diff(u, x, 2) + u^3 = 1
    boundary u = g at x = 0
    boundary diff(u, x) + a * u = q at x = 1
    solve fd(cells = 16, order = ORDER)
}
"""

TWO_D = """
pde h2 {
    space x in [0, 1]
    space y in [0, 1]
    time t in [0, 0.005]
    field u
    param g = 0.3, q = -0.7, a = 2.0
    dt(u) = div((1 + u^2) * grad(u))
    boundary u = g * y * (1 - y) + t at x = 0
    boundary diff(u, x) + a * (1 + y) * u = q * sin(pi * y) at x = 1
    boundary diff(u, y) = 0 at y = 0, y = 1
    initial u = sin(pi * x) * cos(pi * y) + 0.2
    solve fd(cells = [8, 6], scheme = rk2, dt = 2.5e-4)
}
"""


def final(sol) -> np.ndarray:
    return sol["u"][-1] if sol.t is not None else sol["u"]


def check_against_differences(handle, values: dict[str, float]) -> None:
    sol = handle.solve()
    w = np.random.default_rng(0).standard_normal(final(sol).shape)
    grad = sol.vjp({"u": w})
    assert set(grad.params) == set(values)
    for name, value in values.items():
        h = 1e-5

        def loss(v: float, name: str = name) -> float:
            return float(np.sum(w * final(handle.solve(**{name: v}))))

        expected = (loss(value + h) - loss(value - h)) / (2 * h)
        assert grad.params[name] == pytest.approx(expected, rel=1e-6, abs=1e-9), name


@pytest.mark.parametrize("scheme", ["rk4", "cn", "imex"])
def test_time_dependent_boundary_parameters(scheme: str) -> None:
    handle = ritz.compile(ONE_D.replace("SCHEME", scheme))["h"]
    check_against_differences(handle, {"nu": 0.5, "g": 0.3, "q": -0.7, "a": 2.0})


@pytest.mark.parametrize("order", [2, 4])
def test_steady_boundary_parameters(order: int) -> None:
    handle = ritz.compile(STEADY.replace("ORDER", str(order)))["s"]
    check_against_differences(handle, {"nu": 1.0, "g": 0.3, "q": -0.7, "a": 2.0})


@pytest.mark.slow
def test_face_varying_data_and_coefficient_in_two_dimensions() -> None:
    """Flux form inside, data along y and a Robin coefficient of y on the faces of x."""
    handle = ritz.compile(TWO_D)["h2"]
    check_against_differences(handle, {"g": 0.3, "q": -0.7, "a": 2.0})


def test_boundary_only_parameter_has_no_other_path() -> None:
    """A parameter only a Dirichlet condition reads: its gradient is the ghosts' part alone,
    and for u = g on a heat equation with u(0) = 0 the final state is linear in g."""
    text = ONE_D.replace("SCHEME", "rk4").replace("+ 0.1 * u^2", "")
    handle = ritz.compile(text)["h"]
    sol = handle.solve()
    w = np.ones(16)
    grad = sol.vjp({"u": w}, params="g")
    shifted = float(np.sum(final(handle.solve(g=1.3)))) - float(np.sum(final(sol)))
    assert grad.params["g"] == pytest.approx(shifted, rel=1e-10)


def test_robin_coefficient_of_t_in_an_implicit_step() -> None:
    """The ghost weights of a Robin coefficient of t change every step: the Jacobian is not
    constant, and the adjoint must not reuse one from another step (it erred by 0.2-5%)."""
    text = ONE_D.replace("+ a * u = q", "+ a * (1 + 5 * t) * u = q").replace("SCHEME", "cn")
    check_against_differences(ritz.compile(text)["h"], {"nu": 0.5, "g": 0.3, "q": -0.7, "a": 2.0})


MIXED_STEADY = """
pde sm {
    space x in [0, 1]
    space y in [0, 1] periodic
    field u
    param a = 0.5
    -lap(u) + 0.3 * diff(diff(u, x), y) + u = 1
    boundary u = a * sin(2 * pi * y) at x = 0
    boundary diff(u, x) = 0 at x = 1
    solve fd(cells = [8, 8])
}
"""


def test_steady_mixed_derivative_across_a_periodic_seam() -> None:
    """The folds of a mixed derivative read lambda across the periodic seam, whose halo a
    steady adjoint had not filled (the boundary parameter's gradient was 42% off)."""
    check_against_differences(ritz.compile(MIXED_STEADY)["sm"], {"a": 0.5})
