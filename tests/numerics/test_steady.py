"""Steady problems: Newton-Krylov on the compiled residual and its derived Jacobian.

Observed orders against manufactured solutions, a nonlinear problem that needs several Newton
steps, and mixed Dirichlet/Neumann/Robin conditions."""

from __future__ import annotations

import numpy as np
import pytest

import ritz

POISSON = """
pde poisson {
    space x in [0, 1]
    space y in [0, 1]
    field u
    -lap(u) = 2 * pi^2 * sin(pi * x) * sin(pi * y)
    boundary u = 0 at all
    solve fd(cells = 16, tol = 1e-12)
}
"""

# u = cos(pi x) + x^2 on [0, 1]: -u'' + u^3 = pi^2 cos(pi x) - 2 + u^3, with a Neumann condition
# u'(0) = 0 and a Robin condition u'(1) + u(1) = 2 + (-1 + 1) at x = 1.
NONLINEAR = """
fn exact(x) = cos(pi * x) + x^2
pde bratu {
    space x in [0, 1]
    field u
    -diff(u, x, 2) + u^3 = pi^2 * cos(pi * x) - 2 + exact(x)^3
    boundary diff(u, x) = 0 at x = 0
    boundary diff(u, x) + u = 2 at x = 1
    solve fd(cells = 16, tol = 1e-12)
}
"""


def _slope(errs: list[float], cells: list[int]) -> float:
    return -np.polyfit(np.log(cells), np.log(errs), 1)[0]


@pytest.mark.parametrize("order", [2, 4])
def test_poisson_observed_order(order: int) -> None:
    mod = ritz.compile(POISSON)
    cells = [16, 32, 64]
    errs = []
    for n in cells:
        sol = mod.poisson.solve(cells=n, order=order)
        assert sol.t is None and sol["u"].shape == (n, n)
        x, y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
        errs.append(float(np.abs(sol["u"] - np.sin(np.pi * x) * np.sin(np.pi * y)).max()))
    # the linear problem is solved to 1e-12 relative residual, far below the truncation error
    assert abs(_slope(errs, cells) - order) < 0.2, errs


@pytest.mark.parametrize("order", [2, 4])
def test_nonlinear_newton_converges_at_the_order(order: int) -> None:
    mod = ritz.compile(NONLINEAR)
    # order 4: the Neumann/Robin closures still show an O(h^5) term on coarse grids
    cells = [16, 32, 64] if order == 2 else [80, 160, 320]
    errs = []
    for n in cells:
        sol = mod.bratu.solve(cells=n, order=order)
        # a nonlinear residual needs real Newton iterations (order 4 starts within O(h^2))
        assert sol.info["steps"] >= (2 if order == 2 else 1)
        norms = sol.info["residual_norms"]
        # order 4 starts from the order-2 solution: its first residual is O(h^2) already, and
        # Newton stops at the rounding floor (||R|| ~ eps / h^2 per cell) before 1e-12 of that
        assert norms[-1] <= max(1e-12 * norms[0], 2e-9), norms
        assert sol.info["steps"] <= (8 if order == 2 else 3)
        x = sol.coords["x"]
        errs.append(float(np.abs(sol["u"] - (np.cos(np.pi * x) + x**2)).max()))
    assert abs(_slope(errs, cells) - order) < 0.25, errs


def test_steady_solution_interpolates_and_saves(tmp_path) -> None:
    sol = ritz.compile(POISSON).poisson.solve(cells=32)
    got = sol.at(x=np.array([0.5]), y=np.array([0.5]))["u"]
    assert abs(got[0] - 1.0) < 5e-3  # bilinear between centres next to the peak
    path = sol.save(tmp_path / "s.npz")
    with np.load(path) as data:
        assert data["field_u"].shape == (32, 32)


PURE_NEUMANN = """
pde floating {
    space x in [0, 1]
    field u
    -diff(u, x, 2) = cos(pi * x)
    boundary diff(u, x) = 0 at all
}
"""


