"""Every example runs, from the command line and from Python, in a fast mode (small grids, a
stable dt), and its result passes a sanity check taken from the mathematics of the example."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ritz
from ritz.runtime.cli import main

ROOT = Path(__file__).resolve().parent.parent
ALL_EXAMPLES = sorted((ROOT / "examples").glob("*.dsl"))
# the PDE examples run in a fast mode below; the training examples have their own tests
EXAMPLES = [p for p in ALL_EXAMPLES if "\npde " in "\n" + p.read_text()]
TRAIN_EXAMPLES = [p for p in ALL_EXAMPLES if p not in EXAMPLES]

# Fast mode per example: the grid and a time step well inside the scheme's stability region.
FAST: dict[str, dict[str, object]] = {
    # rk4 on u_t = nu u_xx: stable for dt < 2.78 h^2 / (4 nu) = 3.4e-3 at h = 1/64
    "heat1d": {"cells": 64, "dt": 1e-3},
    # rk4 on the wave system: stable for dt < 2.8 h / (c sqrt(8)) = 3.1e-2 at h = 1/32
    "wave2d": {"cells": 32, "dt": 5e-3},
    # diffusion is tiny (Du 8 / h^2 = 0.03); dt = 2 keeps the reaction rates (<= 0.1) well
    # inside rk4's region; 500 steps to t = 1000
    "gray_scott": {"cells": 32, "dt": 2.0},
    # order-4 centred advection with rk4: Courant number c dt / h = 0.2
    "advection": {"cells": 100, "dt": 2e-3},
    # centred differences need a cell Peclet number h |u| / nu below ~2.5 once the shock forms:
    # 256 cells blow up after t = 0.25, 512 cells (Peclet 1.2) do not
    "burgers": {"cells": 512, "dt": 2e-4},
    # rk4 on the 3-D Laplacian: stable for dt < 2.78 h^2 / (12 kappa) = 9e-3 at h = 1/16
    "diffusion3d": {"cells": 16, "dt": 1e-3},
    # steady: one Newton step with a sparse LU of the derived Jacobian
    "poisson": {"cells": 32},
    # imex at the example's own dt = 0.2 (rk4 would need dt < 0.15 here, < 0.011 at 256 cells)
    "allen_cahn": {"cells": 48, "dt": 0.2},
    # order-4 centred transport with rk4: Courant number (cx + cy) dt / h = 0.23
    "pulse_outflow": {"cells": 48, "dt": 4e-3},
    # rk4 on nu kappa u_xx with kappa = 1: stable for dt < 2.78 h^2 / (4 nu) = 1.4e-3 at h = 1/32
    "inverse_heat": {"cells": 32, "dt": 2e-4},
    # rk4 on the wave system at order 4: Courant number c dt / h = 0.5, 128 steps to t = 2
    "driven_string": {"cells": 64, "dt": 1 / 128},
}

Result = tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]


def _mesh(coords: dict[str, np.ndarray]) -> list[np.ndarray]:
    return np.meshgrid(*coords.values(), indexing="ij")


def check_heat1d(t: np.ndarray, coords: dict, fields: dict) -> None:
    # u = exp(-nu pi^2 t) sin(pi x); the centre cells are within 1e-3 of the peak x = 1/2, and the
    # O(h^2) error at 64 cells is about 1e-5
    u = fields["u"][-1]
    assert u.max() == pytest.approx(np.exp(-0.05 * np.pi**2 * t[-1]), abs=1e-3)
    (x,) = _mesh(coords)
    assert np.abs(u - np.exp(-0.05 * np.pi**2 * t[-1]) * np.sin(np.pi * x)).max() < 1e-4


def check_wave2d(t: np.ndarray, coords: dict, fields: dict) -> None:
    # the standing wave cos(sqrt(2) pi t) sin(pi x) sin(pi y); observed error 1.5e-3 at 32 cells
    # (phase error of order (pi h)^2 / 24 per unit time)
    x, y = _mesh(coords)
    exact = np.cos(np.sqrt(2) * np.pi * t[-1]) * np.sin(np.pi * x) * np.sin(np.pi * y)
    assert np.abs(fields["u"][-1] - exact).max() < 5e-3


def check_gray_scott(t: np.ndarray, coords: dict, fields: dict) -> None:
    # u = 1 is the stable trivial state and the reaction only consumes u: u stays in [0, 1]
    u, v = fields["u"], fields["v"]
    assert u.min() >= 0.0 and u.max() <= 1.0 + 1e-12
    assert v.min() >= -1e-12
    assert len(t) == 11  # every = 100 up to t = 1000


def check_advection(t: np.ndarray, coords: dict, fields: dict) -> None:
    # one period (c = 1 on [0, 1]): the bump is back where it started; the observed error at 100
    # cells is 1e-3 (order-4 dispersion), halfway round it is far from its start
    u = fields["u"]
    assert np.allclose(t, [0, 0.25, 0.5, 0.75, 1.0])
    assert np.abs(u[-1] - u[0]).max() < 5e-3
    assert np.abs(u[2] - u[0]).max() > 0.5


def check_pulse_outflow(t: np.ndarray, coords: dict, fields: dict) -> None:
    # the exact solution is the initial pulse moved by (0.8, 0.4) t; at t = 1 its centre is at
    # x = 1.15, outside: what is left meets the exact solution as well as the pulse did in the
    # middle (observed 1.0e-2 at t = 0.5 and 6e-3 at t = 1 on 48 cells), with no reflection
    # (a condition u = 0 on the outflow faces gives 2.2 there)
    x, y = _mesh(coords)
    for k, tk in enumerate(t):
        exact = np.exp(-100 * ((x - 0.35 - 0.8 * tk) ** 2 + (y - 0.35 - 0.4 * tk) ** 2))
        assert np.abs(fields["u"][k] - exact).max() < 2e-2, tk
    assert fields["u"][-1].max() < 0.1


def check_burgers(t: np.ndarray, coords: dict, fields: dict) -> None:
    # -sin(pi x) with symmetric walls: u(-x) = -u(x) for all time; the grid is symmetric, so only
    # rounding breaks it (observed 6e-16)
    u = fields["u"]
    assert np.abs(u + u[:, ::-1]).max() < 1e-10
    assert np.abs(u[-1]).max() < 1.0  # viscosity dissipates


def check_diffusion3d(t: np.ndarray, coords: dict, fields: dict) -> None:
    # the file's exact solution exp(-5 pi^2 kappa t) sin(pi x) cos(2 pi y); O(h^2) error at 16
    # cells observed 2e-3
    x, y, _ = _mesh(coords)
    for k, tk in enumerate(t):
        exact = np.exp(-5 * np.pi**2 * 0.1 * tk) * np.sin(np.pi * x) * np.cos(2 * np.pi * y)
        assert np.abs(fields["u"][k] - exact).max() < 5e-3


def check_poisson(t: np.ndarray | None, coords: dict, fields: dict) -> None:
    # steady (no time axis): sin(pi x) sin(pi y) with an O(h^2) error, observed 7.5e-4 at 32 cells
    assert t is None or len(t) == 0
    x, y = _mesh(coords)
    assert np.abs(fields["u"] - np.sin(np.pi * x) * np.sin(np.pi * y)).max() < 2e-3


def check_allen_cahn(t: np.ndarray, coords: dict, fields: dict) -> None:
    # phase separation: bounded by 1 (maximum principle), the free energy
    # mean(D/2 |grad u|^2 + (1 - u^2)^2 / 4) decreases at every output (0.248, 0.120, 0.076,
    # 0.065 observed), and most of the square ends near u = +-1 (mean |u| 0.86 observed)
    u = fields["u"]
    h = 1.0 / u.shape[1]
    assert np.abs(u).max() <= 1 + 1e-6
    energy = []
    for k in range(len(t)):
        gx = (np.roll(u[k], -1, 0) - u[k]) / h
        gy = (np.roll(u[k], -1, 1) - u[k]) / h
        energy.append(np.mean(1e-3 / 2 * (gx**2 + gy**2) + (1 - u[k] ** 2) ** 2 / 4))
    assert np.all(np.diff(energy) < 0), energy
    assert 0.8 < np.abs(u[-1]).mean() < 0.95


def check_inverse_heat(t: np.ndarray, coords: dict, fields: dict) -> None:
    # kappa = 1 stays 1; u = e^(-nu pi^2 t) sin(pi x) + 0.5 e^(-9 nu pi^2 t) sin(3 pi x), nu = 0.5;
    # the O(h^2) error at 32 cells is about 1e-3 (the 3 pi mode: (3 pi h)^2 / 12 of it)
    (x,) = _mesh(coords)
    assert np.all(fields["kappa"] == 1.0)
    for k, tk in enumerate(t):
        exact = np.exp(-0.5 * np.pi**2 * tk) * np.sin(np.pi * x)
        exact += 0.5 * np.exp(-4.5 * np.pi**2 * tk) * np.sin(3 * np.pi * x)
        assert np.abs(fields["u"][k] - exact).max() < 2e-3


def check_driven_string(t: np.ndarray, coords: dict, fields: dict) -> None:
    # u = A sin(w t) sin(w (1 - x) / c) / sin(w / c); observed 4.8e-8 at 64 cells (6e-7 when
    # the stages imposed the moving data at their stage times: second order)
    (x,) = _mesh(coords)
    exact = 0.1 * np.sin(5 * t[-1]) * np.sin(5 * (1 - x)) / np.sin(5)
    assert np.abs(fields["u"][-1] - exact).max() < 1e-7


@pytest.mark.slow
def test_inverse_heat_script() -> None:
    """The inverse-problem script: scipy's L-BFGS-B on sol.vjp gradients recovers nu to 0.1%
    and kappa(x) to 0.1 rms from observations with 1% noise (its ill-posedness, not the
    gradient, limits the latter: without noise it reaches 0.003 rms)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "inverse_heat", ROOT / "examples" / "inverse_heat.py"
    )
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.main(noise=0.01)
    assert result["nu"] == pytest.approx(0.3, rel=1e-3)
    assert result["kappa_rms"] < 0.1


