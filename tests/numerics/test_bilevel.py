"""Bilevel programs (LANGUAGE.md §6) with the implicit method: hypergradients against closed
forms and differences of exact lower solutions, Stackelberg equilibria against their formulas,
and active bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ritz
from ritz.dsl.diagnostics import RitzError
from ritz.runtime.cli import main

RIDGE = """\
bilevel ridge {
    data X: [n, p], y: [n], Xv: [m, p], yv: [m]
    upper lam = 0.0
    lower w: [p] = 0
    lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum((Xv @ w - yv)^2)
    solve implicit(tol = 1e-10, steps = 100, lr = 0.1)
}
"""

COURNOT = """\
bilevel cournot {
    param a = 100, b = 1, c1 = 10, c2 = 10
    upper q1 = 10 in [0, 100]
    lower q2 = 10 in [0, 100]
    lower maximize q2 * (a - b * (q1 + q2)) - c2 * q2
    upper maximize q1 * (a - b * (q1 + q2)) - c1 * q1
}
"""

OLIGOPOLY = """\
bilevel oligopoly {
    param a = 100, b = 1, c = 10
    upper q0 = 10 in [0, 100]
    lower q1 = 10 in [0, 100]
    lower q2 = 10 in [0, 100]
    lower maximize q1 * (a - b * (q0 + q1 + q2)) - c * q1 over q1
    lower maximize q2 * (a - b * (q0 + q1 + q2)) - c * q2 over q2
    upper maximize q0 * (a - b * (q0 + q1 + q2)) - c * q0
}
"""


def _ridge_data(seed: int = 0, n: int = 60, m: int = 40, p: int = 30) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=p)
    X, Xv = rng.normal(size=(n, p)), rng.normal(size=(m, p))
    return {
        "X": X,
        "y": X @ w_true + 3.0 * rng.normal(size=n),
        "Xv": Xv,
        "yv": Xv @ w_true + 3.0 * rng.normal(size=m),
    }


def _ridge_closed(d: dict[str, np.ndarray], lam: float) -> tuple[float, float]:
    """F(lam) and dF/dlam from the exact solution w = (X^T X + e^lam I)^-1 X^T y."""
    X, y, Xv, yv = d["X"], d["y"], d["Xv"], d["yv"]
    A = X.T @ X + np.exp(lam) * np.eye(X.shape[1])
    w = np.linalg.solve(A, X.T @ y)
    r = Xv @ w - yv
    dw = -np.linalg.solve(A, np.exp(lam) * w)
    return 0.5 * float(r @ r), float(r @ (Xv @ dw))


@pytest.mark.parametrize("lam", [-2.0, 0.3, 2.5])
def test_ridge_hypergradient_matches_closed_form(lam: float) -> None:
    d = _ridge_data()
    h = ritz.compile(RIDGE).ridge.hypergrad(lam=lam, **d)
    _, want = _ridge_closed(d, lam)
    assert h["lam"] == pytest.approx(want, rel=1e-8)


def test_ridge_solve_finds_the_best_regularisation() -> None:
    from scipy.optimize import minimize_scalar

    d = _ridge_data()
    res = ritz.compile(RIDGE).ridge.solve(**d)
    best = minimize_scalar(
        lambda lam: _ridge_closed(d, lam)[0],
        bounds=(-10, 10),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert res.upper["lam"] == pytest.approx(best.x, abs=1e-4)
    assert abs(res.hypergrad["lam"]) < 1e-6 * abs(_ridge_closed(d, 0.0)[1])
    X, y = d["X"], d["y"]
    A = X.T @ X + np.exp(res.upper["lam"]) * np.eye(X.shape[1])
    np.testing.assert_allclose(res.lower["w"], np.linalg.solve(A, X.T @ y), rtol=1e-8)
    assert res.history[-1] == pytest.approx(best.fun, rel=1e-9)
    assert res.history[0] > res.history[-1]


@pytest.mark.parametrize(("outer", "lr", "steps"), [("gd", 2e-3, 300), ("adam", 0.05, 300)])
def test_ridge_first_order_outer_loops(outer: str, lr: float, steps: int) -> None:
    d = _ridge_data()
    res = ritz.compile(RIDGE).ridge.solve(**d, outer=outer, lr=lr, steps=steps)
    best = ritz.compile(RIDGE).ridge.solve(**d)
    assert res.info["outer"] == outer
    assert res.upper["lam"] == pytest.approx(best.upper["lam"], abs=0.05)


def test_cournot_is_the_stackelberg_equilibrium() -> None:
    """Leader q1 = (a - 2 c1 + c2) / 2b, follower q2 = (a - c2 - b q1) / 2b."""
    mod = ritz.compile(COURNOT).cournot
    res = mod.solve()
    assert res.upper["q1"] == pytest.approx(45.0, abs=1e-8)
    assert res.lower["q2"] == pytest.approx(22.5, abs=1e-8)
    # d/dq1 of q1 (a - b (q1 + q2(q1))) - c1 q1 with q2' = -1/2: (a - c1 - b q2) - b q1 / 2 ...
    for q1 in (0.0, 30.0, 60.0):
        q2 = (100 - 10 - q1) / 2
        want = (100 - (q1 + q2) - 10) - q1 * (1 - 0.5)
        assert mod.hypergrad(q1=q1)["q1"] == pytest.approx(want, abs=1e-9)
    res = mod.solve(a=120, c1=20)  # params as keywords
    assert res.upper["q1"] == pytest.approx((120 - 40 + 10) / 2, abs=1e-8)


def test_active_bound_holds_the_follower() -> None:
    """With c2 = 95 the follower's best reply max(0, (a - c2 - q1) / 2) is 0 for q1 >= 5: it
    sits on its bound and does not move with q1, so the hypergradient is the partial one."""
    mod = ritz.compile(COURNOT).cournot
    h = mod.hypergrad(q1=30.0, c2=95.0)
    assert h["q1"] == pytest.approx(100 - 2 * 30.0 - 10, abs=1e-9)
    res = mod.solve(c2=95.0)
    assert res.lower["q2"] == 0.0 and res.upper["q1"] == pytest.approx(45.0, abs=1e-8)


def test_oligopoly_nash_followers() -> None:
    """Two followers in Nash equilibrium: q1 = q2 = (a - c - b q0) / 3b; leader q0 = (a - c)/2b."""
    mod = ritz.compile(OLIGOPOLY).oligopoly
    res = mod.solve()
    assert res.upper["q0"] == pytest.approx(45.0, abs=1e-8)
    assert res.lower["q1"] == pytest.approx(15.0, abs=1e-8)
    assert res.lower["q2"] == pytest.approx(15.0, abs=1e-8)
    # F(q0) = q0 (a - c - q0 - 2 (a - c - q0) / 3) = q0 (a - c - q0) / 3
    assert mod.hypergrad(q0=20.0)["q0"] == pytest.approx((90 - 40) / 3, abs=1e-9)


def test_bilevel_input_errors() -> None:
    mod = ritz.compile(RIDGE, name="r.dsl")
    d = _ridge_data()
    cases = [
        (lambda: mod.ridge.hypergrad(lam=0.3, X=d["X"]), "R535"),
        (lambda: mod.ridge.hypergrad(lam=0.3, mu=1, **d), "R503"),
        (lambda: mod.ridge.hypergrad(**{**d, "y": d["y"][:5]}), "R536"),
        (lambda: mod.ridge.hypergrad(**d, inner_steps=3, tol=1e-30), "R542"),
        (lambda: mod.ridge.hypergrad(**d, outer="newton"), "R538"),
        (lambda: mod.ridge.hypergrad(**d, steps=0), "R538"),
    ]
    for call, code in cases:
        with pytest.raises(RitzError) as err:
            call()
        assert err.value.code == code, err.value.render()


def _unrolled_closed(d: dict[str, np.ndarray], lam: float, k: int, eta: float) -> float:
    """dF/dlam of k gradient steps w <- w - eta (X^T (X w - y) + e^lam w) from w = 0, by
    forward-mode differentiation of the same recurrence in NumPy."""
    X, y, Xv, yv = d["X"], d["y"], d["Xv"], d["yv"]
    w, dw = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for _ in range(k):
        w, dw = (
            w - eta * (X.T @ (X @ w - y) + np.exp(lam) * w),
            dw - eta * (X.T @ (X @ dw) + np.exp(lam) * (w + dw)),
        )
    return float((Xv @ w - yv) @ (Xv @ dw))


@pytest.mark.parametrize("k", [1, 7, 40])
def test_unroll_is_the_derivative_of_the_unrolled_steps(k: int) -> None:
    """unroll(k) differentiates the k-step map itself (not the lower solution): it agrees with
    forward-mode differentiation of the same steps to rounding, whatever k."""
    d = _ridge_data()
    mod = ritz.compile(RIDGE.replace("solve implicit(", "solve unroll(inner_lr = 0.004, "))
    h = mod.ridge.hypergrad(lam=0.3, k=k, **d)["lam"]
    assert h == pytest.approx(_unrolled_closed(d, 0.3, k, 0.004), rel=1e-10)


def test_unroll_converges_to_the_implicit_hypergradient() -> None:
    """With the step 1 / |J| found by power iteration, enough steps reach the lower solution,
    and the unrolled hypergradient the implicit one; too few steps do not."""
    d = _ridge_data()
    mod = ritz.compile(RIDGE).ridge
    _, want = _ridge_closed(d, 0.3)
    assert mod.hypergrad(lam=0.3, method="unroll", k=1000, **d)["lam"] == pytest.approx(
        want, rel=1e-10
    )
    short = mod.hypergrad(lam=0.3, method="unroll", k=20, **d)["lam"]
    assert abs(short - want) > 0.05 * abs(want)
    res = mod.solve(method="unroll", k=1000, **d)
    assert res.upper["lam"] == pytest.approx(mod.solve(**d).upper["lam"], abs=1e-6)


def test_penalty_error_falls_as_one_over_rho_squared() -> None:
    """The extrapolated penalty hypergradient differs from the exact one by O(1/rho^2): tenfold
    rho, about a hundredfold smaller error, until the lower solves' accuracy (tol) is reached;
    rho defaults to tol^(-2/5)."""
    d = _ridge_data()
    mod = ritz.compile(RIDGE.replace("solve implicit(", "solve penalty(")).ridge
    _, want = _ridge_closed(d, 0.3)
    errors = [
        abs(mod.hypergrad(lam=0.3, rho=rho, **d)["lam"] - want) / abs(want) for rho in (30, 300)
    ]
    assert 3e-4 < errors[0] < 0.1 and errors[1] < errors[0] / 50, errors
    assert mod.hypergrad(lam=0.3, **d)["lam"] == pytest.approx(want, rel=2e-6)  # observed 2.7e-7
    res = mod.solve(**d)
    assert res.upper["lam"] == pytest.approx(2.8312142841546, abs=1e-4)
    X, y = d["X"], d["y"]
    A = X.T @ X + np.exp(res.upper["lam"]) * np.eye(X.shape[1])
    np.testing.assert_allclose(res.lower["w"], np.linalg.solve(A, X.T @ y), rtol=1e-8)


@pytest.mark.parametrize("method", ["unroll", "penalty"])
def test_first_order_methods_on_the_duopoly(method: str) -> None:
    """The Stackelberg duopoly (maximised objectives, bounds) by each method, also with the
    follower held at its bound (c2 = 95: its best reply is 0 for q1 >= 5)."""
    mod = ritz.compile(COURNOT).cournot
    res = mod.solve(method=method, k=200)
    assert res.upper["q1"] == pytest.approx(45.0, abs=1e-6)
    assert res.lower["q2"] == pytest.approx(22.5, abs=1e-6)
    assert mod.hypergrad(q1=30.0, method=method, k=200)["q1"] == pytest.approx(15.0, abs=1e-6)
    h = mod.hypergrad(q1=30.0, c2=95.0, method=method, k=200)
    assert h["q1"] == pytest.approx(100 - 2 * 30.0 - 10, abs=1e-6)


def test_unroll_through_a_game_of_followers() -> None:
    """Simultaneous gradient play of two Nash followers, differentiated through its steps."""
    mod = ritz.compile(OLIGOPOLY).oligopoly
    assert mod.hypergrad(q0=20.0, method="unroll", k=300)["q0"] == pytest.approx(
        (90 - 40) / 3, abs=1e-9
    )
    res = mod.solve(method="unroll", k=300)
    assert res.upper["q0"] == pytest.approx(45.0, abs=1e-8)


def test_indexed_objectives() -> None:
    """Objectives over single entries of a vector variable (``w[0]``, ``w[-1]``): the lower
    level is linear, A(lam) w = b(lam), so dF/dlam has a closed form; the three methods agree
    with it."""
    mod = ritz.compile(
        """
