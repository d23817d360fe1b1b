"""R509: a derivative condition whose sign feeds the field in through the face has a boundary
closure that is singular at one grid spacing; grids near or past it are refused before running,
and every other grid (and every dissipative condition) runs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ritz
from ritz.dsl import RuntimeInputError

HEAT = """
pde heat {{
    space x in [0, 1]
    time t in [0, 0.01]
    field u
    param b = 0.0375
    dt(u) = diff(u, x, 2)
    boundary {lo} at x = 0
    boundary {hi} at x = 1
    initial u = sin(pi * x)
    solve fd(cells = 40, scheme = rk4, dt = 2e-6)
}}
"""
# feeding in: du/dn = +u/b on the face (outward normal n); the closure of degree 2 is singular
# at h = 8b/3 = 0.1, so it needs h <= 0.05 (20 cells)
FEEDING_LO = HEAT.format(lo="u + b * diff(u, x) = 0", hi="u = 0")
FEEDING_HI = HEAT.format(lo="u = 0", hi="diff(u, x) = u / b")
DRAINING = HEAT.format(lo="u - b * diff(u, x) = 0", hi="diff(u, x) + u / b = 0")


@pytest.mark.parametrize("text", [FEEDING_LO, FEEDING_HI], ids=["lo", "hi"])
@pytest.mark.parametrize("cells", [5, 10, 12, 19])
def test_grids_near_or_past_the_singular_spacing_are_refused(text: str, cells: int) -> None:
    handle = ritz.compile(text).heat
    with pytest.raises(RuntimeInputError) as info:
        handle.solve(cells=cells)
    err = info.value
    assert err.code == "R509"
    text_of = str(err)
    assert "singular at h = 0.1" in text_of and "use at least 20 cells along x" in text_of
    assert ":8:5:" in text_of or ":9:5:" in text_of  # the boundary line, with a caret


def test_a_grid_below_the_margin_runs_and_converges() -> None:
    handle = ritz.compile(FEEDING_LO).heat
    sols = {n: handle.solve(cells=n)["u"][-1] for n in (20, 40, 80, 160)}
    diffs = [
        float(np.abs(sols[n] - sols[2 * n].reshape(n, 2).mean(axis=1)).max()) for n in (20, 40, 80)
    ]
    # the boundary layer is resolved from here on: differences shrink by 4-8 per refinement
    assert all(a / b > 3.5 for a, b in itertools.pairwise(diffs)), diffs
    # and the growth is the physical one (du/dn = u/b pumps u in), not a spurious mode
    assert 100 < np.abs(sols[160]).max() < 400


@pytest.mark.parametrize("cells", [3, 5, 40])
def test_draining_conditions_are_never_refused(cells: int) -> None:
    sol = ritz.compile(DRAINING).heat.solve(cells=cells)
    assert np.all(np.isfinite(sol["u"])) and np.abs(sol["u"][-1]).max() < 1.0


def test_a_parameter_value_decides() -> None:
    handle = ritz.compile(FEEDING_LO).heat
    handle.solve(cells=10, b=-0.0375)  # the same line with b < 0 drains: runs
    with pytest.raises(RuntimeInputError, match="R509"):
        handle.solve(cells=10, b=0.0375)


def test_coefficients_that_change_in_time_are_checked_over_the_run() -> None:
    """alpha = -30 t is 0 at the start: the nearest pole is at the end (h = 8 / 90), so every
    grid coarser than 23 cells is refused, whatever the start says."""
    text = """
pde rt {
    space x in [0, 1]
    time t in [0, 1]
    field u
    dt(u) = diff(u, x, 2) - 1000 * u + 1000
    boundary u = 1 at x = 0
    boundary diff(u, x) - 30 * t * u = 0 at x = 1
    initial u = 1
    solve fd(cells = 9, scheme = rk4, dt = 5e-5)
}
"""
    handle = ritz.compile(text).rt
    for cells in (9, 16):
        with pytest.raises(RuntimeInputError) as info:
            handle.solve(cells=cells)
        assert info.value.code == "R509" and "use at least 23 cells" in str(info.value)
    assert handle.solve(cells=96)["u"][-1].max() == pytest.approx(15.02, abs=0.05)