CHECKS: dict[str, Callable[[np.ndarray, dict, dict], None]] = {
    name: globals()[f"check_{name}"] for name in FAST
}


def test_every_example_has_a_fast_mode() -> None:
    assert {p.stem for p in EXAMPLES} == set(FAST)
    assert {p.stem for p in TRAIN_EXAMPLES} == {"fit_sine", "bilevel"}


def test_bilevel_script() -> None:
    """The three bilevel blocks as the script runs them: the ridge hypergradient equals the
    closed form, and the Stackelberg quantities are exact."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bilevel", ROOT / "examples" / "bilevel.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.main()
    assert result["ridge_rel_error"] < 1e-8
    assert result["q1"] == pytest.approx(45, abs=1e-8) and result["q2"] == pytest.approx(22.5)
    assert result["q0"] == pytest.approx(45, abs=1e-8)
    assert result["followers"] == pytest.approx(30, abs=1e-8)


@pytest.mark.slow
def test_fit_sine_script() -> None:
    """Both train blocks of fit_sine.dsl, as the script runs them: the MLP fits sin to 0.03
    (observed 0.026), and the DeepONet learns the antiderivative operator: 0.17 relative error
    on unseen functions and 0.02 on u = cos(2 pi x) (an untrained net is off by about 1)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fit_sine", ROOT / "examples" / "fit_sine.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.main()
    assert result["sine_error"] < 0.06
    assert result["operator_rel_error"] < 0.3
    assert result["cos_error"] < 0.05