bilevel b {
    upper lam = 0.3
    lower w: [3] = 0
    lower minimize (0.5 * (w[0] - 1)^2 + 0.5 * (w[1] - lam)^2
                    + 0.5 * (w[-1] + w[0] * lam)^2 + 0.1 * sum(w^2))
    upper minimize (w[0] + 2 * w[1] - w[2])^2
}
"""
    ).b

    def upper(lam: float) -> float:
        A = np.array([[1.2 + lam**2, 0, lam], [0, 1.2, 0], [lam, 0, 1.2]])
        w = np.linalg.solve(A, [1.0, lam, 0.0])
        return float((w[0] + 2 * w[1] - w[2]) ** 2)

    want = (upper(0.3 + 1e-6) - upper(0.3 - 1e-6)) / 2e-6
    assert mod.hypergrad()["lam"] == pytest.approx(want, rel=1e-8)
    assert mod.hypergrad(method="unroll", k=2000)["lam"] == pytest.approx(want, rel=1e-8)
    assert mod.hypergrad(method="penalty")["lam"] == pytest.approx(want, rel=1e-5)


BOX = """\
bilevel boxridge {
    data d: [p], b: [p], t: [p]
    upper lam = 0.0
    lower w: [p] = 0 in [-0.5, 0.5]
    lower minimize 0.5 * sum(d * w^2) - sum(b * w) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum((w - t)^2)
}
"""


def _box_data() -> tuple[dict[str, np.ndarray], object]:
    rng = np.random.default_rng(2)
    d, b, t = rng.uniform(1, 2, 8), 1.5 * rng.normal(size=8), 0.3 * rng.normal(size=8)

    def closed(lam: float) -> tuple[float, float]:
        e = np.exp(lam)
        free = b / (d + e)
        w = np.clip(free, -0.5, 0.5)
        dw = np.where(np.abs(free) < 0.5, -e * b / (d + e) ** 2, 0.0)
        return 0.5 * float(np.sum((w - t) ** 2)), float((w - t) @ dw)

    return {"d": d, "b": b, "t": t}, closed


@pytest.mark.parametrize("method", ["implicit", "unroll", "penalty"])
def test_bounds_active_and_curvature_that_moves_with_the_upper_variable(method: str) -> None:
    """A separable box-constrained lower level, w = clip(b / (d + e^lam), -1/2, 1/2), with 1 to
    4 bounds active over the lams tried. Its curvature d + e^lam grows twentyfold towards the
    optimum (lam = 2.8908): unroll sizes its step at each evaluation."""
    from scipy.optimize import minimize_scalar

    data, closed = _box_data()
    mod = ritz.compile(BOX).boxridge
    for lam in (-2.0, -0.1, 0.0, 2.0):
        h = mod.hypergrad(lam=lam, method=method, k=500, **data)["lam"]
        assert h == pytest.approx(closed(lam)[1], rel=1e-7, abs=1e-12), lam
    best = minimize_scalar(
        lambda lam: closed(lam)[0], bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}
    )
    res = mod.solve(method=method, k=500, **data)
    assert res.upper["lam"] == pytest.approx(best.x, abs=1e-5)
    assert res.history[-1] == pytest.approx(best.fun, rel=1e-9)


def test_methods_report_steps_they_cannot_take() -> None:
    """An explicit unroll step too long for the curvature, and a penalty rho beyond what the
    dtype resolves, are errors, not numbers."""
    data, _ = _box_data()
    mod = ritz.compile(BOX.replace(" in [-0.5, 0.5]", "")).boxridge
    with pytest.raises(RitzError) as err:
        mod.hypergrad(lam=2.0, method="unroll", k=500, inner_lr=0.36, **data)
    assert err.value.code == "R542" and "inner_lr" in (err.value.hint or "")
    with pytest.raises(RitzError) as err:
        mod.hypergrad(lam=2.0, method="penalty", rho=1e10, **data)
    assert err.value.code == "R538"


def test_dot_products_in_objectives() -> None:
    """``w @ w``, ``c @ w`` and ``w @ A @ w`` (scalar contractions, whose transposes scale a
    vector by a scalar)."""
    mod = ritz.compile(
        """
