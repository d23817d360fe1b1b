"""Without CuPy (or a device) the cupy backend fails at once with a ritz diagnostic, never a CuPy
traceback; showing and generating CUDA source still works."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

import ritz
from ritz.dsl.diagnostics import RitzError
from ritz.runtime.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "examples" / "heat1d.dsl"

no_cupy = pytest.mark.skipif(
    importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here"
)


@no_cupy
def test_solve_raises_a_ritz_error() -> None:
    with pytest.raises(RitzError) as info:
        ritz.load(str(HEAT), backend="cupy").heat1d.solve(cells=16)
    assert info.value.code in ("R530", "R531")
    assert "pip install" in (info.value.hint or "")


@no_cupy
def test_cli_run_prints_a_diagnostic_and_exits_1() -> None:
    result = CliRunner().invoke(main, ["run", "--backend", "cupy", "--no-progress", str(HEAT)])
    assert result.exit_code == 1
    assert "error[R530]" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, RitzError)  # rendered, not raised


def test_cli_show_prints_cuda_with_dsl_lines() -> None:
    result = CliRunner().invoke(main, ["show", "--code", "--backend", "cupy", str(HEAT)])
    assert result.exit_code == 0, result.output
    assert 'extern "C" __global__ void stage1(' in result.output
    assert "// heat1d.dsl:8  dt(u) = nu * diff(u, x, 2)" in result.output
    assert "PLAN = {" in result.output and "def advance(*args):" in result.output
