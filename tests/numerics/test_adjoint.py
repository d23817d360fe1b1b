"""The discrete adjoint (``sol.vjp``) of explicit solves, checked against central differences of
whole solves: for the parameters (through the right-hand sides and the initial condition) and
for the initial state along a random direction. The adjoint is the transpose of the computed
steps, so it agrees with differences of the computed numbers to their rounding, whatever the
grid: the tolerances below (1e-7 relative) would catch a missing fold, a wrong stage weight or
a stage evaluated at the wrong state, which all err at 1e-3 or more."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import ritz
from ritz.dsl import RitzError
from ritz.runtime.drivers.integrators import run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

ROBIN = """
pde rob {
    space x in [0, 1]
    time t in [0, 0.05]
    field u
    param k = 0.7, a = 2.0
    dt(u) = k * diff(u, x, 2) + a * u * (1 - u)
    boundary diff(u, x) + 3 * u = sin(5 * t) at x = 0
    boundary diff(u, x) = 1 at x = 1
    initial u = a * cos(x) / 4
    solve fd(cells = 24, scheme = rk4, dt = 2e-4)
}
"""

MIXED = """
pde mix {
    space x in [0, 1]
    space y in [0, 1] periodic
    time t in [0, 0.01]
    field u
    param b = 0.3
    dt(u) = 0.1 * lap(u) + b * diff(diff(u, x), y) - u * diff(u, x)
    boundary u = x * y at x = 0, x = 1
    initial u = sin(pi * x) * cos(2 * pi * y)
    solve fd(cells = 12, scheme = rk2, dt = 2e-4)
}
"""


def example(name: str, **replace: str) -> str:
    text = (EXAMPLES / f"{name}.dsl").read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def gradient_errors(text: str, name: str, per_frame: bool = False, **kw) -> dict[str, float]:
    """Relative errors of sol.vjp against central differences, per parameter and for the
    initial state ("initial"), for the loss sum(W * u) over the final or every output frame."""
    handle = ritz.compile(text)[name]
    sol = handle.solve(**kw)
    rng = np.random.default_rng(1)
    frames = {f: sol[f].shape if per_frame else sol[f].shape[1:] for f in sol}
    weights = {f: rng.standard_normal(shape) for f, shape in frames.items()}

    def loss(fields) -> float:
        return sum(
            float(np.sum(w * (fields[f] if per_frame else fields[f][-1])))
            for f, w in weights.items()
        )

    grad = sol.vjp(weights)
    errors = {}
    for p in handle.problem.params:
        value = float(kw.get(p.name, p.default))
        eps = 1e-4 * max(1e-3, abs(value))
        up = loss(handle.solve(**{**kw, p.name: value + eps}))
        down = loss(handle.solve(**{**kw, p.name: value - eps}))
        fd = (up - down) / (2 * eps)
        errors[p.name] = abs(grad.params[p.name] - fd) / max(abs(fd), 1e-12)
    lowered = handle.prepare(**kw).plan["fields"]
    names = {f: f if f in sol else f"dt({f[3:]})" for f in lowered}  # dt_u -> dt(u)
    direction = {f: rng.standard_normal(sol[next(iter(sol))].shape[1:]) for f in lowered}

    def perturbed(eps: float) -> float:
        sim = handle.prepare(**kw)
        for f, d in direction.items():
            sim.interior(f)[...] += eps * d
        return loss(run(sim, list(sol.t), tuple(sol.fields))[1])

    fd = (perturbed(1e-6) - perturbed(-1e-6)) / 2e-6
    ad = sum(float(np.sum(grad.initial[names[f]] * d)) for f, d in direction.items())
    errors["initial"] = abs(ad - fd) / abs(fd)
    return errors


@pytest.mark.parametrize("scheme", ["euler", "rk2", "ssprk3", "rk4"])
def test_heat_every_tableau(scheme: str) -> None:
    errors = gradient_errors(example("heat1d"), "heat1d", cells=24, dt=2e-4, scheme=scheme)
    assert max(errors.values()) < 1e-7, errors


def test_robin_faces_time_dependent_data_and_initial_parameter() -> None:
    """Robin and Neumann folds (ghost weights rational in h), ghost data that vary in time, a
    reaction term, and a parameter that enters the initial condition as well."""
    errors = gradient_errors(ROBIN, "rob")
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.slow
def test_robin_order4() -> None:
    errors = gradient_errors(ROBIN, "rob", order=4, scheme="ssprk3", dt=1e-4)
    assert max(errors.values()) < 1e-7, errors


def test_burgers_cotangents_at_every_output() -> None:
    text = example("burgers", **{"t in [0, 1]": "t in [0, 0.2]"})
    errors = gradient_errors(text, "burgers", per_frame=True, cells=48, dt=2e-3, every=0.1)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.slow
def test_gray_scott_two_fields_periodic() -> None:
    text = example("gray_scott", **{"t in [0, 1000]": "t in [0, 20]"})
    errors = gradient_errors(text, "gray_scott", per_frame=True, cells=16, every=10)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.slow
def test_wave_second_order_in_time() -> None:
    text = example("wave2d", **{"t in [0, 1]": "t in [0, 0.1]"})
    errors = gradient_errors(text, "wave2d", cells=12, dt=2e-3)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.slow
def test_mixed_derivative_across_a_periodic_axis() -> None:
    errors = gradient_errors(MIXED, "mix")
    assert max(errors.values()) < 1e-7, errors


MIXED_PERIODIC_FIRST = """
pde mix2 {
    space x in [0, 1] periodic
    space y in [0, 1]
    time t in [0, 0.01]
    field u
    param b = 0.3
    dt(u) = 0.1 * lap(u) + b * diff(diff(u, x), y) - u * diff(u, y) + y * diff(u, x)
    boundary diff(u, y) + 2 * u = x at y = 0
    boundary u = 1 at y = 1
    initial u = sin(2 * pi * x) * cos(pi * y)
    solve fd(cells = 12, scheme = rk2, dt = 2e-4)
}
"""


@pytest.mark.slow
def test_fold_beside_a_periodic_shift() -> None:
    """The mixed derivative's transposed chain is a periodic shift of a fold here (the
    non-periodic axis is the second): the fold runs at a shifted position, beside Robin data
    that vary along the face."""
    errors = gradient_errors(MIXED_PERIODIC_FIRST, "mix2")
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.slow
def test_diffusion3d_mixed_conditions_order4() -> None:
    text = example("diffusion3d", **{"t in [0, 0.05]": "t in [0, 0.002]"})
    errors = gradient_errors(text, "diffusion3d", cells=8, dt=2e-4, order=4)
    assert max(errors.values()) < 1e-7, errors


LINEAR_ROBIN = """
pde lr {
    space x in [0, 1]
    time t in [0, 0.02]
    field u
    param k = 0.7
    dt(u) = k * diff(u, x, 2) - 0.3 * diff(u, x) + 2 * x * u
    boundary diff(u, x) + 3 * u = 1 at x = 0
    boundary diff(u, x) = 0 at x = 1
    initial u = 0
    solve fd(cells = 12, scheme = ssprk3, dt = 1e-4, order = 4)
}
"""

LINEAR_2D = """
pde l2 {
    space x in [0, 1]
    space y in [0, 1] periodic
    time t in [0, 0.005]
    field u, v
    dt(u) = lap(u) + diff(diff(v, x), y) - v
    dt(v) = 0.5 * lap(v) + u * cos(2 * pi * y)
    boundary u = 0 at x = 0
    boundary diff(u, x) = 0 at x = 1
    boundary v = 1 at x = 0, x = 1
    initial u = 0
    initial v = 0
    solve fd(cells = [7, 6], scheme = euler, dt = 1e-4)
}
"""


def _step_matrix(handle, kw: dict, sol, fields: tuple[str, ...]) -> np.ndarray:
    """The linear part of u0 -> u(T), column by column from solves of unit initial states
    (the affine part, from zero initial states, subtracted)."""
    shape = next(iter(sol.fields.values())).shape[1:]
    size = int(np.prod(shape))

    def final(vector: np.ndarray) -> np.ndarray:
        sim = handle.prepare(**kw)
        for k, f in enumerate(fields):
            sim.interior(f)[...] = vector[k * size : (k + 1) * size].reshape(shape)
        out = run(sim, list(sol.t), fields)[1]
        return np.concatenate([out[f][-1].ravel() for f in fields])

    zero = final(np.zeros(size * len(fields)))
    return np.array([final(e) - zero for e in np.eye(size * len(fields))]).T


@pytest.mark.parametrize(
    ("text", "name", "fields"),
    [
        (example("heat1d"), "heat1d", ("u",)),
        (LINEAR_ROBIN, "lr", ("u",)),
        (LINEAR_2D, "l2", ("u", "v")),
    ],
    ids=["dirichlet", "robin-order4", "2d-two-fields-mixed-derivative"],
)
def test_linear_adjoint_is_the_transpose(text: str, name: str, fields: tuple[str, ...]) -> None:
    """Dot-product test of the compiled adjoint: for a linear problem u0 -> u(T) is affine with
    a matrix M, and vjp must give M^T w to rounding (1e-12)."""
    handle = ritz.compile(text)[name]
    kw = {"cells": 10, "dt": 1e-3} if name == "heat1d" else {}
    sol = handle.solve(**kw)
    matrix = _step_matrix(handle, kw, sol, fields)
    w = np.random.default_rng(2).standard_normal(matrix.shape[0])
    size = matrix.shape[0] // len(fields)
    shape = sol[fields[0]].shape[1:]
    grad = sol.vjp({f: w[k * size : (k + 1) * size].reshape(shape) for k, f in enumerate(fields)})
    got = np.concatenate([grad.initial[f].ravel() for f in fields])
    np.testing.assert_allclose(got, matrix.T @ w, rtol=1e-12, atol=1e-12 * np.abs(matrix).max())


def test_checkpoint_counts_agree() -> None:
    """Every checkpointing (one state, a few, the default sqrt, one per step: no
    recomputation) sweeps the same steps and gives the same gradient."""
    handle = ritz.compile(example("burgers", **{"t in [0, 1]": "t in [0, 0.1]"}))["burgers"]
    sol = handle.solve(cells=32, dt=4e-3, every=0.05)
    w = {"u": np.random.default_rng(7).standard_normal(sol["u"].shape)}
    reference = sol.vjp(w)
    steps = sol.info["steps"]  # 26: two outputs of 13 steps
    assert reference.info["checkpoints"] == math.ceil(math.sqrt(steps))
    for count in (1, 3, steps, 100):
        grad = sol.vjp(w, checkpoints=count)
        assert grad.params["nu"] == pytest.approx(reference.params["nu"], rel=1e-13)
        np.testing.assert_allclose(grad.initial["u"], reference.initial["u"], rtol=1e-13)
    with pytest.raises(RitzError):
        sol.vjp(w, checkpoints=0)


def test_taylor_remainder_is_second_order() -> None:
    """Taylor test on a nonlinear problem: |L(x + h d) - L(x) - h <g, d>| falls as h^2 (ratio 4
    per halving) for a parameter and for the initial state; a wrong gradient leaves it O(h)."""
    text = example("burgers", **{"t in [0, 1]": "t in [0, 0.1]"})
    handle = ritz.compile(text)["burgers"]
    kw = {"cells": 32, "dt": 4e-3}
    sol = handle.solve(**kw)
    rng = np.random.default_rng(8)
    w = rng.standard_normal(32)
    grad = sol.vjp({"u": w})
    d = rng.standard_normal(32)
    nu = float(handle.problem.params[0].default)

    def loss(h: float, along_initial: bool) -> float:
        sim = handle.prepare(**kw, nu=nu + (0.0 if along_initial else h))
        if along_initial:
            sim.interior("u")[...] += h * d
        return float(np.sum(w * run(sim, list(sol.t), ("u",))[1]["u"][-1]))

    for along_initial, slope in ((False, grad.params["nu"]), (True, float(grad.initial["u"] @ d))):
        base = loss(0.0, along_initial)
        steps = [0.1 / 2**k for k in range(4)] if along_initial else [1e-2 / 2**k for k in range(4)]
        rem = [abs(loss(h, along_initial) - base - h * slope) for h in steps]
        ratios = [a / b for a, b in itertools.pairwise(rem)]
        assert all(3.5 < r < 4.5 for r in ratios), (along_initial, rem, ratios)


def test_float32() -> None:
    handle = ritz.compile(example("heat1d"))["heat1d"]
    kw = {"cells": 24, "dt": 2e-4}
    w = np.random.default_rng(3).standard_normal(24)
    g64 = handle.solve(**kw).vjp({"u": w})
    g32 = handle.solve(dtype="float32", **kw).vjp({"u": w})
    assert g32.params["nu"] == pytest.approx(g64.params["nu"], rel=1e-4)
    np.testing.assert_allclose(g32.initial["u"], g64.initial["u"], rtol=1e-4, atol=1e-5)


def test_parameter_subset_with_a_boundary_parameter() -> None:
    """A parameter of both the right-hand side and a boundary condition: its gradient has both
    parts (tests/numerics/test_adjoint_boundary.py checks them against differences), and
    ``params=`` still picks a subset."""
    text = ROBIN.replace("= sin(5 * t) at x = 0", "= a * sin(5 * t) at x = 0")
    handle = ritz.compile(text)["rob"]
    sol = handle.solve()
    w = {"u": np.ones(24)}
    full = sol.vjp(w)
    h = 1e-5
    up, down = (float(np.sum(handle.solve(a=2.0 + s)["u"][-1])) for s in (h, -h))
    assert full.params["a"] == pytest.approx((up - down) / (2 * h), rel=1e-6)
    grad = sol.vjp(w, params=["k"])
    assert list(grad.params) == ["k"] and grad.params["k"] == pytest.approx(full.params["k"])


@pytest.mark.parametrize(
    ("cotangent", "code"),
    [
        ({"v": np.ones(24)}, "R513"),
        ({"u": np.ones(23)}, "R513"),
        ({"u": np.full(24, np.nan)}, "R513"),
    ],
)
def test_bad_cotangents(cotangent, code: str) -> None:
    sol = ritz.compile(example("heat1d"))["heat1d"].solve(cells=24, dt=1e-3)
    with pytest.raises(RitzError) as err:
        sol.vjp(cotangent)
    assert err.value.code == code


IMEX_TWO_FIELDS = """
pde rob {
    space x in [0, 1]
    time t in [0, 0.05]
    field u, v
    param k = 0.7, a = 2.0
    dt(u) = k * diff(u, x, 2) + a * u * (1 - v) - diff(u, x)
    dt(v) = 0.1 * diff(v, x, 2) + u * v
    boundary diff(u, x) + 3 * u = sin(5 * t) at x = 0
    boundary diff(u, x) = 1 at x = 1
    boundary v = 0 at all
    initial u = a * cos(x) / 4
    initial v = sin(pi * x)
    solve fd(cells = 20, scheme = imex, dt = 5e-3)
}
"""


@pytest.mark.parametrize("scheme", ["cn", "imex"])
def test_implicit_heat(scheme: str) -> None:
    """Crank-Nicolson and CNAB2 steps: J^T mu = lambda with the step's Jacobian (factorised
    once: constant), then the explicit half transposed; every output frame has a cotangent."""
    errors = gradient_errors(
        example("heat1d"), "heat1d", per_frame=True, cells=24, dt=5e-3, scheme=scheme, every=0.03
    )
    assert max(errors.values()) < 1e-7, errors


def test_imex_two_fields_history_and_a_new_step_size() -> None:
    """imex on two coupled fields with Robin data: the history N(u_prev) has its own
    cotangent, and the output every 0.02 shortens the last steps, so a first-step variant
    runs in the middle of the solve (its history cotangent restarts from zero)."""
    errors = gradient_errors(IMEX_TWO_FIELDS, "rob", per_frame=True, every=0.02)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.slow
def test_cn_nonlinear_order4() -> None:
    """cn on a nonlinear problem: the Jacobian of each step is assembled at its new state."""
    errors = gradient_errors(IMEX_TWO_FIELDS, "rob", scheme="cn", order=4)
    assert max(errors.values()) < 1e-7, errors


STEADY = """
pde p {
    space x in [0, 1]
    space y in [0, 1]
    field u
    param k = 2, s = 1
    -lap(u) + k * u^3 = s * sin(pi * x) * (1 + y)
    boundary u = 0 at x = 0, x = 1
    boundary diff(u, y) + 2 * u = 0.5 at y = 0
    boundary diff(u, y) = 0 at y = 1
    solve fd(cells = [20, 14], tol = 1e-13)
}
"""


def test_steady_adjoint() -> None:
    """A nonlinear steady problem with Dirichlet, Robin and Neumann faces: dL/dp = -lambda^T
    dR/dp with J^T lambda = w, against central differences of whole Newton solves."""
    handle = ritz.compile(STEADY)["p"]
    sol = handle.solve()
    w = np.random.default_rng(5).standard_normal(sol["u"].shape)
    grad = sol.vjp({"u": w})
    assert grad.initial == {}
    for p, value in {"k": 2.0, "s": 1.0}.items():
        eps = 1e-5
        up = float(np.sum(w * handle.solve(**{p: value + eps})["u"]))
        down = float(np.sum(w * handle.solve(**{p: value - eps})["u"]))
        fd = (up - down) / (2 * eps)
        assert grad.params[p] == pytest.approx(fd, rel=1e-6)
    with pytest.raises(RitzError) as err:
        sol.vjp({"u": np.ones((20, 13))})
    assert err.value.code == "R513"


def test_steady_adjoint_without_parameters() -> None:
    """Poisson has no parameter: the gradient is lambda, which solves J^T lambda = w (J from
    the derived Jacobian-vector products, column by column; the boundary closure makes it
    unsymmetric, so J lambda = w would fail)."""
    handle = ritz.compile(example("poisson"))["poisson"]
    sol = handle.solve(cells=12)
    w = np.random.default_rng(10).standard_normal((12, 12))
    grad = sol.vjp({"u": w})
    assert grad.params == {}
    lam = grad.info["adjoint_state"]["u"]
    sim = handle.prepare(cells=12)
    from ritz.runtime.drivers.solvers import SteadyProblem

    problem = SteadyProblem(sim)
    jac = np.array([problem.jvp(e) for e in np.eye(144)]).T
    np.testing.assert_allclose(jac.T @ lam.ravel(), w.ravel(), rtol=1e-10, atol=1e-10)
    assert np.abs(jac @ lam.ravel() - w.ravel()).max() > 1e-3


def test_given_initial_values() -> None:
    """solve(initial=...) replaces ROBIN's initial u = a cos(x) / 4: the gradient for a then
    has no term through the initial condition, and g.initial is for the given state."""
    handle = ritz.compile(ROBIN)["rob"]
    rng = np.random.default_rng(9)
    u0 = rng.standard_normal(24) * 0.1
    w = rng.standard_normal(24)
    grad = handle.solve(initial={"u": u0}).vjp({"u": w})

    def loss(**kw) -> float:
        return float(np.sum(w * handle.solve(**kw)["u"][-1]))

    eps = 1e-4
    fd = (loss(initial={"u": u0}, a=2 + eps) - loss(initial={"u": u0}, a=2 - eps)) / (2 * eps)
    assert grad.params["a"] == pytest.approx(fd, rel=1e-7)
    d = rng.standard_normal(24)
    fd = (loss(initial={"u": u0 + 1e-6 * d}) - loss(initial={"u": u0 - 1e-6 * d})) / 2e-6
    assert float(grad.initial["u"] @ d) == pytest.approx(fd, rel=1e-7)


def test_given_initial_values_are_copied_by_the_solve() -> None:
    """The caller reusing its initial array after the solve must not change what the solve's
    vjp differentiates (the recomputation from checkpoints starts from the initial state)."""
    handle = ritz.compile(ROBIN)["rob"]
    u0 = 0.1 * np.sin(np.linspace(0.0, 3.0, 24))
    w = np.ones(24)
    sol = handle.solve(initial={"u": u0})
    before = sol.vjp({"u": w}).params["a"]
    u0 *= 3.0
    assert sol.vjp({"u": w}).params["a"] == before


def test_an_overflowing_adjoint_and_a_masked_cotangent_are_refused() -> None:
    sol = ritz.compile(example("heat1d"))["heat1d"].solve(cells=24, dt=1e-3)
    with pytest.raises(RitzError) as err:
        sol.vjp({"u": np.full(24, 1e308)})
    assert err.value.code == "R540" and "overflowed" in err.value.message
    masked = np.ma.masked_array(np.ones(24), mask=[True] + [False] * 23)
    with pytest.raises(RitzError) as err:
        sol.vjp({"u": masked})
    assert err.value.code == "R513" and "masked" in err.value.message


def test_imex_with_no_linear_part() -> None:
    """No term linear in the field: the implicit half is the identity, and the adjoint has no
    residual entry (it was written as a function with an empty body)."""
    text = """
