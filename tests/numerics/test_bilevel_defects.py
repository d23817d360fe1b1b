"""Regressions of bilevel blocks: steady PDE lower levels, parameter and size values, consts in
solve options, linear lower objectives at their bounds, fn calls and data in a PDE lower level's
keywords, errors found by ``ritz check``, ``ritz build`` and params that use earlier params."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import ritz
from ritz.dsl.diagnostics import RitzError
from ritz.runtime.cli import main

POISSON = """\
pde pois {
    space x in [0, 1]
    field u
    param k = 1, f0 = 1
    -k * diff(u, x, 2) = f0 * sin(pi * x)
    boundary u = 0 at x = 0, x = 1
    solve fd(cells = 40)
}
bilevel fitk {
    data u_obs: [40]
    upper a = 0.5 in [0.01, 10]
    lower u = pois(k = a, f0 = 2 * a^2).u
    upper minimize 0.5 * sum((u - u_obs)^2)
}
"""

HEAT = """\
fn pos(z) = log(1 + exp(z))
pde heat {
    space x in [0, 1]
    time  t in [0, 0.1]
    field u
    param nu = 0.05, amp = 1
    dt(u) = nu * diff(u, x, 2)
    boundary u = 0 at x = 0, x = 1
    initial  u = amp * sin(pi * x)
    solve fd(cells = 20, scheme = cn, dt = 1e-3)
}
bilevel b {
    data u_obs: [20]
    param k = 1
    upper s = -1
    lower u = heat(nu = pos(s), amp = k * sum(u_obs)).u at t = 0.05
    upper minimize 0.5 * sum((u - u_obs)^2)
}
"""

LINEAR = """\
bilevel s {
    upper q1 = 1
    lower q2 = INIT in [-5, 5]
    lower minimize q1 * q2
    upper minimize (q2 - 2)^2 + q1^2
}
"""

COURNOT = """\
const K = 40
const LR = 0.002
bilevel cournot {
    param a = 100, b = 1, c1 = 10, c2 = c1
    upper q1 = 10 in [0, 100]
    lower q2 = 10 in [0, 100]
    lower maximize q2 * (a - b * (q1 + q2)) - c2 * q2
    upper maximize q1 * (a - b * (q1 + q2)) - c1 * q1
    solve unroll(k = K, inner_lr = LR, lr = pi / 10, outer = gd)
}
"""

RIDGE = """\
bilevel ridge {
    data X: [n, p], y: [n]
    upper lam = 0.0
    lower w: [p] = 0
    lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum(w^2) + sum(w)
}
"""


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _error(text: str, name: str = "b.dsl") -> RitzError:
    with pytest.raises(RitzError) as err:
        ritz.compile(text, name=name)
    return err.value


# -- 1. a steady PDE lower level ------------------------------------------------------------------


def test_steady_pde_lower_level() -> None:
    """A steady solution has no time axis: the lower solution is the field itself, and the
    hypergradient (adjoint, the default) is the derivative of the solved objective."""
    mod = ritz.compile(POISSON, name="pois.dsl")
    assert mod.fitk.options["method"] == "adjoint"
    x = mod.pois.solve().coords["x"]
    u_obs = 0.6 * np.sin(np.pi * x) / np.pi**2

    def upper(a: float) -> float:
        u = mod.pois.solve(k=a, f0=2 * a * a)["u"]
        return 0.5 * float(np.sum((u - u_obs) ** 2))

    h = mod.fitk.hypergrad(a=0.5, u_obs=u_obs)["a"]
    fd = (upper(0.5 + 1e-6) - upper(0.5 - 1e-6)) / 2e-6
    assert h == pytest.approx(fd, rel=1e-6)
    res = mod.fitk.solve(u_obs=u_obs)
    assert res.lower["u"].shape == (40,)
    assert res.upper["a"] == pytest.approx(0.3, rel=1e-2)  # u = f0 / k sin / pi^2 = 2a sin / pi^2


def test_at_on_a_steady_pde_is_a_diagnostic() -> None:
    text = POISSON.replace("pois(k = a, f0 = 2 * a^2).u", "pois(k = a).u at t = 0.1")
    err = _error(text)
    assert err.code == "R350" and "steady" in err.message and err.line == 12, err.render()


# -- 2. parameter values and sizes ----------------------------------------------------------------


@pytest.mark.parametrize("value", [np.inf, np.nan, "x", np.array([1.0, 2.0]), None, True])
def test_parameter_values_are_finite_numbers(value: object) -> None:
    mod = ritz.compile(COURNOT.replace("    solve unroll", "    # solve unroll"))
    with pytest.raises(RitzError) as err:
        mod.cournot.hypergrad(a=value)
    assert err.value.code == "R538" and "'a'" in err.value.message, err.value.render()
    assert mod.cournot.hypergrad(a=np.float32(100.0), q1=np.int64(10))["q1"] == pytest.approx(
        mod.cournot.hypergrad(q1=10.0)["q1"]
    )


@pytest.mark.parametrize("value", ["inf", "foo", "1e400"])
def test_parameter_values_from_the_command_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "c.dsl"
    path.write_text(COURNOT)
    result = invoke("run", path, "-p", "cournot", "--set", f"a={value}")
    assert result.exit_code == 1, result.output
    assert "R538" in result.output and "'a'" in result.output
    assert "Traceback" not in result.output and "R900" not in result.output


@pytest.mark.parametrize("value", ["abc", "-2", "2.5", "0"])
def test_sizes_given_to_build_are_positive_whole_numbers(tmp_path: Path, value: str) -> None:
    path = tmp_path / "r.dsl"
    path.write_text(RIDGE)
    result = invoke("build", path, "-o", tmp_path / "out", "--set", f"p={value}")
    assert result.exit_code == 1, result.output
    assert "R538" in result.output and "'p'" in result.output
    assert not (tmp_path / "out").exists()


# -- 3. consts in solve options -------------------------------------------------------------------


def test_solve_options_fold_consts() -> None:
    mod = ritz.compile(COURNOT)
    opts = mod.cournot.options
    assert opts["k"] == 40 and isinstance(opts["k"], int)
    assert opts["inner_lr"] == 0.002 and isinstance(opts["inner_lr"], float)
    assert opts["lr"] == pytest.approx(np.pi / 10) and isinstance(opts["lr"], float)
    assert opts["outer"] == "gd"
    assert np.isfinite(mod.cournot.hypergrad()["q1"])


# -- 4. a linear lower objective goes to its bound ------------------------------------------------


@pytest.mark.parametrize("init", ["1", "-4.5", "4.9"])
def test_linear_lower_objective_reaches_its_bound(init: str) -> None:
    """min over q2 in [-5, 5] of q1 q2 with q1 = 1: q2 = -5, held there; dF/dq1 = 2 q1."""
    mod = ritz.compile(LINEAR.replace("INIT", init))
    assert mod.s.hypergrad(q1=1.0) == {"q1": pytest.approx(2.0, abs=1e-12)}
    assert mod.s.hypergrad(q1=1.0, method="penalty")["q1"] == pytest.approx(2.0, abs=1e-6)
    assert mod.s.hypergrad(q1=-0.5)["q1"] == pytest.approx(-1.0, abs=1e-12)  # q2 = 5


def test_partly_linear_lower_objective() -> None:
    """A linear part at its bound and a quadratic part solved by Newton: q2 = -5, q3 = q1."""
    mod = ritz.compile(
        """
