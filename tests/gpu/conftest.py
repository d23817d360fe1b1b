"""Skip ``gpu``-marked tests, with the reason, where CuPy or a CUDA device is missing."""

from __future__ import annotations

from functools import lru_cache

import pytest


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
