"""Face data that depend on a periodic coordinate are read at the periodic image: the ghost row
of a face across a periodic axis includes that axis's halo cells, whose coordinates lie outside
the period, and a mixed derivative reads them (the corners). Two programs that are the same
problem translated by half a period must then agree to rounding; with the unwrapped coordinate
they differed at first order (5.5e-3 at 16 cells) at the seam."""

from __future__ import annotations

import numpy as np

import ritz

PERIOD = """
pde p {
    space x in [LO, HI] periodic
    space y in [0, 1]
    time t in [0, 0.05]
    field u
    dt(u) = 0.1 * lap(u) + 0.05 * diff(diff(u, x), y)
    boundary diff(u, y) = 0 at y = 0
    boundary u = DATA at y = 1
    initial u = 0
    solve fd(cells = [16, 16], scheme = rk4, dt = 5e-4)
}
"""


def test_data_of_a_periodic_coordinate_is_translation_invariant() -> None:
    # the periodic function x (1 - x) on [0, 1), written for the period [0, 1) and for
    # [0.5, 1.5), where the same function is (x - 1)(2 - x) past x = 1
    a = PERIOD.replace("LO", "0").replace("HI", "1").replace("DATA", "x * (1 - x)")
    shifted = "(x < 1) * x * (1 - x) + (x >= 1) * (x - 1) * (2 - x)"
    b = PERIOD.replace("LO", "0.5").replace("HI", "1.5").replace("DATA", shifted)
    ua = ritz.compile(a)["p"].solve()["u"][-1]
    ub = np.roll(ritz.compile(b)["p"].solve()["u"][-1], 8, axis=0)  # B's cell i + 8 is A's i
    assert float(np.abs(ua).max()) > 0.05
    np.testing.assert_allclose(ua, ub, rtol=0, atol=1e-14)