bilevel s {
    upper q1 = 1
    lower q2 = 1 in [-5, 5]
    lower q3 = 0
    lower minimize q1 * q2 + (q3 - q1)^2
    upper minimize (q2 - 2)^2 + q3^2
}
"""
    )
    assert mod.s.hypergrad(q1=1.0)["q1"] == pytest.approx(2.0, abs=1e-10)


# -- 5. fn calls and data in a PDE lower level's keywords -----------------------------------------


def test_fn_calls_and_data_in_pde_keywords() -> None:
    mod = ritz.compile(HEAT, name="heat.dsl")
    x = mod.heat.solve(t1=0.05).coords["x"]
    u_obs = 0.05 * np.sin(np.pi * x)

    def upper(s: float) -> float:
        nu = np.log1p(np.exp(s))
        u = mod.heat.solve(nu=nu, amp=float(np.sum(u_obs)), t1=0.05)["u"][-1]
        return 0.5 * float(np.sum((u - u_obs) ** 2))

    h = mod.b.hypergrad(s=-1.0, u_obs=u_obs)["s"]
    fd = (upper(-1.0 + 1e-6) - upper(-1.0 - 1e-6)) / 2e-6
    assert h == pytest.approx(fd, rel=1e-6)


def test_pde_keyword_errors_are_located() -> None:
    cases = [
        ("heat(nu = pos(s), amp = k * sum(u_obs))", "heat(nuu = pos(s))", "R206", "nuu"),
        ("heat(nu = pos(s), amp = k * sum(u_obs))", "heat(nu = pos(u))", "R350", "'u'"),
        ("heat(nu = pos(s), amp = k * sum(u_obs))", "heat(nu = qos(s))", "R202", "qos"),
        ("heat(nu = pos(s), amp = k * sum(u_obs))", "heat(nu = u_obs)", "R348", "'nu'"),
    ]
    for old, new, code, word in cases:
        with pytest.raises(RitzError) as err:
            mod = ritz.compile(HEAT.replace(old, new), name="heat.dsl")
            mod.b.hypergrad(u_obs=np.zeros(20))
        e = err.value
        assert e.code == code and word in e.message and e.line == 16, e.render()


# -- 6. errors that ritz check finds --------------------------------------------------------------


def test_check_finds_methods_that_do_not_apply(tmp_path: Path) -> None:
    game = """\
