"""Shared fixtures: one cache of generated kernels (and Numba's cache beside it) per test run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("RITZ_TEST_CACHE", ROOT / ".pytest_cache" / "ritz-kernels"))
os.environ.setdefault("RITZ_CACHE_DIR", str(CACHE))


def _share_the_cores() -> None:
    """Each of n test workers gets 1/n of the cores for Numba's and BLAS's threads.

    Numba's parallel regions spin-wait for their threads: two workers that each start a thread
    per core ran a parallel training loop ten times slower than one worker. Set here, before
    anything imports Numba or NumPy, because both read these at import.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)


_share_the_cores()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/expected from the current compiler",
    )


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