SINGULAR_2D = """
pde per {
    space x in [0, 1] periodic
    space y in [0, 1] periodic
    field u
    -lap(u) = sin(2 * pi * x)
}
pde neu {
    space x in [0, 1]
    space y in [0, 1]
    field u
    -lap(u) = 1
    boundary diff(u, x) = 0 at x = 0, x = 1
    boundary diff(u, y) = 0 at y = 0, y = 1
}
pde cubic {
    space x in [0, 1]
    space y in [0, 1]
    field u
    -lap(u) + u^3 = cos(pi * x)
    boundary diff(u, x) = 0 at x = 0, x = 1
    boundary diff(u, y) = 0 at y = 0, y = 1
}
"""


def test_singular_problem_is_reported_not_solved() -> None:
    # u is fixed only up to a constant: the Jacobian is singular, and ritz must say so
    with pytest.raises(ritz.RitzError) as err:
        ritz.compile(PURE_NEUMANN).floating.solve(cells=32)
    assert err.value.code == "R543"
    assert "Dirichlet" in (err.value.hint or "")


@pytest.mark.parametrize("name", ["per", "neu"])
def test_singular_problem_in_2d_is_reported(name: str) -> None:
    """In 2-D rounding hid the zero pivot: SuperLU factorised the singular matrix and returned
    an arbitrary constant (compatible data) or Newton ran 100 steps to R542 (incompatible)."""
    with pytest.raises(ritz.RitzError) as err:
        ritz.compile(SINGULAR_2D)[name].solve(cells=12)
    assert err.value.code == "R543" and "constant to 'u'" in err.value.message


def test_neumann_problem_with_a_term_in_u_is_solved() -> None:
    sol = ritz.compile(SINGULAR_2D).cubic.solve(cells=12)
    assert sol.info["steps"] < 20 and 0.05 < float(np.abs(sol["u"]).max()) < 0.2


def test_large_grids_use_ilu_preconditioned_gmres(monkeypatch: pytest.MonkeyPatch) -> None:
    from ritz.runtime.drivers import solvers

    monkeypatch.setattr(solvers, "DIRECT_LIMIT", 10)  # force the iterative path on a small grid
    sol = ritz.compile(POISSON).poisson.solve(cells=32)
    assert sol.info["krylov_iterations"] > 0
    norms = sol.info["residual_norms"]
    assert norms[-1] <= 1e-12 * norms[0]
    x, y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
    assert np.abs(sol["u"] - np.sin(np.pi * x) * np.sin(np.pi * y)).max() < 2e-3


PERIODIC_HELMHOLTZ = """
pde helm {
    space x in [0, 1] periodic
    space y in [0, 1]
    field u
    -lap(u) + u = cos(2 * pi * x) * sin(pi * y)
    boundary u = 0 at y = 0, y = 1
    solve fd(cells = 25, tol = 1e-12)
}
"""


@pytest.mark.parametrize("cells", [25, 24, [26, 20], [7, 9]])
def test_periodic_axis_whose_cells_the_colouring_does_not_divide(cells) -> None:
    # the colour classes of the Jacobian assembly must not meet across the periodic seam: with
    # 25 cells and period 3 they did, the Jacobian was wrong and Newton diverged (R542); a
    # linear problem converges in one Newton step
    sol = ritz.compile(PERIODIC_HELMHOLTZ).helm.solve(cells=cells)
    assert sol.info["steps"] == 1
    x, y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
    exact = np.cos(2 * np.pi * x) * np.sin(np.pi * y) / (1 + 5 * np.pi**2)
    n = min(np.atleast_1d(cells))
    assert np.abs(sol["u"] - exact).max() < 0.06 / n**2


COUPLED = """
pde cs {
    space x in [0, 1]
    space y in [-1, 1]
    field u, v
    -lap(v) + u = 1
    -lap(u) - 0.1 * v * u = 1
    boundary u = 0 at all
    boundary v = 0 at all
    solve fd(cells = 24)
}
"""