bilevel g {
    upper q0 = 10 in [0, 100]
    lower q1 = 10 in [0, 100]
    lower q2 = 10 in [0, 100]
    lower maximize q1 * (100 - q0 - q1 - q2) over q1
    lower maximize q2 * (100 - q0 - q1 - q2) over q2
    upper maximize q0 * (100 - q0 - q1 - q2)
    solve penalty()
}
"""
    cases = [
        (game, 8, "penalty"),
        (LINEAR.replace("INIT", "1").replace("}", "    solve adjoint()\n}"), 6, "adjoint"),
        (HEAT.replace("at t = 0.05", "at t = 0.05\n    solve implicit()"), 17, "implicit"),
    ]
    for text, line, word in cases:
        path = tmp_path / "m.dsl"
        path.write_text(text)
        result = invoke("check", path)
        assert result.exit_code == 1, result.output
        assert f"m.dsl:{line}:5: error[R416]" in result.output and word in result.output


def test_check_finds_unknown_pde_params(tmp_path: Path) -> None:
    path = tmp_path / "m.dsl"
    path.write_text(HEAT.replace("heat(nu = pos(s)", "heat(nuu = pos(s)"))
    result = invoke("check", path)
    assert result.exit_code == 1
    assert "m.dsl:16:20: error[R206]: pde 'heat' has no param 'nuu'" in result.output
    assert "did you mean 'nu'?" in result.output


# -- 7. ritz build --------------------------------------------------------------------------------

_STANDALONE = """
import sys
sys.modules["ritz"] = None  # any import of ritz now raises ImportError
sys.path.insert(0, sys.argv[1])
import numpy as np
import ridge, cournot
rng = np.random.default_rng(0)
X, y = rng.normal(size=(12, 5)), rng.normal(size=12)
w, g = np.zeros(6), np.zeros(6)
value = ridge.residual(w, g, X, y)
assert abs(value - 0.5 * float(y @ y)) < 1e-9 and np.allclose(g[:5], -X.T @ y)
w2, g2 = np.array([10.0, 10.0]), np.zeros(2)
cournot.residual(w2, g2, 100.0, 1.0, 10.0, 10.0)
print(float(g2[0]), float(g2[1]))
"""


def test_build_writes_bilevel_modules(tmp_path: Path) -> None:
    path = tmp_path / "b.dsl"
    path.write_text(RIDGE + COURNOT)
    missing = invoke("build", path, "-o", tmp_path / "none")
    assert missing.exit_code == 0, missing.output  # the sized bilevel is skipped, with a note
    assert "--set p=10" in missing.output and (tmp_path / "none" / "cournot.py").is_file()
    assert not (tmp_path / "none" / "ridge.py").exists()
    only = tmp_path / "r.dsl"
    only.write_text(RIDGE)
    alone = invoke("build", only, "-o", tmp_path / "none2")
    assert alone.exit_code == 1 and "R523" in alone.output and "--set p=10" in alone.output

    out = tmp_path / "built"
    result = invoke("build", path, "-o", out, "--set", "p=5")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["cournot.py", "ridge.py"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _STANDALONE, str(out)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # the follower (q2, first in the layout) maximises q2 (90 - q1 - q2): its residual is the
    # negated gradient, q1 + 2 q2 - 90
    assert [float(v) for v in proc.stdout.split()] == pytest.approx([-60.0, 0.0])


def test_build_writes_a_pde_lower_level(tmp_path: Path) -> None:
    path = tmp_path / "p.dsl"
    path.write_text(POISSON)
    out = tmp_path / "built"
    result = invoke("build", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert {"fitk.py", "fitk_params.py"} <= {p.name for p in out.iterdir()}


def test_kernels_of_a_bilevel_handle() -> None:
    mod = ritz.compile(RIDGE)
    with pytest.raises(RitzError) as err:
        _ = mod.ridge.kernels
    assert err.value.code == "R534" and "init()" not in (err.value.hint or "")
    assert "hypergrad" in err.value.hint
    cournot = ritz.compile(COURNOT).cournot  # no data: compiled on demand
    assert hasattr(cournot.kernels, "residual_vjp")


# -- 8. params that use earlier params ------------------------------------------------------------


def test_params_use_earlier_params() -> None:
    mod = ritz.compile(COURNOT.replace("    solve unroll", "    # solve unroll"))
    assert mod.cournot.solve().upper["q1"] == pytest.approx(45, abs=1e-8)
    err = _error(COURNOT.replace("c1 = 10, c2 = c1", "c1 = c2, c2 = 10"))
    assert err.code == "R317" and "'c2', which is defined after it" in err.message


# -- 9. a lower minimisation whose stationary point is a maximum or a saddle ------------------

CONCAVE = """\
bilevel unb {
    upper y = 0.5
    lower x = 0
    lower minimize -x^2 + y * x
    upper minimize x^2
}
bilevel saddle {
    upper y = 0.5
    lower a = 0.1
    lower b = 0
    lower minimize a^2 - b^2 + y * (a + b)
    upper minimize a^2 + b^2
}
"""


def test_implicit_refuses_a_lower_minimize_at_a_maximum_or_saddle() -> None:
    """Newton-Krylov found x = y / 2, the maximum of -x^2 + y x, and implicit returned a
    hypergradient through it (unroll and penalty refused the problem); the curvature at the
    lower solution is now checked, and maximising the same objective is fine."""
    mod = ritz.compile(CONCAVE)
    for block in (mod.unb, mod.saddle):
        with pytest.raises(RitzError) as err:
            block.hypergrad()
        assert err.value.code == "R542" and "maximum or a saddle" in err.value.message
        assert "not convex" in err.value.hint and "maximize" in err.value.hint
    flipped = ritz.compile(CONCAVE.replace("lower minimize -x^2", "lower maximize -x^2")).unb
    assert flipped.hypergrad(y=0.5)["y"] == pytest.approx(0.25, abs=1e-10)  # x = y/2, F = y^2/4


def test_an_unbounded_upper_level_is_refused_not_reported_solved() -> None:
    """maximize w with w = q1 at the lower level grows without bound in q1: L-BFGS stopped at
    its iteration limit with q1 = 1e12 and the run reported it as the answer (exit 0)."""
    text = """