def _cli_args(path: Path) -> list[str]:
    args = ["run", str(path), "--no-progress"]
    for key, value in FAST[path.stem].items():
        args += ["--set", f"{key}={value}"]
    return args


def _from_npz(path: Path) -> Result:
    with np.load(path) as data:
        t = data["t"]
        coords = {k[len("coord_") :]: data[k] for k in data.files if k.startswith("coord_")}
        fields = {k[len("field_") :]: data[k] for k in data.files if k.startswith("field_")}
    return t, coords, fields


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_python(path: Path) -> None:
    name = path.stem
    sol = getattr(ritz.load(str(path)), name).solve(**FAST[name])
    for field in sol:
        frames = () if sol.t is None else (len(sol.t),)
        assert sol[field].shape == (*frames, *sol.info["cells"])
        assert np.all(np.isfinite(sol[field])), field
    CHECKS[name](sol.t, sol.coords, dict(sol.fields))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_cli(path: Path, tmp_path: Path) -> None:
    out, png = tmp_path / "sol.npz", tmp_path / "sol.png"
    result = CliRunner().invoke(main, [*_cli_args(path), "--out", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert result.stdout.startswith(f"{path.stem}: ")
    assert f"wrote {out}" in result.stdout and f"wrote {png}" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t, coords, fields = _from_npz(out)
    steady = len(t) == 0
    assert steady or (t[0] == 0.0 and len(t) >= 2)
    assert list(coords) == ["x", "y", "z"][: len(coords)] and coords
    for field, data in fields.items():
        frames = () if steady else (len(t),)
        assert data.shape == (*frames, *(len(c) for c in coords.values())), field
        assert np.all(np.isfinite(data)), field
    CHECKS[path.stem](t, coords, fields)
    # the run leaves nothing but the two requested files behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sol.npz", "sol.png"]


def test_cli_and_python_agree(tmp_path: Path) -> None:
    path = ROOT / "examples" / "heat1d.dsl"
    out = tmp_path / "heat.npz"
    result = CliRunner().invoke(main, [*_cli_args(path), "--set", "nu=0.1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    t, coords, fields = _from_npz(out)
    sol = ritz.load(str(path)).heat1d.solve(nu=0.1, **FAST["heat1d"])
    np.testing.assert_array_equal(t, sol.t)
    np.testing.assert_array_equal(coords["x"], sol.coords["x"])
    np.testing.assert_array_equal(fields["u"], sol["u"])