pde p {
    space x in [0, 1] periodic
    time t in [0, 0.01]
    field u
    param s = 0.7
    dt(u) = -s * u^2
    initial u = 1 + 0.5 * sin(2 * pi * x)
    solve fd(cells = 8, scheme = imex, dt = 1e-3)
}
"""
    errors = gradient_errors(text, "p")
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize(
    "initial", [{"w": np.zeros(24)}, {"u": np.zeros(23)}, {"u": np.full(24, np.inf)}, [1.0]]
)
def test_bad_initial_values(initial) -> None:
    with pytest.raises(RitzError) as err:
        ritz.compile(ROBIN)["rob"].solve(initial=initial)
    assert err.value.code == "R514"


def test_compiled_and_python_sweeps_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small grids sweep each checkpoint segment in one compiled call, large ones call the
    step and its adjoint from Python: both give the same gradient."""
    from ritz.runtime.drivers import reverse

    sol = ritz.compile(MIXED)["mix"].solve()
    w = {"u": np.random.default_rng(11).standard_normal(sol["u"].shape[1:])}
    compiled = sol.vjp(w)
    monkeypatch.setattr(reverse, "COMPILED_SEGMENT_POINTS", 0)
    python = sol.vjp(w)
    assert python.params["b"] == pytest.approx(compiled.params["b"], rel=1e-13)
    np.testing.assert_allclose(python.initial["u"], compiled.initial["u"], rtol=1e-13)


