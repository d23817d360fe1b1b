"""The command line on the cupy backend, on the CUDA emulator and (where CuPy sees one) a GPU:
``run`` with progress, outputs every interval, .npz and plot; a steady ``run``; and a module that
``build --backend cupy`` wrote, solving without ritz and keeping its cubin beside itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from ritz.runtime.cli import main
from ritz.runtime.loader import import_path

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _run(tmp_path: Path, example: str, backend: str, *sets: str) -> dict[str, np.ndarray]:
    out = tmp_path / f"{example}_{backend}.npz"
    args = ["run", ROOT / "examples" / f"{example}.dsl", "--backend", backend, "--out", out]
    if backend == "cupy":
        args += ["--plot", tmp_path / f"{example}.png"]
    for item in sets:
        args += ["--set", item]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        return {k.removeprefix("field_"): data[k] for k in data.files}


def test_run_gray_scott_with_outputs_matches_numba(tmp_path: Path, device) -> None:
    sets = ("cells=[37, 41]", "every=250", "dt=5.0")
    got = _run(tmp_path, "gray_scott", "cupy", *sets)
    want = _run(tmp_path, "gray_scott", "numba", *sets)
    assert got.keys() == want.keys()
    assert got["u"].shape == (5, 37, 41)  # t = 0, 250, ..., 1000: every output came back
    np.testing.assert_array_equal(got["t"], want["t"])
    for key in ("u", "v"):
        # 200 RK4 steps: rounding differences (FMA on a GPU) grow, but stay far below 1e-10
        scale = np.abs(want[key]).max()
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-10 * scale)
    assert (tmp_path / "gray_scott.png").stat().st_size > 0


def test_run_steady_poisson_matches_numba(tmp_path: Path, device) -> None:
    got = _run(tmp_path, "poisson", "cupy", "cells=24")
    want = _run(tmp_path, "poisson", "numba", "cells=24")
    np.testing.assert_allclose(got["u"], want["u"], rtol=0, atol=1e-10 * np.abs(want["u"]).max())


def test_built_module_solves_and_keeps_its_cubin(tmp_path: Path, device) -> None:
    outdir = tmp_path / "built"
    for backend in ("cupy", "numba"):
        result = invoke(
            "build", ROOT / "examples" / "heat1d.dsl", "--backend", backend, "-o", outdir / backend
        )
        assert result.exit_code == 0, result.output
    assert (outdir / "cupy" / "heat1d.cu").is_file()
    args = ({"nu": 0.05}, [(0.0, 1.0)], [300], 0.0, 0.01, 2e-5)
    mods = [import_path(outdir / b / "heat1d.py", f"ritz_gen_built_{b}") for b in ("cupy", "numba")]
    got, want = (m.solve(*args) for m in mods)
    np.testing.assert_allclose(got["u"], want["u"], rtol=0, atol=1e-12)
    assert len(list((outdir / "cupy").glob("heat1d.*.cubin"))) == 1
