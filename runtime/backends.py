"""Runtime adapters per backend: how to allocate, copy to the host and load a module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..dsl.diagnostics import RuntimeInputError
from .loader import import_path


class NumbaBackend:
    name = "numba"

    def zeros(self, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def to_host(self, array: Any) -> np.ndarray:
        return array

    def from_host(self, array: np.ndarray) -> np.ndarray:
        return array

    def synchronize(self) -> None:
        return None

    def load_module(self, path: Path, name: str) -> Any:
        return import_path(path, name)


def get_backend(name: str) -> Any:
    """The adapter for ``name``; fails with a diagnostic when the backend cannot run here."""
    if name == "numba":
        return NumbaBackend()
    if name == "cupy":
        from .gpu import CupyBackend

        return CupyBackend.available()
    raise RuntimeInputError(f"unknown backend '{name}'", hint="use 'numba' or 'cupy'", code="R506")