bilevel c {
    upper q1 = 1
    lower w = 0
    lower minimize (w - q1)^2
    upper maximize w
}
"""
    with pytest.raises(RitzError) as err:
        ritz.compile(text).c.solve()
    assert err.value.code == "R545" and "diverged" in err.value.message
    assert "'q1', which has no bounds" in err.value.message
    bounded = text.replace("upper q1 = 1", "upper q1 = 1 in [0, 5]")
    res = ritz.compile(bounded).c.solve()
    assert res.upper["q1"] == pytest.approx(5.0)


def test_an_upper_objective_that_divides_by_zero_is_r540() -> None:
    text = """
bilevel b {
    upper lam = 0 in [-1, 1]
    lower w = 0
    lower minimize (w - lam)^2
    upper minimize 1 / w + w^2
}
"""
    with pytest.raises(RitzError) as err:
        ritz.compile(text).b.solve()
    assert err.value.code == "R540" and "not finite" in err.value.message
    assert err.value.line == 6


RIDGE_TWO_LINES = """\
bilevel ridge {
    data X: [n, p], y: [n], Xv: [m, p], yv: [m]
    upper lam = 0.0
    lower w: [p] = 0
    lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum((Xv @ w - yv)^2)
    solve implicit(tol = 1e-12)
    solve unroll(k = 5, inner_lr = 0.01)
}
"""


def test_each_solve_line_of_a_bilevel_block_is_an_alternative() -> None:
    """method="unroll" takes the unroll line's k and inner_lr (not the defaults, nor the first
    line's options): the hypergradient of exactly 5 steps of size 0.01, differenced by hand."""
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(40, 6)), rng.normal(size=(30, 6))
    w_true = rng.normal(size=6)
    y, yv = X @ w_true + 0.5 * rng.normal(size=40), Xv @ w_true + 0.5 * rng.normal(size=30)
    data = {"X": X, "y": y, "Xv": Xv, "yv": yv}

    def unrolled(lam: float) -> float:
        w = np.zeros(6)
        for _ in range(5):
            w = w - 0.01 * (X.T @ (X @ w - y) + np.exp(lam) * w)
        return 0.5 * float(np.sum((Xv @ w - yv) ** 2))

    block = ritz.compile(RIDGE_TWO_LINES)["ridge"]
    h = 1e-6
    expected = (unrolled(0.3 + h) - unrolled(0.3 - h)) / (2 * h)
    got = block.hypergrad(lam=0.3, method="unroll", **data)["lam"]
    assert got == pytest.approx(expected, rel=1e-7)
    lam_e = np.exp(0.3)
    w = np.linalg.solve(X.T @ X + lam_e * np.eye(6), X.T @ y)
    dw = -np.linalg.solve(X.T @ X + lam_e * np.eye(6), lam_e * w)
    exact = float((Xv @ w - yv) @ (Xv @ dw))
    assert block.hypergrad(lam=0.3, **data)["lam"] == pytest.approx(exact, rel=1e-9)


