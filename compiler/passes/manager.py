"""Runs named, pure passes in order; verifies, times and optionally dumps after each one."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...dsl.diagnostics import InternalCompilerError, RitzError


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge-Kutta method as data: stage matrix ``a``, weights ``b``, nodes ``c``."""

    name: str
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    order: int

    @property
    def stages(self) -> int:
        return len(self.b)


@dataclass
class PassContext:
    """Everything a pass may read besides its input: options of the solve, typed."""

    problem: str
    order: int = 2
    dtype: str = "float64"
    tableau: Tableau | None = None
    scheme: str = ""
    source_name: str = ""
    source_text: str = ""
    verify: bool = True
    dumps: dict[str, str] = field(default_factory=dict)
    dump_after: Sequence[str] = ()
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Any, PassContext], Any]
    doc: str


def run_pipeline(
    pipeline: Sequence[Pass],
    value: Any,
    ctx: PassContext,
    verify: Callable[[Any], None] | None = None,
    dump: Callable[[Any], str] | None = None,
) -> Any:
    """Apply each pass in order; internal failures become InternalCompilerError naming the pass."""
    for p in pipeline:
        start = time.perf_counter()
        try:
            value = p.run(value, ctx)
            if ctx.verify and verify is not None:
                verify(value)
        except RitzError:
            raise
        except Exception as exc:  # our bug, not the user's
            raise InternalCompilerError(
                f"internal compiler error during pass '{p.name}': {type(exc).__name__}: {exc}",
                None,
                "please report this with the program that triggered it",
            ) from exc
        ctx.timings[p.name] = time.perf_counter() - start
        if dump is not None and (p.name in ctx.dump_after or "*" in ctx.dump_after):
            ctx.dumps[p.name] = dump(value)
    return value