IMEX_INITIAL_PARAMETER = """
pde q {
    space x in [0, 1]
    time t in [0, 0.05]
    field u
    param nu = 0.5, a = 2
    dt(u) = nu * diff(u, x, 2) - u^3
    boundary u = 0 at all
    initial u = a * sin(pi * x)
    solve fd(cells = 20, scheme = imex, dt = 1e-2)
}
"""


def test_implicit_parameter_of_the_initial_condition_only() -> None:
    """``a`` enters only the initial condition: the implicit step's entries have no term for
    it, adjoint_initial has."""
    errors = gradient_errors(IMEX_INITIAL_PARAMETER, "q")
    assert max(errors.values()) < 1e-7, errors


ACCUMULATED = """
pde accum {
    space x in [0, 1]
    time t in [0, 0.1]
    field u, v
    param nu = 0.5
    dt(u) = nu * diff(u, x, 2)
    dt(v) = u
    boundary u = 0 at all
    initial u = sin(pi * x)
    initial v = 0
    solve fd(cells = 8, scheme = rk4, dt = 1e-3)
}
"""


@pytest.mark.parametrize("scheme", ["rk4", "cn"])
def test_a_field_no_right_hand_side_reads(scheme: str) -> None:
    """v, the time integral of u, is read by no right-hand side: the adjoint was an internal
    error (no Input named v); its own vjp is zero, and its cotangent flows into u."""
    handle = ritz.compile(ACCUMULATED).accum
    sol = handle.solve(scheme=scheme)
    grad = sol.vjp({"v": np.ones(8)})

    def total(nu: float) -> float:
        return float(handle.solve(scheme=scheme, nu=nu)["v"][-1].sum())

    fd = (total(0.5 + 1e-5) - total(0.5 - 1e-5)) / 2e-5
    assert grad.params["nu"] == pytest.approx(fd, rel=1e-8)
    assert np.all(grad.initial["v"] == 1.0)  # v(T) = v(0) + the integral of u