bilevel q {
    data c: [p], t: [p], A: [p, p]
    upper lam = 0.3
    lower w: [p] = 0
    lower minimize 0.5 * exp(lam) * (w @ w) - c @ w + 0.1 * (w @ A @ w)
    upper minimize 0.5 * ((w - t) @ (w - t))
}
"""
    ).q
    rng = np.random.default_rng(0)
    B = rng.normal(size=(3, 3))
    c, t, A = np.array([1.0, 2.0, 3.0]), rng.normal(size=3), B @ B.T + B

    def upper(lam: float) -> float:
        w = np.linalg.solve(np.exp(lam) * np.eye(3) + 0.1 * (A + A.T), c)
        return 0.5 * float((w - t) @ (w - t))

    want = (upper(0.3 + 1e-6) - upper(0.3 - 1e-6)) / 2e-6
    assert mod.hypergrad(c=c, t=t, A=A)["lam"] == pytest.approx(want, rel=1e-8)


def test_a_linear_lower_level_sits_on_its_bounds() -> None:
    """min over z in [0, 1] of x z: z = 0 for x > 0 and 1 for x < 0 (no curvature: Newton
    falls back to the gradient); the hypergradient of (x - 0.3)^2 + z is then 2 (x - 0.3)."""
    mod = ritz.compile(
        """
