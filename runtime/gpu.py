"""The CuPy runtime adapter: device allocation, counted copies to the host, module loading.

CuPy is imported here and in the generated modules only, and only when the cupy backend is asked
for; without it (or without a device) ``CupyBackend.available`` raises a ritz diagnostic that
says what is missing, never a CuPy traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..dsl.diagnostics import RuntimeInputError
from .loader import import_path

INSTALL_HINT = (
    'install CuPy for your CUDA version: pip install -e ".[gpu]" (cupy-cuda12x) or '
    'pip install -e ".[gpu-cuda13]" (cupy-cuda13x); or run with --backend numba'
)


def _import_cupy() -> Any:
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeInputError(
            f"the cupy backend needs CuPy, which is not installed ({exc})",
            hint=INSTALL_HINT,
            code="R530",
        ) from None
    except Exception as exc:  # a broken install (wrong CUDA wheel, missing libraries)
        raise RuntimeInputError(
            f"CuPy is installed but cannot be imported: {type(exc).__name__}: {exc}",
            hint=INSTALL_HINT,
            code="R530",
        ) from None
    return cupy


def _device_count(cupy: Any) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # no driver, or the driver is older than CuPy's CUDA
        raise RuntimeInputError(
            f"CuPy finds no usable CUDA device: {type(exc).__name__}: {exc}",
            hint="run on a machine with an NVIDIA GPU and driver, or use --backend numba",
            code="R531",
        ) from None


class CupyBackend:
    """Arrays live on the device for the whole solve; ``to_host`` is the only way back, and it
    counts its copies in ``host_copies`` (tests check that a solve copies only its outputs)."""

    name = "cupy"

    def __init__(self, cupy: Any) -> None:
        self.cupy = cupy
        self.host_copies = 0

    @classmethod
    def available(cls) -> CupyBackend:
        """An adapter for the current device, or a RuntimeInputError (R530: no CuPy, R531: no
        CUDA device) saying what is missing."""
        cupy = _import_cupy()
        if _device_count(cupy) < 1:
            raise RuntimeInputError(
                "CuPy finds no CUDA device",
                hint="run on a machine with an NVIDIA GPU and driver, or use --backend numba",
                code="R531",
            )
        return cls(cupy)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Any:
        return self.cupy.zeros(shape, dtype=dtype)

    def to_host(self, array: Any) -> np.ndarray:
        self.host_copies += 1
        return self.cupy.asnumpy(array)

    def from_host(self, array: np.ndarray) -> Any:
        return self.cupy.asarray(array)

    def all_finite(self, array: Any) -> bool:
        """Whether every value is finite, reduced on the device (one scalar comes back, not
        the array: no host copy is counted)."""
        return bool(self.cupy.isfinite(array).all())

    def synchronize(self) -> None:
        self.cupy.cuda.Device().synchronize()

    def load_module(self, path: Path, name: str) -> Any:
        return import_path(path, name)
