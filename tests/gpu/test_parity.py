"""CuPy against Numba: every example in both dtypes, convergence orders, graph replay, and host
copies only at outputs. Each test runs on the CPU emulator of the CUDA kernels and, where CuPy
sees one, on a real GPU (see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ritz
from ritz.runtime.api import PdeHandle
from ritz.runtime.drivers.integrators import output_times, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.dsl"))
CELLS = {1: 40, 2: 16, 3: 8}  # steady problems (a sparse LU per Newton step)
# odd counts run the plain-launch step, even ones graphs of 2, 4, ..., 64 steps (and 70 = 64 + 6)
STEP_COUNTS = (1, 2, 7, 70)
# float64: same scheme, same operation order up to FMA contraction and libm ulps: rounding only.
# (the emulator, without FMA, agrees bit for bit). float32: the Numba module forms coordinates in
# float64, CUDA in float, so the initial states differ by an ulp; a field that starts at zero
# (wave2d's dt_u) is dt * lap(u) after a step, whose float32 rounding is ~eps / (h^2 |lap u|):
# 6e-4 relative at 125^2 cells. Every other field agrees to 1e-5. An indexing or role mistake
# makes O(1) errors.
TOLERANCE = {"float64": 1e-12, "float32": 2e-3}


def _pde_names(mod, steady: bool = False) -> list[str]:
    """The time-dependent pde blocks (or the steady ones)."""
    return [
        n
        for n in mod.names
        if isinstance(mod[n], PdeHandle) and (mod[n].problem.time is None) == steady
    ]


def _parity_cells(handle: PdeHandle) -> list[int]:
    """A little under the example's own grid (so its dt stays stable), different along each
    axis and no multiple of a thread block: partial blocks, several blocks per axis, and an
    axis mix-up all show."""
    cells = handle.resolve({})[1].get("cells", 64)
    ndim = len(handle.problem.axes)
    cells = [int(cells)] * ndim if isinstance(cells, int) else [int(c) for c in cells]
    return [n - 3 - 2 * a for a, n in enumerate(cells)]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_cupy_matches_numba(example: Path, dtype: str, order: int, device) -> None:
    numba_mod = ritz.load(str(example), backend="numba")
    cupy_mod = ritz.load(str(example), backend="cupy")
    for name in _pde_names(numba_mod):
        cells = _parity_cells(numba_mod[name])
        sims = [
            m[name].prepare(cells=cells, dtype=dtype, order=order) for m in (numba_mod, cupy_mod)
        ]
        fields = sims[0].plan["fields"]
        for steps in STEP_COUNTS:
            for sim in sims:
                sim.advance(steps)
            ref, got = (sim.snapshot(fields) for sim in sims)
            for f in fields:
                assert got[f].dtype == np.dtype(dtype)
                err = _rel(got[f], ref[f])
                assert err <= TOLERANCE[dtype], (name, dtype, steps, f, err)


HEAT = """
pde heat {
    space x in [0, 1]
    time t in [0, 0.05]
    field u
    param nu = 1
    dt(u) = nu * diff(u, x, 2)
    boundary u = 0 at x = 0, x = 1
    initial u = sin(pi * x)
    solve fd(cells = 16, scheme = rk4, dt = 1e-5, every = 0.01)
}
"""


@pytest.mark.parametrize("order", [2, 4])
def test_observed_order_on_the_gpu(order: int, device) -> None:
    # same grids and steps as tests/numerics/test_convergence.py (see the reasons there)
    cells = [16, 32, 64] if order == 2 else [80, 160, 320]
    dt = 2e-5 if order == 2 else 2e-6
    handle = ritz.compile(HEAT, backend="cupy").heat
    errs = []
    for n in cells:
        sol = handle.solve(cells=n, order=order, dt=dt)
        exact = np.exp(-(np.pi**2) * sol.t[-1]) * np.sin(np.pi * sol.coords["x"])
        errs.append(float(np.abs(sol["u"][-1] - exact).max()))
    observed = -np.polyfit(np.log(cells), np.log(errs), 1)[0]
    assert abs(observed - order) < 0.2, (order, errs, observed)


def test_host_copies_only_at_outputs(device) -> None:
    handle = ritz.compile(HEAT, backend="cupy").heat
    sim = handle.prepare(cells=32)
    times = output_times(0.0, 0.05, 0.01)
    outputs = len(times) - 1
    _, snaps, steps = run(sim, times, ("u",))
    assert steps == 5000
    # one copy per field at t0 and one at each of the N outputs: N + 1, nothing per step
    assert sim.backend.host_copies == outputs + 1
    assert snaps["u"].shape == (outputs + 1, 32)
    assert sim.module.graph_status["enabled"], sim.module.graph_status["reason"]


def test_standalone_module_solve_matches_numba(device) -> None:
    cupy_mod = ritz.compile(HEAT, backend="cupy").heat.module()
    numba_mod = ritz.compile(HEAT, backend="numba").heat.module()
    args = ({"nu": 1.0}, [(0.0, 1.0)], [24], 0.0, 0.01, 1e-4)
    got, ref = cupy_mod.solve(*args), numba_mod.solve(*args)
    assert isinstance(got["u"], np.ndarray)
    assert _rel(got["u"], ref["u"]) <= 1e-12


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_steady_cupy_matches_numba(example: Path, device) -> None:
    # the same Newton iteration on device kernels: the Jacobians agree to rounding, so do the
    # solutions (float64)
    numba_mod = ritz.load(str(example), backend="numba")
    cupy_mod = ritz.load(str(example), backend="cupy")
    for name in _pde_names(numba_mod, steady=True):
        ndim = len(numba_mod[name].problem.axes)
        ref, got = (m[name].solve(cells=CELLS[ndim]) for m in (numba_mod, cupy_mod))
        for f in ref.fields:
            assert _rel(got[f], ref[f]) <= 1e-10, (name, f)


IMPLICIT = """
pde allen_cahn {
    space x in [0, 1]
    space y in [0, 1]
    time t in [0, 0.05]
    field u
    param eps = 0.01
    dt(u) = eps * lap(u) + u - u^3 + 0.1 * sin(pi * t) * x
    boundary diff(u, x) = 0 at x = 0, x = 1
    boundary u = 0.2 * t at y = 0, y = 1
    initial u = 0.5 * cos(3 * pi * x) * sin(pi * y)
    solve fd(cells = 24, scheme = cn, dt = 5e-3)
}
"""


@pytest.mark.parametrize("scheme", ["cn", "imex"])
def test_implicit_cupy_matches_numba(scheme: str, device) -> None:
    # the explicit half at t, the residual and its jvp at t + dt (time-dependent boundary data
    # and forcing), Newton on device kernels; imex also its first-step variant
    handle = {b: ritz.compile(IMPLICIT, backend=b).allen_cahn for b in ("numba", "cupy")}
    # tol far below 1e-12: each step's Newton solve runs to rounding on both backends, so where
    # FMA on a GPU changes the last bits, it cannot change how many iterations a step takes
    opts = {"scheme": scheme, "cells": [23, 26], "every": 0.02, "tol": 1e-15}
    ref, got = (handle[b].solve(**opts) for b in handle)
    np.testing.assert_array_equal(got.t, ref.t)
    assert _rel(got["u"], ref["u"]) <= 1e-12


SWITCHES = """
pde switched {
    space x in [0, 1]
    space y in [0, 1]
    time t in [0, 0.01]
    field u
    param k1 = 1.0, k2 = 0.2
    dt(u) = (k1 * (x < 0.4) + k2 * (x >= 0.4)) * lap(u) + (u > 0.3 and not (u >= 0.9)) * u
    boundary u = (t >= 0.001 or y > 0.5) at x = 0
    boundary diff(u, x) = max(y - 0.5, 0) + (t + y) % 0.3 at x = 1
    boundary u = 0 at y = 0, y = 1
    initial u = ((x - 0.5)^2 + (y - 0.5)^2 < 0.1) * (x != 0.3) + diff(abs(x - 0.2) * x, x)
    solve fd(cells = 20, scheme = rk4, dt = 1e-5)
}
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_comparisons_and_steps_match_numba(dtype: str, device) -> None:
    """Comparisons, and/or/not, remainders and the steps of max/abs derivatives, printed as
    CUDA selects.
    No cell centre lies on a threshold (an ulp of float32 coordinates would flip it)."""
    sims = [
        ritz.compile(SWITCHES, backend=b).switched.prepare(cells=[19, 18], dtype=dtype)
        for b in ("numba", "cupy")
    ]
    for sim in sims:
        sim.advance(40)
    ref, got = (sim.snapshot(("u",))["u"] for sim in sims)
    assert _rel(got, ref) <= TOLERANCE[dtype]
    assert 0.1 < float(np.abs(ref).max()) < 10