bilevel lin {
    upper x = 0.5 in [-1, 1]
    lower z = 0.5 in [0, 1]
    lower minimize x * z
    upper minimize (x - 0.3)^2 + z
}
"""
    ).lin
    for x in (0.5, -0.5):
        assert mod.hypergrad(x=x)["x"] == pytest.approx(2 * (x - 0.3), abs=1e-12)


def test_bilevel_program_errors() -> None:
    """Mistakes that used to give wrong numbers or tracebacks."""
    sizes = """
bilevel q {
    data c: [3]
    upper lam = 0.0
    lower w: [3] = 0
    lower minimize 0.5 * exp(lam) * sum(w^2) - sum(c * w)
    upper minimize sum(w)
}
"""
    singular = """
bilevel s {
    data X: [n, p], y: [n]
    upper lam = 1.0
    lower w: [p] = 0
    lower minimize 0.5 * sum((X @ w - lam * y)^2)
    upper minimize 0.5 * sum(w^2) + sum(w)
}
"""
    rng = np.random.default_rng(0)
    cases = [
        (sizes, "q", {"c": np.ones(2)}, "R536"),  # a declared size, not met
        (singular, "s", {"X": rng.normal(size=(5, 10)), "y": rng.normal(size=5)}, "R543"),
        (COURNOT, "cournot", {"q1": 150.0}, "R536"),  # outside its bounds: not moved inside
        (COURNOT.replace("q2 * (a - b * (q1 + q2)) - c2 * q2", "c2 * q1"), "cournot", {}, "R350"),
        (COURNOT.replace("q1 = 10 in [0, 100]", "q1 = 10 in [100, 0]"), "cournot", {}, "R350"),
        (COURNOT.replace("q1 = 10 in", "q1 = 150 in"), "cournot", {}, "R350"),
    ]
    for text, name, kwargs, code in cases:
        with pytest.raises(RitzError) as err:
            ritz.compile(text, name="b.dsl")[name].hypergrad(**kwargs)
        assert err.value.code == code, err.value.render()


def test_implicit_on_an_ill_conditioned_lower_level_asked_for_more_than_krylov_reaches() -> None:
    """Ridge with more features than samples and a tiny penalty: the Hessian's condition number
    is 1.8e6, so conjugate gradients stall above tol = 1e-12's residual. That is a regular
    system solved directly, not a singular one (it was R543); the answer is checked against a
    40-digit solve."""
    import mpmath

    rng = np.random.default_rng(0)
    n, p, lam = 10, 30, -10.0
    X, y = rng.standard_normal((n, p)), rng.standard_normal(n)
    Xv, yv = rng.standard_normal((20, p)), rng.standard_normal(20)
    with mpmath.workdps(40):
        M, V = mpmath.matrix(X.tolist()), mpmath.matrix(Xv.tolist())
        H = M.T * M + mpmath.exp(lam) * mpmath.eye(p)
        w = mpmath.lu_solve(H, M.T * mpmath.matrix(y.tolist()))
        g = V.T * (V * w - mpmath.matrix(yv.tolist()))
        exact = float(-mpmath.exp(lam) * (w.T * mpmath.lu_solve(H, g))[0])
    mod = ritz.compile(RIDGE).ridge
    got = mod.hypergrad(lam=lam, X=X, y=y, Xv=Xv, yv=yv, tol=1e-12)["lam"]
    assert got == pytest.approx(exact, rel=1e-8)


def test_a_saddle_with_one_downward_direction_among_many_is_not_a_minimum() -> None:
    """H = diag(1, ..., 1, -0.5): Newton's step lands on the saddle, and neither its direction
    nor a random probe curves downwards; Lanczos finds the eigenvalue -0.5. A positive
    definite H next to it passes, with the closed-form hypergradient sum((c / D)^2)."""
    text = """
