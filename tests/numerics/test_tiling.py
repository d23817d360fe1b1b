"""Temporal blocking (several steps per pass over memory on cache-sized tiles) must give the
plain time loop's numbers bit for bit: same kernels, same operation order, overlaps exactly as wide
as the stencils eat into per stage. Tiles are made small here so that every grid has many."""

from __future__ import annotations

import numpy as np
import pytest

import ritz
from ritz.runtime.drivers import integrators

PROGRAMS = {
    # time- and coordinate-dependent Dirichlet and Robin data, a source, order 4, Euler
    "mixed_bc_2d": """
pde heat {
    space x in [0, 1]
    space y in [0, 2]
    time t in [0, 1]
    field u
    param nu = 0.5
    dt(u) = nu * lap(u) + sin(3 * x) * y * t
    boundary u = t * cos(y) at x = 0, x = 1
    boundary diff(u, y) + u = x at y = 0
    boundary diff(u, y) = 0 at y = 2
    initial u = sin(pi * x) * cos(y)
    solve fd(cells = [45, 70], scheme = euler, dt = 1e-6, order = 4)
}
""",
    # a periodic tiled axis (loaded modulo the grid), two fields, ssprk3
    "periodic_x": """
pde mix {
    space x in [0, 1] periodic
    space y in [0, 1]
    time t in [0, 1]
    field u, v
    dt(u) = 0.01 * lap(u) - diff(u, x) + y * v
    dt(v) = -u
    boundary u = 0 at y = 0, y = 1
    initial u = sin(2 * pi * x) * sin(pi * y)
    initial v = 0
    solve fd(cells = [50, 37], scheme = ssprk3, dt = 1e-4)
}
""",
    # face data of the periodic coordinate (a sawtooth at y = 1): the tile across the seam
    # evaluates it at the periodic image (it read x < 0 there: 5% off at the seam)
    "periodic_seam_data": """
pde seam {
    space x in [0, 1] periodic
    space y in [0, 1]
    time t in [0, 1]
    field u
    dt(u) = 0.1 * lap(u) + 0.02 * diff(diff(u, x), y)
    boundary diff(u, y) = 0 at y = 0
    boundary u = x at y = 1
    initial u = 0
    solve fd(cells = [40, 24], scheme = rk4, dt = 1e-4)
}
""",
    # 3-D with the third axis whole, rk4, mixed-derivative corners
    "box_3d": """
pde box {
    space x in [0, 1]
    space y in [0, 1]
    space z in [0, 1] periodic
    time t in [0, 1]
    field u
    dt(u) = 0.1 * lap(u) + 0.01 * diff(diff(u, x), y)
    boundary u = 0 at x = 0, x = 1
    boundary diff(u, y) = 0 at y = 0, y = 1
    initial u = sin(pi * x) * cos(pi * y) * (1 + 0.5 * sin(2 * pi * z))
    solve fd(cells = [21, 18, 12], scheme = rk4, dt = 1e-4)
}
""",
}


# face data of a periodic coordinate: past the seam a tile reaches the periodic image by a
# remainder (x + 1 for x = -h/2), the plain loop by the cell's own coordinate ((n - 1/2) h)
TO_ROUNDING = {"periodic_seam_data"}


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(integrators.TILES, 2, (8, 16))
    monkeypatch.setitem(integrators.TILES, 3, (4, 8))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_tiled_loop_equals_plain_loop_bit_for_bit(name: str, small_tiles: None) -> None:
    mod = ritz.compile(PROGRAMS[name])
    prob = mod[mod.names[0]]
    plain, tiled = prob.prepare(), prob.prepare()
    assert hasattr(tiled.module, "advance_tiled")
    plain.tiling, tiled.tiling = False, True
    for steps in (19, 8, 1):  # blocks plus a remainder that runs the plain loop
        plain.advance(steps)
        tiled.advance(steps)
    for field in plain.plan["fields"]:
        a = plain.snapshot((field,))[field]
        b = tiled.snapshot((field,))[field]
        if name in TO_ROUNDING:
            np.testing.assert_allclose(b, a, rtol=1e-13, atol=0)
        else:
            np.testing.assert_array_equal(a, b)
        assert np.abs(a - plain.snapshot((field,))[field]).max() == 0.0
    assert plain.t == pytest.approx(tiled.t)


def test_automatic_choice_keeps_the_numbers(
    small_tiles: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrators, "TILING_MIN_POINTS", 0)
    mod = ritz.compile(PROGRAMS["mixed_bc_2d"])
    auto, plain = mod.heat.prepare(), mod.heat.prepare()
    plain.tiling = False
    auto.advance(130)  # long enough for the trial (14 blocks of 8 Euler steps) and more
    plain.advance(130)
    assert auto.tiling in (True, False)  # timed both loops and chose one
    # the trial splits the run into several calls, so the time t (which the data depend on) is
    # accumulated in a different order: equal to rounding, not bit for bit
    a, b = auto.snapshot(("u",))["u"], plain.snapshot(("u",))["u"]
    assert np.abs(a - b).max() <= 1e-14 * np.abs(b).max()


def test_coordinates_on_a_periodic_tiled_axis_disable_tiling() -> None:
    # a value computed in the overlap past the periodic seam would see x beyond the domain
    source = PROGRAMS["periodic_x"].replace("+ y * v", "+ x * v")
    mod = ritz.compile(source)
    assert not hasattr(mod.mix.module(), "advance_tiled")
