"""The Python contract of LANGUAGE.md section 7 for PDE problems: load/compile, problems by name,
solutions (times, coordinates, fields, interpolation), overrides, errors and the kernel cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ritz
from ritz.dsl import RitzError, RuntimeInputError
from ritz.runtime.api import CompiledModule, PdeHandle

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "examples" / "heat1d.dsl"
FAST = {"cells": 32, "dt": 1e-3}  # rk4 limit at h = 1/32 and nu = 0.05 is dt < 1.4e-2

# u = 1 + 2 x - 4 y + c t solves dt(u) = c exactly, and the grid's linear interpolation in space
# and time is exact for it: a clean check of Solution.at.
LINEAR = """
pde lin {
    space x in [0, 2]
    space y in [-1, 1]
    time t in [0, 0.5]
    field u
    param c = 3
    dt(u) = c
    initial u = 1 + 2 * x - 4 * y
    solve fd(cells = [8, 4], scheme = euler, dt = 0.05, every = 0.25)
}
"""


def linear_exact(x: np.ndarray, y: np.ndarray, t: np.ndarray, c: float = 3.0) -> np.ndarray:
    return 1 + 2 * x - 4 * y + c * t


@pytest.fixture(scope="module")
def heat() -> PdeHandle:
    return ritz.load(str(HEAT)).heat1d


@pytest.fixture(scope="module")
def lin():
    return ritz.compile(LINEAR, name="lin.dsl").lin.solve()


def test_load_and_names() -> None:
    mod = ritz.load(str(HEAT))
    assert isinstance(mod, CompiledModule)
    assert mod.names == ["heat1d"]
    assert mod.heat1d is mod["heat1d"]
    assert "heat1d" in dir(mod)
    with pytest.raises(RuntimeInputError) as err:
        mod["heat2d"]
    assert err.value.code == "R501" and "heat1d" in (err.value.hint or "")
    with pytest.raises(AttributeError):
        mod._private  # noqa: B018


def test_compile_text_is_load() -> None:
    a = ritz.compile(HEAT.read_text(), name="heat1d.dsl").heat1d.solve(**FAST)
    b = ritz.load(str(HEAT)).heat1d.solve(**FAST)
    np.testing.assert_array_equal(a["u"], b["u"])


def test_solution_shape(heat: PdeHandle) -> None:
    sol = heat.solve(**FAST)
    assert sol.t.tolist() == [0.0, 0.1]  # no `every`: the initial and final states
    x = sol.coords["x"]
    assert list(sol.coords) == ["x"]
    np.testing.assert_allclose(x, (np.arange(32) + 0.5) / 32, rtol=0, atol=1e-15)
    assert sol["u"].shape == (2, 32)
    assert list(sol) == ["u"] and len(sol) == 1
    np.testing.assert_allclose(sol["u"][0], np.sin(np.pi * x), rtol=0, atol=1e-15)
    with pytest.raises(RuntimeInputError) as err:
        sol["v"]
    assert err.value.code == "R510"
    assert sol.info["steps"] == 100 and sol.info["cells"] == (32,)


def test_solution_shape_2d(lin) -> None:
    assert lin["u"].shape == (len(lin.t), 8, 4)
    assert lin.t.tolist() == [0.0, 0.25, 0.5]


@pytest.mark.parametrize(
    ("every", "times"),
    [
        (0.025, [0.0, 0.025, 0.05, 0.075, 0.1]),
        (0.03, [0.0, 0.03, 0.06, 0.09, 0.1]),  # t1 is always the last output
        (0.5, [0.0, 0.1]),  # longer than the run: just the ends
    ],
)
def test_every(heat: PdeHandle, every: float, times: list[float]) -> None:
    sol = heat.solve(every=every, **FAST)
    np.testing.assert_allclose(sol.t, times, rtol=0, atol=1e-12)
    assert sol["u"].shape == (len(times), 32)
    # the snapshots follow the exact decay exp(-nu pi^2 t) (O(h^2) error about 1e-4 at 32 cells)
    decay = sol["u"].max(axis=1) / sol["u"][0].max()
    np.testing.assert_allclose(decay, np.exp(-0.05 * np.pi**2 * sol.t), rtol=1e-3)


def test_parameter_override(heat: PdeHandle) -> None:
    default = heat.solve(**FAST)
    faster = heat.solve(nu=0.1, **FAST)
    assert faster.info["params"] == {"nu": 0.1}
    ratio = faster["u"][-1].max() / default["u"][-1].max()
    # exp(-0.1 pi^2 t) / exp(-0.05 pi^2 t) at t = 0.1, up to the O(h^2) error
    assert ratio == pytest.approx(np.exp(-0.05 * np.pi**2 * 0.1), rel=1e-4)


def test_solve_option_override(heat: PdeHandle) -> None:
    sol = heat.solve(cells=16, dt=2e-3, scheme="ssprk3")
    assert sol["u"].shape == (2, 16) and sol.info["steps"] == 50
    assert "Scheme ssprk3" in heat.source(scheme="ssprk3")


@pytest.mark.parametrize(("key", "suggestion"), [("nux", "nu"), ("cell", "cells"), ("dtt", "dt")])
def test_unknown_keyword(heat: PdeHandle, key: str, suggestion: str) -> None:
    with pytest.raises(RitzError) as err:
        heat.solve(**{key: 1})
    assert err.value.code == "R503"
    assert f"'{key}'" in err.value.message
    assert f"did you mean '{suggestion}'?" in (err.value.hint or "")


@pytest.mark.parametrize(
    "options",
    [
        {"every": -1},
        {"tol": 0},
        {"maxiter": 1.5},
        {"cells": "many"},
        {"dt": "soon"},
        {"dt": float("inf")},
        {"every": float("inf")},
    ],
    ids=["every", "tol", "maxiter", "cells", "dt", "dt-inf", "every-inf"],
)
def test_bad_option_values_from_python(heat: PdeHandle, options: dict) -> None:
    """Options given from Python meet the rules of a solve line's options (R538), and NumPy
    integers count as integers."""
    with pytest.raises(RitzError) as err:
        heat.solve(**options)
    assert err.value.code == "R538" and next(iter(options)) in err.value.message
    assert heat.solve(cells=np.int64(16), dt=1e-3)["u"].shape == (2, 16)


@pytest.mark.parametrize("value", ["abc", float("nan"), float("inf"), np.array([1.0, 2.0]), True])
def test_bad_parameter_values_from_python(heat: PdeHandle, value: object) -> None:
    with pytest.raises(RitzError) as info:
        heat.solve(nu=value)
    assert info.value.code == "R538" and "parameter 'nu'" in str(info.value)


def test_a_numpy_scalar_is_a_parameter_value(heat: PdeHandle) -> None:
    a = heat.solve(nu=np.float32(0.25), cells=20)["u"][-1]
    b = heat.solve(nu=0.25, cells=20)["u"][-1]
    assert np.array_equal(a, b)


def test_initial_velocity_of_a_second_order_equation() -> None:
    """``initial={"dt(u)": v}`` sets what ``initial dt(u) = ...`` declares, under the name the
    adjoint's ``g.initial`` uses; the map from it is linear, so the adjoint is checked exactly."""
    wave = ritz.compile(
        """
pde wv {
    space x in [0, 1]
    time t in [0, 0.3]
    field u
    dt(u, 2) = diff(u, x, 2)
    boundary u = 0 at all
    initial u = sin(pi * x)
    initial dt(u) = x * (1 - x)
    solve fd(cells = 20, scheme = rk4, dt = 2e-3)
}
"""
    ).wv
    sol = wave.solve()
    x = sol.coords["x"]
    weights = np.linspace(0.0, 1.0, 20)
    grad = sol.vjp({"u": weights}).initial["dt(u)"]
    direction = np.random.default_rng(1).normal(size=20)

    def objective(v: np.ndarray) -> float:
        return float(weights @ wave.solve(initial={"dt(u)": v})["u"][-1])

    v0 = x * (1 - x)
    assert objective(v0) == pytest.approx(float(weights @ sol["u"][-1]), rel=1e-14)
    fd = (objective(v0 + direction) - objective(v0 - direction)) / 2
    assert grad @ direction == pytest.approx(fd, rel=1e-10)
    with pytest.raises(RitzError) as info:
        wave.solve(initial={"dt_u": v0})
    assert info.value.code == "R514" and "did you mean 'dt(u)'" in str(info.value)


