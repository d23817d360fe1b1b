"""The cost of a gradient: ``sol.vjp`` (the discrete adjoint, with checkpointing) against the
forward ``solve`` it differentiates, on the heat and Gray-Scott workloads.

The ratio to read is vjp / solve: reverse-mode theory puts a gradient at a small multiple of
the function (about 3 here: a forward sweep keeping checkpoints, a recomputation of every
segment, and the adjoint steps, each of which reads more arrays than a forward step). The
forward solves of this row are ritz's own, timed the same way (best of ``repeats``, compiled
beforehand).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .harness import Row


def _best(fn: Callable[[], object], repeats: int) -> float:
    fn()  # compiles
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _row(work: str, source: str, name: str, steps: int, dt: float, repeats: int) -> list[Row]:
    import ritz

    handle = ritz.compile(source)[name]
    t1 = steps * dt
    kw = {"dt": dt}
    sol_box: list = []

    def forward() -> None:
        sol_box[:] = [handle.solve(**kw)]

    forward_s = _best(forward, repeats)
    sol = sol_box[0]
    rng = np.random.default_rng(0)
    weights = {f: rng.standard_normal(sol[f].shape[1:]) for f in sol}
    grad_s = _best(lambda: sol.vjp(weights), repeats)
    points = float(np.prod(sol[next(iter(sol))].shape[1:])) * steps
    rows = [
        Row(work, "ritz solve", forward_s, points, note=f"{steps} steps to t = {t1:g}"),
        Row(
            work,
            "ritz sol.vjp",
            grad_s,
            points,
            note=f"gradient / solve = {grad_s / forward_s:.2f} (sqrt(N) checkpoints)",
            extra={"vjp_over_solve": grad_s / forward_s},
        ),
    ]
    # every stage state kept (no recomputation), where that fits in about 2 GB
    stage_states = len(sol.fields) * (_stages(handle) + 1) * steps
    if stage_states * points / steps * 8 < 2e9:
        kept_s = _best(lambda: sol.vjp(weights, checkpoints=steps), repeats)
        rows.append(
            Row(
                work,
                "ritz sol.vjp, all kept",
                kept_s,
                points,
                note=f"gradient / solve = {kept_s / forward_s:.2f} (no recomputation)",
                extra={"vjp_over_solve": kept_s / forward_s},
            )
        )
    return rows


def _stages(handle) -> int:
    return int(handle.module().PLAN["meta"].get("stages", 1))


def run(heat, gray_scott, repeats: int, log: Callable[[str], None]) -> list[Row]:
    """Rows for the heat (Euler) and Gray-Scott (RK4) workloads, at half the suite's grid (the
    sweep keeps about 2 sqrt(steps) states)."""
    from dataclasses import replace

    heat = replace(heat, n=heat.n // 2)
    gray_scott = replace(gray_scott, n=gray_scott.n // 2)
    log("  adjoint: heat ...")
    heat_src = heat.source().replace("t in [0, 1]", f"t in [0, {heat.steps * heat.dt!r}]")
    rows = _row(f"adjoint heat {heat.n}^2", heat_src, "heat2d", heat.steps, heat.dt, repeats)
    log("  adjoint: gray_scott ...")
    gs = gray_scott
    gs_src = gs.source().replace("t in [0, 1000]", f"t in [0, {gs.steps * gs.dt!r}]")
    rows += _row(f"adjoint gray_scott {gs.n}^2", gs_src, "gray_scott", gs.steps, gs.dt, repeats)
    return rows
