"""What every implementation of a workload provides, and how it is timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Unavailable(Exception):
    """An implementation cannot run here (a peer is not installed, ritz is not built yet)."""


@dataclass
class Impl:
    """One implementation: fresh state, the timed run, and the interior fields afterwards."""

    name: str
    setup: Callable[[], Any]
    run: Callable[[Any, int], Any]  # returns the state after the steps
    fields: Callable[[Any], dict[str, np.ndarray]]
    note: str = ""


@dataclass
class Row:
    """One line of the report."""

    work: str
    impl: str
    seconds: float | None = None
    points: float = 0.0  # grid-point updates (or elements) in the timed run
    bytes: float = 0.0  # minimum memory traffic of the timed run
    ratio: float | None = None  # this row's time / ritz's time: > 1 means ritz is faster
    rel_diff: float | None = None  # max |this - reference| / max |reference| over all fields
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mpts(self) -> float | None:
        return self.points / self.seconds / 1e6 if self.seconds else None

    @property
    def gbs(self) -> float | None:
        return self.bytes / self.seconds / 1e9 if self.seconds else None


def best_time(impl: Impl, steps: int, repeats: int) -> tuple[float, Any]:
    """Best-of-``repeats`` wall time of ``steps`` steps from a fresh state, after a warm-up step.

    The warm-up run triggers JIT/C compilation, so compile time is never in the timed run.
    Returns the best time and the state of the last timed run (for the agreement check).
    """
    impl.run(impl.setup(), 1)
    best, state = float("inf"), None
    for _ in range(repeats):
        state = impl.setup()
        t0 = time.perf_counter()
        state = impl.run(state, steps)
        best = min(best, time.perf_counter() - t0)
    return best, state


def rel_diff(a: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    """Largest field-wise max |a - ref| / max |ref|."""
    worst = 0.0
    for name, r in ref.items():
        r = np.asarray(r, dtype=np.float64)
        d = np.max(np.abs(np.asarray(a[name], dtype=np.float64) - r))
        worst = max(worst, float(d / max(np.max(np.abs(r)), 1e-300)))
    return worst


def compare(
    work: str,
    impls: list[Impl],
    skipped: list[Row],
    steps: int,
    repeats: int,
    points_per_step: float,
    bytes_per_step: float,
    log: Callable[[str], None] = print,
) -> list[Row]:
    """Time every implementation of one workload, then fill in ratios to ritz and agreement."""
    rows, results = [], {}
    for impl in impls:
        log(f"  {work}: {impl.name} ...")
        try:
            t, state = best_time(impl, steps, repeats)
            results[impl.name] = impl.fields(state)
        except Exception as exc:  # a peer failing must not stop the others
            rows.append(Row(work, impl.name, note=f"failed: {type(exc).__name__}: {exc}"))
            continue
        rows.append(
            Row(work, impl.name, t, points_per_step * steps, bytes_per_step * steps, note=impl.note)
        )
    ritz = next((r for r in rows if r.impl == "ritz" and r.seconds), None)
    ref_name = "ritz" if ritz else next(iter(results), None)
    for row in rows:
        if row.seconds and ritz:
            row.ratio = row.seconds / ritz.seconds
        if row.impl in results and ref_name:
            row.rel_diff = rel_diff(results[row.impl], results[ref_name])
            row.extra["reference"] = ref_name
    return rows + skipped