def test_equation_order_does_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equations go to fields in the order written, so u's rows may hold -lap(v) + u, whose
    diagonal (1) is tiny beside its 4/h^2 entries: the solver reorders the equations so each
    field's rows carry the large diagonal (partial pivoting would otherwise wreck the
    fill-reducing order of the LU). The solution is the same as with the lines swapped."""
    from ritz.runtime.drivers import solvers

    chosen = []
    block_rows = solvers._block_rows
    monkeypatch.setattr(
        solvers,
        "_block_rows",
        lambda jac, blocks: chosen.append(block_rows(jac, blocks)) or chosen[-1],
    )
    written = ritz.compile(COUPLED).cs.solve()
    assert chosen and chosen[0] is not None and chosen[0][0] == 24 * 24  # v's rows first
    lines = ("    -lap(v) + u = 1\n", "    -lap(u) - 0.1 * v * u = 1\n")
    swapped = ritz.compile(COUPLED.replace(lines[0] + lines[1], lines[1] + lines[0])).cs.solve()
    for f in ("u", "v"):
        np.testing.assert_allclose(written[f], swapped[f], rtol=0, atol=1e-13)


KIRCHHOFF = """
pde kirch {
    space x in [0, 1]
    field u
    -diff((1 + u^2) * diff(u, x), x) = 0
    boundary u = 0 at x = 0
    boundary u = 1 at x = 1
}
"""


def test_nonlinear_diffusion_from_the_default_guess() -> None:
    """From u = 0, which breaks the condition u = 1 by a jump of O(1) at the face, Newton alone
    converged to a spurious root of the chain-rule discretisation (the last cell at -0.66, at
    every resolution, residual 1e-12). The flux form has no such root, and pseudo-transient
    continuation follows the relaxation to the solution, u + u^3 / 3 = 4 x / 3, at second order
    (at 16 cells the error is 5.7e-5; it was 2.2e-4 with the chain rule)."""
    from scipy.optimize import brentq

    handle = ritz.compile(KIRCHHOFF).kirch
    errors = []
    for cells in (16, 32, 64, 128):
        sol = handle.solve(cells=cells)
        x = sol.coords["x"]
        exact = np.array(
            [brentq(lambda u, s=s: u + u**3 / 3 - 4 * s / 3, 0, 1, xtol=1e-15) for s in x]
        )
        errors.append(float(np.abs(sol["u"] - exact).max()))
        assert sol.info["steps"] <= 12
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[0] < 1e-4 and np.all(rates > 1.7) and abs(rates[-1] - 2) < 0.15, (errors, rates)


def test_the_solution_says_whether_tol_or_rounding_stopped_newton() -> None:
    """float32 cannot reach tol = 1e-10: Newton stops at its rounding floor, and says so."""
    text = """
pde s {
    space x in [0, 1]
    field u
    -diff(u, x, 2) + u^3 = 1
    boundary u = 0 at all
    solve fd(cells = 64)
}
"""
    handle = ritz.compile(text)["s"]
    exact, rounded = handle.solve(), handle.solve(dtype="float32")
    assert exact.info["stopped"] == "tol" and rounded.info["stopped"] == "rounding"
    # float32's 6e-8 amplified by the condition number of the second difference (~4 / h^2)
    assert float(np.abs(rounded["u"] - exact["u"]).max()) < 1e-4


def test_an_integer_constant_beyond_64_bits() -> None:
    """2^70 is a double like any other number (Numba could not type it as an integer): the
    discrete solution of -u'' + 2^70 u = sin(pi x) is sin(pi x) / (2^70 + lambda_h)."""
    text = """
pde big {
    space x in [0, 1]
    field u
    -diff(u, x, 2) = sin(pi * x) - 2^70 * u
    boundary u = 0 at all
    solve fd(cells = 16)
}
"""
    sol = ritz.compile(text).big.solve()
    x, h = sol.coords["x"], 1 / 16
    lam = 4 / h**2 * np.sin(np.pi * h / 2) ** 2
    np.testing.assert_allclose(sol["u"], np.sin(np.pi * x) / (2.0**70 + lam), rtol=1e-12)
