"""Runtime adapters per backend: how to allocate, copy to the host and load a module, and how
many threads a grid of a given size runs on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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

    def all_finite(self, array: Any) -> bool:
        return bool(np.isfinite(array).all())

    def synchronize(self) -> None:
        return None

    def load_module(self, path: Path, name: str) -> Any:
        return import_path(path, name)

    #: below this many cells a stencil sweep is a few microseconds: one thread runs it, as
    #: waking the others costs more, and on a busy machine a parallel loop waits for a thread
    #: that is not scheduled (8 cells took 1000 times as long on two threads as on one)
    SERIAL_BELOW = 8192

    @contextlib.contextmanager
    def threads_for(self, cells: int) -> Iterator[None]:
        """Numba's parallel loops on one thread for a grid of fewer than SERIAL_BELOW cells."""
        if cells >= self.SERIAL_BELOW:
            yield
            return
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            yield
        finally:
            numba.set_num_threads(before)


def get_backend(name: str) -> Any:
    """The adapter for ``name``; fails with a diagnostic when the backend cannot run here."""
    if name == "numba":
        return NumbaBackend()
    if name == "cupy":
        from .gpu import CupyBackend

        return CupyBackend.available()
    raise RuntimeInputError(f"unknown backend '{name}'", hint="use 'numba' or 'cupy'", code="R506")


def threads_for(backend: str, cells: int) -> contextlib.AbstractContextManager[None]:
    """The thread setting for a grid of ``cells`` cells on the backend named ``backend`` (see
    NumbaBackend.threads_for; CuPy's kernels are launched the same way at any size)."""
    if backend == NumbaBackend.name:
        return NumbaBackend().threads_for(cells)
    return contextlib.nullcontext()