def test_penalty_raises_rho_for_an_ill_conditioned_lower_level() -> None:
    """Ridge with 30 features and 10 samples at lam = -5: the lower Hessian's smallest
    eigenvalue is exp(-5), so at rho = 1e4 the penalised minimiser is far from w* and the
    extrapolation gave +0.83 for the exact -0.0143. rho = auto is raised; a small given rho
    is R542."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 30)), rng.normal(size=10)
    Xv, yv = rng.normal(size=(20, 30)), rng.normal(size=20)
    data = {"X": X, "y": y, "Xv": Xv, "yv": yv}
    block = ritz.compile(RIDGE_TWO_LINES)["ridge"]
    lam = -5.0
    A = X.T @ X + np.exp(lam) * np.eye(30)
    w = np.linalg.solve(A, X.T @ y)
    exact = float((Xv @ w - yv) @ (Xv @ -np.linalg.solve(A, np.exp(lam) * w)))
    got = block.hypergrad(lam=lam, method="penalty", **data)["lam"]
    assert got == pytest.approx(exact, rel=1e-3)  # observed 7.6e-5
    with pytest.raises(RitzError) as err:
        block.hypergrad(lam=lam, method="penalty", rho=1e3, **data)
    assert err.value.code == "R542" and "cannot resolve the lower level" in err.value.message


def test_unroll_that_bounces_between_two_points_is_refused() -> None:
    """The curvature of huber(w - y) + w^2 / 2 is 2 at the start (w = 1) and 1 ... auto's step
    1/2 would be fine there, but starting where it is 1 gives the step 1, which bounces at the
    solution: it returned 1.0 or 0.0 by the parity of k (the truth is 0.5), unreported."""
    text = """
fn hub(z) = 0.5 * min(abs(z), 1)^2 + max(abs(z) - 1, 0)
bilevel hb {
    upper y = -0.001 in [-3, 3]
    lower w = 1.0
    lower minimize hub(w - y) + 0.5 * w^2
    upper minimize w
    solve unroll(k = 100)
}
"""
    block = ritz.compile(text).hb
    with pytest.raises(RitzError) as err:
        block.hypergrad(y=-0.001)
    assert err.value.code == "R542" and "bounce" in err.value.message
    assert block.hypergrad(y=-0.001, method="implicit")["y"] == pytest.approx(0.5, rel=1e-9)