bilevel sad {
    data D: [n], c: [n]
    upper s = 1.0
    lower w: [n] = 0
    lower minimize 0.5 * sum(D * w^2) - s * sum(c * w)
    upper minimize 0.5 * sum(w^2)
}
"""
    mod = ritz.compile(text, name="s.dsl").sad
    D, c = np.ones(20), np.ones(20)
    D[-1], c[-1] = -0.5, 0.01
    with pytest.raises(RitzError) as err:
        mod.hypergrad(s=1.0, D=D, c=c)
    assert err.value.code == "R542" and "curvature -0.5 " in err.value.message
    D[-1] = 0.5
    assert mod.hypergrad(s=1.0, D=D, c=c)["s"] == pytest.approx(np.sum((c / D) ** 2), rel=1e-9)


def test_methods_that_do_not_apply_say_so() -> None:
    cases = [
        (OLIGOPOLY, "oligopoly", "penalty", {}),  # a game has no single value function
        (RIDGE, "ridge", "adjoint", _ridge_data()),  # adjoint is for a PDE lower level
    ]
    for text, name, method, data in cases:
        with pytest.raises(RitzError) as err:
            ritz.compile(text, name="r.dsl")[name].hypergrad(method=method, **data)
        assert err.value.code == "R416" and err.value.hint, err.value.render()
    with pytest.raises(RitzError) as err:
        ritz.compile(RIDGE).ridge.hypergrad(method="newton", **_ridge_data())
    assert err.value.code == "R538"


FIT_DIFFUSIVITY = """\
pde heat1d {
    space x in [-1, 1]
    time t in [0, 0.5]
    field u
    param nu = 0.05
    dt(u) = nu * diff(u, x, 2)
    boundary u = 0 at x = -1, x = 1
    initial u = -sin(pi * x)
    solve fd(cells = 200, scheme = cn, dt = 1e-3)
}