def test_dt_auto(heat: PdeHandle) -> None:
    sol = heat.solve(cells=32, dt="auto")
    # rk4's real stability limit: dt < 2.785 h^2 / (4 nu) at h = 1/32
    assert 0 < sol.info["dt"] <= 2.785 / 32**2 / (4 * 0.05)
    exact = np.exp(-0.05 * np.pi**2 * 0.1) * np.sin(np.pi * sol.coords["x"])
    assert np.abs(sol["u"][-1] - exact).max() < 1e-3


def test_unknown_method(heat: PdeHandle) -> None:
    with pytest.raises(RuntimeInputError) as err:
        heat.solve(method="pinn", **FAST)
    assert err.value.code == "R502"


def test_at_cell_centres_and_midway(lin) -> None:
    x, y = lin.coords["x"], lin.coords["y"]
    X, Y = np.meshgrid(x, y, indexing="ij")
    for k, tk in enumerate(lin.t):
        # at the centres: the grid values themselves
        np.testing.assert_allclose(lin.at(x=X, y=Y, t=tk)["u"], lin["u"][k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(lin["u"][k], linear_exact(X, Y, tk), rtol=0, atol=1e-12)
    # midway between neighbouring centres: the average of the two, and still exact
    xm = 0.5 * (x[:-1] + x[1:])
    got = lin.at(x=xm, y=np.full_like(xm, y[1]), t=lin.t[-1])["u"]
    np.testing.assert_allclose(got, 0.5 * (lin["u"][-1][:-1, 1] + lin["u"][-1][1:, 1]), atol=1e-12)
    # anywhere, between output times and out to the faces: exact for a linear field
    rng = np.random.default_rng(0)
    xs, ys, ts = rng.uniform(0, 2, 50), rng.uniform(-1, 1, 50), rng.uniform(0, 0.5, 50)
    got = lin.at(x=xs, y=ys, t=ts)["u"]
    np.testing.assert_allclose(got, linear_exact(xs, ys, ts), rtol=0, atol=1e-12)
    corners = lin.at(x=[0.0, 2.0], y=[-1.0, 1.0])["u"]  # default t: the final time
    np.testing.assert_allclose(corners, linear_exact(np.array([0, 2]), np.array([-1, 1]), 0.5))


def test_at_periodic_wraps() -> None:
    sol = ritz.load(str(ROOT / "examples" / "advection.dsl")).advection.solve(cells=50, dt=4e-3)
    x, u = sol.coords["x"], sol["u"][-1]
    # the face x = 0 lies midway between the last and first centres
    for face in (0.0, 1.0):
        assert sol.at(x=face)["u"] == pytest.approx(0.5 * (u[-1] + u[0]), abs=1e-14)
    assert sol.at(x=x[3])["u"] == pytest.approx(u[3], abs=1e-14)


def test_at_needs_every_axis(lin) -> None:
    with pytest.raises(RuntimeInputError) as err:
        lin.at(x=0.5)
    assert err.value.code == "R511"
    with pytest.raises(RuntimeInputError):
        lin.at(x=0.5, y=0.5, z=0.5)


def test_kernels_are_callables(heat: PdeHandle) -> None:
    kernels = heat.kernels
    assert isinstance(kernels, dict)
    assert {"step", "advance", "initial"} <= set(kernels)
    assert all(callable(k) for k in kernels.values())
    # they are the generated module's: run the initial kernel by hand on a padded buffer
    u = np.zeros(8 + 2)
    kernels["initial"](u, 0.05, 0.0, 1e-3, 0.0, 1 / 8)
    np.testing.assert_allclose(u[1:-1], np.sin(np.pi * (np.arange(8) + 0.5) / 8), atol=1e-15)


def test_prepare_and_advance(heat: PdeHandle) -> None:
    sim = heat.prepare(**FAST)
    sim.advance(100)
    assert sim.t == pytest.approx(0.1)
    np.testing.assert_array_equal(sim.state["u"], heat.solve(**FAST)["u"][-1])


def test_second_load_reuses_the_generated_file(cache_dir: Path) -> None:
    first = ritz.load(str(HEAT)).heat1d.module(**FAST)
    path = Path(first.__file__)
    assert path.is_file() and path.is_relative_to(cache_dir)
    stamp = path.stat().st_mtime_ns
    second = ritz.load(str(HEAT)).heat1d.module(**FAST)
    assert Path(second.__file__) == path
    assert path.stat().st_mtime_ns == stamp  # not rewritten
    assert second is first  # and not imported twice


def test_explicit_cache_dir(tmp_path: Path) -> None:
    handle = ritz.load(str(HEAT), cache_dir=tmp_path).heat1d
    path = Path(handle.module(**FAST).__file__)
    assert path.is_relative_to(tmp_path) and path.suffix == ".py"


# A fresh interpreter: how long until the first time step has run from a warm cache.
_WARM = """
import json, sys, time
start = time.perf_counter()
import ritz
handle = ritz.load(sys.argv[1]).heat1d
sim = handle.prepare(cells=32, dt=1e-3)
sim.advance(1)
elapsed = time.perf_counter() - start
print(json.dumps({"file": handle.module(cells=32, dt=1e-3).__file__, "seconds": elapsed,
                  "t": sim.t}))
"""


def test_warm_start_in_a_fresh_process(cache_dir: Path) -> None:
    def fresh() -> dict:
        proc = subprocess.run(
            [sys.executable, "-c", _WARM, str(HEAT)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "RITZ_CACHE_DIR": str(cache_dir)},
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    # the first process fills both caches if needed (this process's compiler fingerprint may be
    # older than the files on disk, so it cannot stand in for a fresh interpreter)
    first = fresh()
    path = Path(first["file"])
    stamp = path.stat().st_mtime_ns
    second = fresh()
    assert Path(second["file"]) == path and path.stat().st_mtime_ns == stamp
    assert second["t"] == pytest.approx(1e-3)
    assert list(path.parent.glob("__pycache__/heat1d_*.nbi"))  # Numba's own cache beside it
    # informative only (no timing assertions): see it with pytest -s
    print(f"warm start to the first step in a fresh process: {second['seconds']:.3f} s")


def test_run_time_errors_point_at_the_solve_line_option() -> None:
    """R504 and R512 come from options of the solve line: they carry its location (an option
    given from Python has none)."""
    text = (
        Path(__file__)
        .parents[2]
        .joinpath("examples", "heat1d.dsl")
        .read_text()
        .replace(
            "solve fd(cells = 200, scheme = rk4, dt = 2e-5)",
            "solve fd(cells = 1, scheme = cn, dt = auto)",
        )
    )
    with pytest.raises(RitzError) as info:  # a literal cell count: found by the check
        ritz.compile(text, name="h.dsl")
    assert (info.value.code, info.value.line, info.value.column) == ("R504", 11, 14)
    with pytest.raises(RitzError) as info:  # dt = auto on cn: also found by the check
        ritz.compile(text.replace("cells = 1,", "cells = 8,"), name="h.dsl")
    assert (info.value.code, info.value.line, info.value.column) == ("R512", 11, 38)
    fixed = text.replace("cells = 1,", "cells = 8,").replace("dt = auto", "dt = 1e-3")
    handle = ritz.compile(fixed, name="h.dsl").heat1d
    with pytest.raises(RitzError) as info:
        handle.solve(cells=1)
    assert info.value.code == "R504" and info.value.line is None  # given from Python
    with pytest.raises(RitzError) as info:
        handle.solve(cells=8, dt="auto")
    assert info.value.code == "R512" and info.value.line is None


UNSTABLE = """
pde p {
    space x in [0, 1]
    time t in [0, 0.1]
    field u
    param r = 0
    dt(u) = diff(u, x, 2) + r * u
    boundary u = 0 at all
    initial u = sin(pi * x)
    solve fd(cells = 20, scheme = rk4, dt = 2.5e-3)
}
"""


def test_a_step_beyond_the_stability_limit_is_refused_before_it_overflows() -> None:
    """dt = 2.5e-3 on 20 cells is 1.4 times rk4's limit for the heat equation (1.74e-3): each
    step multiplies the highest mode by 5, and 40 steps make rounding garbage of size 1e12,
    below the blow-up test (1e150), which passed with exit 0."""
    handle = ritz.compile(UNSTABLE)["p"]
    with pytest.raises(RitzError) as err:
        handle.solve()
    assert err.value.code == "R540" and "beyond the stable step of rk4" in err.value.message
    assert "dt = 2.5e-3" in UNSTABLE.splitlines()[err.value.line - 1]  # at the dt option
    sol = handle.solve(dt=1e-3)  # stable: no probe of the step, no error
    assert sol.info["steps"] == 100 and float(np.abs(sol["u"][-1]).max()) < 1


def test_growth_of_the_equation_at_a_stable_step_passes() -> None:
    """u' = lap(u) + 120 u grows by e^((120 - pi^2) 0.1), about 6e4, past the growth that
    makes the runtime check the step; the step is stable, so the solve stands."""
    sol = ritz.compile(UNSTABLE)["p"].solve(r=120.0, dt=1e-3)
    growth = float(np.abs(sol["u"][-1]).max())
    assert growth == pytest.approx(np.exp((120 - np.pi**2) * 0.1), rel=1e-2)
    assert sol.info["step"] == pytest.approx(1e-3)


@pytest.mark.parametrize("t1", ["0.05", True, 0.0, "soon"])
def test_end_time_is_a_number_after_the_start(t1: object) -> None:
    """t1 takes numbers only, as every other option (a string "0.05" was accepted)."""
    handle = ritz.compile(UNSTABLE)["p"]
    with pytest.raises(RitzError) as err:
        handle.solve(t1=t1, dt=1e-3)
    assert err.value.code == "R515"


def test_newton_options_on_an_explicit_scheme_are_refused() -> None:
    """tol and maxiter steer Newton's method; on rk4 they were accepted and did nothing."""
    handle = ritz.compile(UNSTABLE)["p"]
    with pytest.raises(RitzError) as err:
        handle.solve(tol=1e-3)
    assert err.value.code == "R503" and "explicit" in err.value.message
    sol = handle.solve(scheme="cn", dt=1e-2, maxiter=5)  # an implicit step takes them
    assert sol.info["steps"] == 10


def test_auto_step_resolves_a_growing_solution() -> None:
    """u' = 10 u grows by e^15: every explicit R(z) stays below e^z for z > 0, so growth set no
    step and dt = auto took one step over the whole interval (3079 for 3.6e6)."""
    text = """
pde g {
    space x in [0, 1] periodic
    time t in [0, 1.5]
    field u
    dt(u) = 10 * u + 0.001 * diff(u, x)
    initial u = 1 + 0.1 * cos(2 * pi * x)
    solve fd(cells = 16, scheme = rk4, dt = auto)
}
"""
    sol = ritz.compile(text)["g"].solve()
    exact = np.exp(15.0) * (1 + 0.1 * np.cos(2 * np.pi * sol.coords["x"]))
    assert sol.info["steps"] >= 20
    np.testing.assert_allclose(sol["u"][-1], exact, rtol=1e-2)
