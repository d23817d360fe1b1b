"""The CPU stencil comparisons: 2-D heat and Gray-Scott, every implementation in one run."""

from __future__ import annotations

from collections.abc import Callable

from . import peers_devito, peers_numba, peers_numpy, ritz_side
from .harness import Impl, Row, Unavailable, compare
from .workloads import GrayScott, Heat

PEERS = (
    ("ritz", ritz_side),
    ("numba (hand)", peers_numba),
    ("devito", peers_devito),
    ("numpy", peers_numpy),
)


def _impls(work: str, problem: str, case, log) -> tuple[list[Impl], list[Row]]:
    impls, skipped = [], []
    for label, module in PEERS:
        try:
            impls.append(getattr(module, problem)(case))
        except Unavailable as exc:
            log(f"  {work}: {label} skipped: {exc}")
            skipped.append(Row(work, label, note=f"skipped: {exc}"))
        except Exception as exc:  # e.g. Devito cannot find a C compiler
            log(f"  {work}: {label} failed to build: {exc}")
            skipped.append(Row(work, label, note=f"failed: {type(exc).__name__}: {exc}"))
    return impls, skipped


def heat(case: Heat, repeats: int, log: Callable[[str], None] = print) -> list[Row]:
    work = f"heat {case.n}^2 x{case.steps}"
    impls, skipped = _impls(work, "heat", case, log)
    n2 = float(case.n) ** 2
    return compare(work, impls, skipped, case.steps, repeats, n2, 2 * 8 * n2, log)


def gray_scott(case: GrayScott, repeats: int, log: Callable[[str], None] = print) -> list[Row]:
    work = f"gray-scott {case.n}^2 rk4 x{case.steps}"
    impls, skipped = _impls(work, "gray_scott", case, log)
    n2 = float(case.n) ** 2
    return compare(work, impls, skipped, case.steps, repeats, n2, 4 * 8 * n2, log)
