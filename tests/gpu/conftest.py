"""GPU tests run twice where they can: on a real device (marked ``gpu``, skipped with the reason
where CuPy or a CUDA device is missing) and on the CPU emulator of ``emulator.py``, which runs
the generated CUDA kernels as C++ (skipped only where no C++ compiler is found)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import pytest


def _load_emulator() -> ModuleType:
    name = "ritz_tests_cuda_emulator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("emulator.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


emulator = _load_emulator()


@lru_cache(maxsize=1)
def gpu_missing() -> str | None:
    """Why GPU tests cannot run here, or None when CuPy sees a device."""
    try:
        import cupy
    except Exception as exc:  # not installed, or a wheel for another CUDA version
        return f"CuPy is not importable ({type(exc).__name__}: {exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy finds no CUDA device ({type(exc).__name__}: {exc})"
    return None if count > 0 else "CuPy finds no CUDA device"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = gpu_missing()
    if reason is None:
        return
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def emulated_device(cache_dir: Path) -> ModuleType:
    """One emulated device per test run (its compiled kernels are reused across tests)."""
    if emulator.CXX is None:
        pytest.skip("no C++ compiler on PATH: the CUDA emulator cannot build kernels")
    return emulator.EmulatedCupy(cache_dir / "cuda-emulator")


@pytest.fixture
def emulated(emulated_device: ModuleType) -> Iterator[ModuleType]:
    """The emulator, installed as ``cupy`` for one test, with fresh counters."""
    emulated_device.capture_fails = emulated_device.nvrtc_fails = False
    emulated_device.reset_counters()
    with emulator.install(emulated_device):
        yield emulated_device


@pytest.fixture(params=["emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> ModuleType | None:
    """The CuPy the test runs on: the emulator (installed as ``cupy`` for the test), or the real
    one (None)."""
    return request.getfixturevalue("emulated") if request.param == "emulated" else None