bilevel fit_diffusivity {
    data u_obs: [200]
    upper nu = 0.01 in [1e-4, 1]
    lower u = heat1d(nu = nu).u at t = 0.1
    upper minimize 0.5 * sum((u - u_obs)^2)
    solve adjoint(steps = 50)
}
"""


def test_pde_lower_level_by_adjoint() -> None:
    """LANGUAGE.md §6 fit_diffusivity: the hypergradient is the discrete adjoint of the solve
    (exact for the discrete problem: central differences of whole solves agree to 1e-8), and
    L-BFGS-B recovers the diffusivity of the observations (exact solution, nu = 0.3) up to the
    discretisation error."""
    mod = ritz.compile(FIT_DIFFUSIVITY)
    x = mod.heat1d.solve(t1=0.1).coords["x"]
    u_obs = -np.exp(-0.3 * np.pi**2 * 0.1) * np.sin(np.pi * x)

    def upper(nu: float) -> float:
        sol = mod.heat1d.solve(nu=nu, t1=0.1)
        assert sol.t[-1] == pytest.approx(0.1)
        return 0.5 * float(np.sum((sol["u"][-1] - u_obs) ** 2))

    h = mod.fit_diffusivity.hypergrad(nu=0.1, u_obs=u_obs)
    fd = (upper(0.1 + 1e-6) - upper(0.1 - 1e-6)) / 2e-6
    assert h["nu"] == pytest.approx(fd, rel=1e-7)
    res = mod.fit_diffusivity.solve(u_obs=u_obs)
    assert res.upper["nu"] == pytest.approx(0.3, rel=1e-3)  # observed 0.30002
    assert res.lower["u"].shape == (200,)
    assert abs(res.hypergrad["nu"]) < 1e-6
    assert res.history[0] > 1e3 * res.history[-1]


@pytest.mark.slow
def test_language_examples_as_written() -> None:
    """LANGUAGE.md §6 with §3's heat1d, unchanged (tests/dsl/cases): all four blocks run. The
    PDE lower level's bounds admit diffusivities that rk4 at the example's dt cannot take
    (nu > 0.9 blows up): the outer line search backs away from such trial points."""
    from pathlib import Path

    cases = Path(__file__).resolve().parents[1] / "dsl" / "cases"
    text = (cases / "heat1d.dsl").read_text() + (cases / "bilevel.dsl").read_text()
    mod = ritz.compile(text, name="bilevel.dsl")
    u_obs = mod.heat1d.solve(nu=0.05)["u"][-1]
    u_obs = u_obs + 1e-4 * np.random.default_rng(0).normal(size=u_obs.shape)
    fit = mod.fit_diffusivity.solve(u_obs=u_obs)
    assert fit.upper["nu"] == pytest.approx(0.05, rel=1e-3)  # observed 0.049994
    assert mod.cournot.solve().upper["q1"] == pytest.approx(45, abs=1e-8)
    assert mod.oligopoly.solve().lower["q2"] == pytest.approx(15, abs=1e-8)
    d = _ridge_data()
    assert mod.ridge.hypergrad(lam=0.3, **d)["lam"] == pytest.approx(
        _ridge_closed(d, 0.3)[1], rel=1e-8
    )


SCALED = """\
bilevel b {
    upper y = 0.5
    lower x = 0
    lower minimize C * ((x - y)^2 + (x - y)^4)
    upper minimize (x - 1)^2
}
"""


@pytest.mark.parametrize("scale", ["1e-12", "1e-6", "1", "1e12"])
def test_a_uniformly_scaled_lower_level_is_solved_as_the_unscaled_one(scale: str) -> None:
    """x*(y) = y for any C > 0, so dF/dy = 2 (y - 1) = -1 at y = 0.5 and the optimum is
    y = x = 1. ``tol`` was relative to the first residual norm floored at 1, so at C = 1e-12
    (|R0| = 1e-12) the start x = 0 counted as the lower solution: hypergradient -2, and
    L-BFGS stopped at y = 0.5 after 0 iterations. The floor now follows the objective's own
    curvature. Ridge with its lower objective scaled by 1e-12 has the closed form of ridge."""
    mod = ritz.compile(SCALED.replace("C", scale), name="s.dsl").b
    assert mod.hypergrad(y=0.5)["y"] == pytest.approx(-1.0, abs=1e-8)
    res = mod.solve()
    assert res.upper["y"] == pytest.approx(1.0, abs=1e-8)
    assert res.lower["x"] == pytest.approx(1.0, abs=1e-8)
    assert res.history[-1] == pytest.approx(0.0, abs=1e-14)
    d = _ridge_data()
    scaled = RIDGE.replace(
        "lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)",
        f"lower minimize {scale} * (0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2))",
    )
    got = ritz.compile(scaled).ridge.hypergrad(lam=0.3, **d)["lam"]
    assert got == pytest.approx(_ridge_closed(d, 0.3)[1], rel=1e-8)


def test_float32_bilevel_with_matrix_data() -> None:
    """``solve implicit(dtype = float32)`` with matrices: the data (given in float64) are cast
    to float32 and every entry is evaluated in float32 (it was a Numba TypingError: the flat
    vector of variables reached the compiled entries in float64). The default tol is 1e-5
    there (what float32 resolves); the hypergradient is within float32's reach of the
    closed form (observed 2e-6). A method without a solve line runs in float64, compiled
    separately (the data of a later float32 run are float32 again)."""
    d = _ridge_data()
    text = RIDGE.replace(
        "implicit(tol = 1e-10, steps = 100, lr = 0.1)", "implicit(dtype = float32)"
    )
    mod = ritz.compile(text).ridge
    for lam in (-2.0, 0.3, 2.5):
        assert mod.hypergrad(lam=lam, **d)["lam"] == pytest.approx(
            _ridge_closed(d, lam)[1], rel=2e-5
        )
    assert mod.kernels.residual.signatures[0][0].dtype.name == "float32"
    h64 = mod.hypergrad(lam=0.3, method="penalty", **d)["lam"]
    assert h64 == pytest.approx(_ridge_closed(d, 0.3)[1], rel=1e-6)
    assert mod.kernels.upper.signatures[0][0].dtype.name == "float64"
    with pytest.raises(RitzError) as err:  # a tol float32 cannot reach
        mod.hypergrad(lam=0.3, tol=1e-10, **d)
    assert err.value.code == "R542" and "float32 resolves" in (err.value.first.hint or "")
    res = mod.solve(**d)
    assert res.lower["w"].dtype == np.float32
    from scipy.optimize import minimize_scalar

    best = minimize_scalar(lambda lam: _ridge_closed(d, lam)[0], bounds=(-5, 5), method="bounded")
    assert res.upper["lam"] == pytest.approx(best.x, abs=1e-3)


UNROLL_SCALAR = """\
bilevel b {
    upper y = 0
    lower x = 0
    lower minimize (x - y)^2
    upper minimize (x - 1)^2
    solve unroll(k = 1000000000000)
}
"""


def test_unroll_steps_beyond_memory_are_r538_before_they_run() -> None:
    """unroll keeps its k iterates for the reverse pass: a k whose iterates take more than half
    of the machine's memory is R538, from ``ritz check`` where the file gives k and the sizes
    (it ran until a MemoryError traceback or the OOM killer), else when the run starts; the
    same text both ways."""
    with pytest.raises(RitzError) as err:
        ritz.compile(UNROLL_SCALAR, name="u.dsl")
    assert err.value.code == "R538", err.value.render()
    assert err.value.first.message.startswith("unroll(k = 1000000000000) keeps 1000000000000 ")
    assert "u.dsl:6:18" in err.value.render() and "smaller k" in (err.value.first.hint or "")
    checked = err.value.first.message
    mod = ritz.compile(UNROLL_SCALAR.replace("unroll(k = 1000000000000)", "implicit()")).b
    with pytest.raises(RitzError) as err:
        mod.hypergrad(method="unroll", k=10**12)
    assert err.value.code == "R538" and err.value.first.message == checked
    d = _ridge_data()  # sizes of the data: known at run time only
    ridge = ritz.compile(RIDGE).ridge
    with pytest.raises(RitzError) as err:
        ridge.hypergrad(lam=0.3, method="unroll", k=10**12, **d)
    assert err.value.code == "R538" and "iterates of 31 values" in err.value.first.message
    got = ridge.hypergrad(lam=0.3, method="unroll", k=3, inner_lr=0.004, **d)["lam"]
    assert got == pytest.approx(_unrolled_closed(d, 0.3, 3, 0.004), rel=1e-10)


def test_penalty_rho_beyond_the_dtype_is_reported_by_check() -> None:
    """A penalty rho beyond eps^(-1/2) of the dtype is R538 from ``ritz check`` (it was found
    only by a run), with the text a run gives for the same rho from Python."""
    text = UNROLL_SCALAR.replace("unroll(k = 1000000000000)", "penalty(rho = 1e9)")
    with pytest.raises(RitzError) as err:
        ritz.compile(text, name="p.dsl")
    assert err.value.code == "R538" and "p.dsl:6:19" in err.value.render()
    assert err.value.first.message.startswith("rho = 1e+09 is beyond what float64 can resolve")
    checked = err.value.first.message
    mod = ritz.compile(text.replace("penalty(rho = 1e9)", "implicit()")).b
    with pytest.raises(RitzError) as err:
        mod.hypergrad(method="penalty", rho=1e9)
    assert err.value.code == "R538" and err.value.first.message == checked
    with pytest.raises(RitzError) as err:  # float32 resolves rho up to 2.9e3
        ritz.compile(text.replace("rho = 1e9", "rho = 1e4, dtype = float32"))
    assert err.value.code == "R538" and "beyond what float32 can resolve (2.9e+03)" in str(
        err.value
    )
    ritz.compile(text.replace("rho = 1e9", "rho = 6e7"))  # within float64's limit


def test_a_solve_line_takes_its_own_methods_options_only() -> None:
    """docs/language.md: a solve line's options are checked against its own method (R206 for
    'k' on an implicit line), while options given at run time that the chosen method does not
    use are ignored (one call may switch methods: method="unroll", k=500)."""
    text = UNROLL_SCALAR.replace("unroll(k = 1000000000000)", "implicit(k = 5)")
    with pytest.raises(RitzError) as err:
        ritz.compile(text)
    assert err.value.code == "R206" and "unknown option 'k' for method 'implicit'" in str(err.value)
    mod = ritz.compile(text.replace("implicit(k = 5)", "implicit()")).b
    assert mod.hypergrad(y=0.5, k=5, rho=10.0)["y"] == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("scale", ["1e-12", "1e-6", "1e6", "1e12"])
def test_penalty_is_invariant_to_a_uniform_scaling_of_the_lower_objective(scale: str) -> None:
    """rho = auto was tol^(-2/5) in g's units: with g scaled by 1e12, F + rho g was g alone
    (x_rho equal to x* to the last bit: a hypergradient of exactly 0.0), with 1e-12 F alone
    (R542), and the projected gradient norm x - clip(x - g) lost a gradient below x's rounding.
    rho = auto now follows F's scale over g's, and the hypergradient is the unscaled one."""
    d = _ridge_data(n=30, m=20, p=3)
    _, want = _ridge_closed(d, 0.3)
    text = RIDGE.replace("solve implicit(", "solve penalty(")
    plain = ritz.compile(text).ridge.hypergrad(lam=0.3, **d)["lam"]
    scaled = text.replace(
        "lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)",
        f"lower minimize {scale} * (0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2))",
    )
    got = ritz.compile(scaled).ridge.hypergrad(lam=0.3, **d)["lam"]
    assert plain == pytest.approx(want, rel=1e-6)
    assert got == pytest.approx(want, rel=1e-6)
    assert got == pytest.approx(plain, rel=1e-6)


ROWS_TWICE = """\
bilevel r {
    data X: [n, p], y: [n], Xv: [m, p], yv: [m, 1]
    upper lam = 0.0
    lower w: [p, 1] = 0
    lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum((Xv @ w - yv)^2)
}
"""


def test_a_bilevel_objective_pairing_rows_with_a_column_is_r344() -> None:
    """X @ w: [n, 1] minus y: [n] is [n, n], every residual against every row: the
    hypergradient was -0.00048 where ridge's is 0.308, silently. R344 as in a train loss, at
    run time (the data fix n) at the operand; declared y: [n, 1] it is ridge."""
    d = _ridge_data(n=30, m=20, p=3)
    data = {**d, "yv": d["yv"][:, None]}
    with pytest.raises(RitzError) as err:
        ritz.compile(ROWS_TWICE, name="r.dsl").r.hypergrad(lam=0.3, **data)
    assert err.value.code == "R344" and (err.value.span.line, err.value.span.col) == (5, 39)
    assert err.value.first.message.startswith(
        "the rows of 'y' (shape [30]) line up with a size-1 axis of 'X @ w' (shape [30, 1]): "
        "broadcasting makes [30, 30]"
    )
    mod = ritz.compile(ROWS_TWICE.replace("y: [n]", "y: [n, 1]")).r
    got = mod.hypergrad(lam=0.3, **{**data, "y": d["y"][:, None]})["lam"]
    assert got == pytest.approx(_ridge_closed(d, 0.3)[1], rel=1e-6)


def test_a_bilevel_objective_pairing_literal_rows_is_r344_at_check(tmp_path: Path) -> None:
    """With sizes the file gives, ritz check finds the same pairing (it said ok)."""
    text = ROWS_TWICE.replace("[n, p]", "[30, 3]").replace("y: [n]", "y: [30]")
    text = text.replace("[m, p]", "[20, 3]").replace("[m, 1]", "[20, 1]")
    program = tmp_path / "r.dsl"
    program.write_text(text.replace("[p, 1]", "[3, 1]"))
    result = CliRunner().invoke(main, ["check", str(program)])
    assert result.exit_code == 1
    assert "r.dsl:5:39: error[R344]: the rows of 'y' (shape [30])" in result.output
    program.write_text(text.replace("[p, 1]", "[3, 1]").replace("y: [30]", "y: [30, 1]"))
    result = CliRunner().invoke(main, ["check", str(program)])
    assert result.exit_code == 0, result.output
