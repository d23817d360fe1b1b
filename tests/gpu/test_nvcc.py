"""Generated CUDA compiles with nvcc, warnings as errors, for every example in both dtypes and
for every golden CUDA file. Needs nvcc only (no GPU); skips with the reason where it is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ritz.compiler.backends.cupy_emit import cuda_source
from ritz.compiler.driver import VERSION, FdOptions, compile_pde
from ritz.dsl import load_file, load_text
from ritz.dsl.ast import PdeProblem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.dsl"))
GOLDEN = sorted((ROOT / "tests" / "golden" / "expected").glob("*.cu"))
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH: CUDA not compiled")
# sm_90 (H100) is the target the benchmarks run on; -ptx stops before any GPU is needed
FLAGS = ("-ptx", "-arch=sm_90", "-std=c++17", "--Werror", "all-warnings")


def _nvcc(source: str, tmp_path: Path, stem: str) -> None:
    cu = tmp_path / f"{stem}.cu"
    cu.write_text(source)
    proc = subprocess.run(
        [str(NVCC), *FLAGS, str(cu), "-o", str(tmp_path / f"{stem}.ptx")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # any output at all is a warning nvcc did not turn into an error: fail on it too
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr + proc.stdout


def _problems(path: Path) -> list[PdeProblem]:
    checked = load_file(path)
    return [b for b in checked.problems.values() if isinstance(b, PdeProblem)]


@needs_nvcc
@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_compiles_without_warnings(
    example: Path, dtype: str, order: int, tmp_path: Path
) -> None:
    for problem in _problems(example):
        for adjoint in (False, True):  # the solve's group, and that of its vjp (gathers, folds)
            art = compile_pde(problem, FdOptions(order=order, dtype=dtype), "cupy", adjoint=adjoint)
            source = cuda_source(art.group, VERSION)
            assert 'extern "C" __global__' in source
            _nvcc(source, tmp_path, f"{problem.name}_{dtype}_{order}_{adjoint}")


@needs_nvcc
@pytest.mark.skipif(not GOLDEN, reason="no golden CUDA files under tests/golden/expected")
@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.name)
def test_golden_cuda_compiles_without_warnings(golden: Path, tmp_path: Path) -> None:
    _nvcc(golden.read_text(), tmp_path, golden.stem.replace(".", "_"))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_float32_source_has_no_double_arithmetic(dtype: str) -> None:
    """float32 programs compute in float: no double literal or function reaches a kernel body
    (the clock, kept in double on purpose, is the one exception)."""
    problem = _problems(ROOT / "examples" / "gray_scott.dsl")[0]
    art = compile_pde(problem, FdOptions(dtype=dtype), "cupy")
    source = cuda_source(art.group, VERSION)
    body = [
        line
        for line in source.splitlines()
        if line.startswith("        ") and "clock" not in line and "tc *" not in line
    ]
    assert body
    real = "float" if dtype == "float32" else "double"
    other = "double" if dtype == "float32" else "float"
    assert all(f"const {other} " not in line for line in body)
    assert any(f"const {real} " in line for line in body)
    if dtype == "float32":
        assert "expf(" in source and " exp(" not in source


SWITCHES = """
pde switched {
    space x in [0, 1]
    time t in [0, 0.01]
    field u
    param k = 1.0
    dt(u) = k * (x < 0.4 or u >= 1) * diff(u, x, 2) + (not (u == 0)) * diff(abs(u) * u, x, 2)
    boundary u = (t > 0.001) + t % 0.002 at x = 0
    boundary diff(u, x) = 0 at x = 1
    initial u = (x != 0.5) + (x - 0.25) % -0.3
}
"""


@needs_nvcc
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_comparisons_and_steps_compile(dtype: str, tmp_path: Path) -> None:
    """Comparisons are ``?:`` selects of the program's type, steps of abs/max derivatives too."""
    problem = next(iter(load_text(SWITCHES).problems.values()))
    assert isinstance(problem, PdeProblem)
    for adjoint in (False, True):
        art = compile_pde(problem, FdOptions(dtype=dtype), "cupy", adjoint=adjoint)
        source = cuda_source(art.group, VERSION)
        one = "1.0f" if dtype == "float32" else "1.0"
        assert f"? {one} : " in source and "fmod" in source
        _nvcc(source, tmp_path, f"switched_{dtype}_{adjoint}")


BOUNDARY_PARAMS = """
pde bp {
    space x in [0, 1]
    space y in [0, 1]
    time t in [0, 0.01]
    field u
    param g = 0.3, a = 2.0
    dt(u) = lap(u)
    boundary u = g * y + t at x = 0
    boundary diff(u, x) + a * (1 + y) * u = g at x = 1
    boundary diff(u, y) = 0 at y = 0, y = 1
    initial u = x * y
}
"""


@needs_nvcc
@pytest.mark.parametrize("scheme", ["rk4", "cn", ""])
def test_boundary_parameter_folds_compile(scheme: str, tmp_path: Path) -> None:
    """The fold kernels that write the cotangents of boundary conditions' parameters (with
    data and a Robin coefficient varying along the face) compile, explicit, implicit, steady."""
    text = BOUNDARY_PARAMS
    if not scheme:
        for old, new in (
            ("time t in [0, 0.01]", ""),
            ("dt(u)", "0"),
            (" + t at", " at"),
            ("initial u = x * y", ""),
        ):
            text = text.replace(old, new)
    problem = next(iter(load_text(text).problems.values()))
    assert isinstance(problem, PdeProblem)
    art = compile_pde(problem, FdOptions(scheme=scheme or "rk4"), "cupy", adjoint=True)
    source = cuda_source(art.group, VERSION)
    assert "gp_g" in source and "fold" in source
    _nvcc(source, tmp_path, f"boundary_params_{scheme or 'steady'}")


@needs_nvcc
def test_periodic_image_of_face_data_compiles(tmp_path: Path) -> None:
    """Face data of a periodic coordinate wrap by Python's remainder (a select around fmod)."""
    text = BOUNDARY_PARAMS.replace("space y in [0, 1]", "space y in [0, 1] periodic")
    text = text.replace("boundary diff(u, y) = 0 at y = 0, y = 1\n", "")
    problem = next(iter(load_text(text).problems.values()))
    assert isinstance(problem, PdeProblem)
    for adjoint in (False, True):
        art = compile_pde(problem, FdOptions(), "cupy", adjoint=adjoint)
        source = cuda_source(art.group, VERSION)
        assert "fmod(" in source
        _nvcc(source, tmp_path, f"periodic_image_{adjoint}")
