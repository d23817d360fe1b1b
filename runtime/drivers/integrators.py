"""Time stepping: drives a compiled module's ``advance`` between output times.

The time loop itself is compiled (``advance`` runs many steps per call); this driver only splits
the run into output intervals and progress chunks, so Python is entered once per chunk.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...dsl.diagnostics import RuntimeInputError
from ..backends import threads_for
from ..inputs import memory_bytes, positive_whole, real_array

# the most steps one advance() takes: the compiled loop counts them in a 64-bit integer
MAX_STEPS = int(np.iinfo(np.int64).max)


def advance_inputs(nsteps: Any, dt: Any, default_dt: float) -> tuple[int, float]:
    """The ``nsteps`` and ``dt`` given to ``Simulation.advance``, checked (R538): a whole
    number of steps >= 0 (NumPy integers count; 2.5, "3", True and None do not) and a positive
    finite step, ``default_dt`` where none is given."""
    plain = nsteps.item() if isinstance(nsteps, np.generic) else nsteps
    zero = not isinstance(plain, bool) and isinstance(plain, int | float) and plain == 0
    steps = 0 if zero else positive_whole(nsteps)
    if steps is None or steps > MAX_STEPS:
        raise RuntimeInputError(
            f"the number of steps of advance() must be a whole number >= 0 (at most 2**63 - 1), "
            f"got {nsteps!r}",
            hint="give a whole number of steps, e.g. sim.advance(10) (NumPy integers count); "
            "advance in several calls for more",
            code="R538",
        )
    if dt is None:
        return steps, default_dt
    label = "the step dt of advance()"
    step = real_array(
        dt, label, "R538", hint="give a positive number, e.g. dt=1e-3", booleans=False
    )
    if step.ndim or not step > 0:
        raise RuntimeInputError(
            f"{label} must be one positive number, got {dt!r}",
            hint="give a positive number (a step backward in time is not a solve of the "
            "equation); leave it out for the simulation's own step",
            code="R538",
        )
    return steps, float(step)


def checked_advance(advance: Callable[..., None]) -> Callable[..., None]:
    """``advance`` with its inputs checked by ``advance_inputs`` (every scheme's, the implicit
    ones' included)."""

    @functools.wraps(advance)
    def checked(self: Any, nsteps: Any, dt: Any = None) -> None:
        steps, step = advance_inputs(nsteps, dt, self.dt)
        advance(self, steps, step)

    return checked


@dataclass(frozen=True)
class GridSpec:
    cells: tuple[int, ...]
    bounds: tuple[tuple[float, float], ...]

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple((hi - lo) / n for (lo, hi), n in zip(self.bounds, self.cells, strict=True))

    def centres(self, axis: int) -> np.ndarray:
        (lo, _), h, n = self.bounds[axis], self.spacing[axis], self.cells[axis]
        return lo + (np.arange(n) + 0.5) * h


class Simulation:
    """Buffers of one problem on one grid, its scalars, and the compiled step loop.

    ``backend`` is an adapter with ``zeros(shape, dtype)``, ``to_host(array)`` and
    ``synchronize()``; the module is the generated one (Numba) or its CuPy equivalent.
    """

    def __init__(
        self,
        module: Any,
        grid: GridSpec,
        params: dict[str, float],
        t0: float,
        dt: float,
        backend: Any,
    ) -> None:
        plan = module.PLAN
        self.module = module
        self.plan = plan
        self.grid = grid
        self.params = dict(params)
        self.t = float(t0)
        self.dt = float(dt)
        self.backend = backend
        halo = plan["halo"]
        shape = tuple(n + 2 * halo for n in grid.cells)
        self.buffers = [backend.zeros(shape, plan["dtype"]) for _ in plan["buffers"]]
        self.steps_taken = 0
        # "auto": time both loops on the first long advance (once per module and grid);
        # True/False force one
        self.tiling: bool | str = _LOOP_CHOICE.get(self._choice_key(), "auto")
        fields = [self.buffers[plan["buffers"].index(f)] for f in plan["fields"]]
        module.initial(*fields, *self.scalars(self.t, self.dt))

    def scalars(self, t: float, dt: float) -> tuple[Any, ...]:
        values: dict[str, float] = {f"p_{k}": float(v) for k, v in self.params.items()}
        values.update(t=t, dt=dt)
        for a, ((lo, _), h) in enumerate(zip(self.grid.bounds, self.grid.spacing, strict=True)):
            values[f"lo{a}"] = float(lo)
            values[f"h{a}"] = float(h)
        cast = np.float32 if self.plan["dtype"] == "float32" else float
        return tuple(cast(values[s]) for s in self.plan["scalars"])

    @checked_advance
    def advance(self, nsteps: int, dt: float | None = None) -> None:
        """Run ``nsteps`` compiled steps of size ``dt`` (default: the simulation's); a number
        of steps that is not a whole number >= 0, or a step that is not a positive finite
        number, is R538."""
        if not hasattr(self.module, "advance"):  # a steady problem's module has no step
            raise RuntimeInputError(
                "this problem is steady: it has no time steps to advance",
                hint="solve it with solve(); its Newton iteration runs the residual kernels",
                code="R503",
            )
        if nsteps <= 0:
            return
        dt = self.dt if dt is None else float(dt)
        # small grids on one thread, as solve() runs them (stepping by hand included)
        with threads_for(self.backend.name, int(np.prod(self.grid.cells))):
            if self.tiling == "auto" and self._tiling_possible(nsteps):
                nsteps -= self._choose_loop(dt)
            tiled = self.tiling is True and hasattr(self.module, "advance_tiled")
            self._run(nsteps, dt, tiled)

    def _run(self, nsteps: int, dt: float, tiled: bool) -> None:
        if nsteps <= 0:
            return
        scalars = list(self.scalars(self.t, dt))
        if tiled:
            tr, tc = TILES[len(self.grid.cells)]
            result = self.module.advance_tiled(
                *self.buffers, *scalars, nsteps, tr, tc, self._block()
            )
        else:
            result = self.module.advance(*self.buffers, *scalars, nsteps)
        self.buffers = list(result)
        self.t += nsteps * dt
        self.steps_taken += nsteps

    def _block(self) -> int:
        """Steps per pass over memory: about 8 stencil sweeps' worth of overlap."""
        return max(1, 8 // max(1, int(self.plan["meta"].get("stages", 1))))

    def _tiling_possible(self, nsteps: int) -> bool:
        return (
            hasattr(self.module, "advance_tiled")
            and len(self.grid.cells) in TILES
            and int(np.prod(self.grid.cells)) >= TILING_MIN_POINTS
            and nsteps >= _TRIAL_BLOCKS * self._block()
        )

    def _choose_loop(self, dt: float) -> int:
        """Time the plain and the tiled loop on real steps (after one warm-up call each, which
        also compiles) and keep the faster; returns how many steps that took. Both loops give
        the same numbers bit for bit, so the trial steps are simply part of the run."""
        kb = self._block()
        timings = {False: float("inf"), True: float("inf")}
        for tiled in (False, True):
            self._run(kb, dt, tiled)  # warm-up (and compilation of the tiled loop)
        for _ in range(_TRIAL_REPEATS):  # interleaved, so a burst of load hurts both alike
            for tiled in (False, True):
                self.backend.synchronize()
                start = time.perf_counter()
                self._run(2 * kb, dt, tiled)
                self.backend.synchronize()
                timings[tiled] = min(timings[tiled], time.perf_counter() - start)
        # blocking must win clearly: its redundant overlap work is a real cost when it loses
        self.tiling = timings[True] < 0.95 * timings[False]
        _LOOP_CHOICE[self._choice_key()] = self.tiling
        return _TRIAL_BLOCKS * kb

    def _choice_key(self) -> tuple:
        return (getattr(self.module, "__name__", id(self.module)), self.grid.cells)

    def interior(self, name: str) -> Any:
        if name not in self.plan["buffers"]:
            raise RuntimeInputError(
                f"the simulation has no field {name!r}",
                hint=f"fields: {', '.join(self.plan['fields'])}",
                code="R510",
            )
        halo = self.plan["halo"]
        array = self.buffers[self.plan["buffers"].index(name)]
        return array[tuple(slice(halo, halo + n) for n in self.grid.cells)]

    @property
    def state(self) -> dict[str, Any]:
        """Interior views of the current fields (device arrays on a GPU backend)."""
        return {f: self.interior(f) for f in self.plan["fields"]}

    def snapshot(self, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
        return {f: np.array(self.backend.to_host(self.interior(f))) for f in fields}


# tile sizes (cells along the first two axes) by dimension: local buffers of ~256 KiB each
TILES = {2: (128, 512), 3: (16, 32)}
TILING_MIN_POINTS = 1 << 17
_LOOP_CHOICE: dict[tuple, bool] = {}  # (generated module, cells) -> tiled loop is faster
_TRIAL_REPEATS = 3
# blocks of steps the trial takes: per loop one warm-up block, then repeats of two blocks
_TRIAL_BLOCKS = 2 * (1 + 2 * _TRIAL_REPEATS)


def frame_count(t0: float, t1: float, every: float | None) -> int:
    """How many output times ``output_times`` makes, without making them."""
    if every is None or every <= 0 or every >= t1 - t0:
        return 2
    return math.floor((t1 - t0) / every + 1e-9) + 2


def check_frames(
    t0: float, t1: float, every: float | None, frame_bytes: int, span: Any = None
) -> None:
    """R538 where ``every`` asks for more snapshots than half the machine's memory holds: a
    solve would otherwise run until the operating system kills it."""
    frames = frame_count(t0, t1, every)
    if frames * frame_bytes > memory_bytes() // 2:
        raise RuntimeInputError(
            f"every = {every!r} keeps {frames} snapshots of {frame_bytes / 2**20:.3g} MiB "
            f"({frames * frame_bytes / 2**30:.3g} GiB), more than half of this machine's memory",
            hint=f"give a larger every (the solve runs from t = {t0:g} to {t1:g})",
            code="R538",
            span=span,
        )


def output_times(t0: float, t1: float, every: float | None) -> list[float]:
    """t0, t0 + every, ..., and t1 (t1 always included; no output closer than 1e-9 to it)."""
    if every is None or every <= 0 or every >= t1 - t0:
        return [t0, t1]
    count = math.floor((t1 - t0) / every + 1e-9)
    times = [t0 + k * every for k in range(count + 1)]
    if t1 - times[-1] > 1e-9 * max(1.0, abs(t1)):
        times.append(t1)
    else:
        times[-1] = t1
    return times


def run(
    sim: Simulation,
    times: list[float],
    fields: tuple[str, ...],
    progress: Callable[[int], object] | None = None,
    chunk_seconds: float = 0.5,
) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Integrate through ``times``, keeping a snapshot of ``fields`` at each; returns
    (times, {field: [len(times), *cells]}, total steps). Steps within an interval are equal and
    no longer than the simulation's dt."""
    snaps: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    first = sim.snapshot(fields)
    for f in fields:
        snaps[f].append(first[f])
    total = 0
    for ta, tb in itertools.pairwise(times):
        n = max(1, math.ceil((tb - ta) / sim.dt - 1e-9))
        dt = (tb - ta) / n
        sim.t = ta
        done = 0
        chunk = n if progress is None else max(1, min(n, 64))
        while done < n:
            take = min(chunk, n - done)
            start = time.perf_counter()
            try:
                sim.advance(take, dt)
            except ZeroDivisionError:  # compiled code divides as Python does: it raises
                raise RuntimeInputError(
                    f"the solve divided by zero between t = {ta + done * dt:.6g} and "
                    f"{ta + (done + take) * dt:.6g}",
                    hint="a coefficient or a boundary condition of the problem is singular "
                    "there (e.g. a Robin condition whose closure has a pole at this spacing); "
                    "refine the grid, or check the data",
                    code="R540",
                ) from None
            sim.backend.synchronize()
            elapsed = time.perf_counter() - start
            done += take
            if progress is not None:
                progress(take)
                if elapsed > 0:  # aim for about chunk_seconds between progress updates
                    chunk = max(1, int(take * chunk_seconds / elapsed))
        sim.t = tb
        total += n
        snap = sim.snapshot(fields)
        for f in fields:
            if not _sane(snap[f]):
                finite = bool(np.all(np.isfinite(snap[f])))
                raise RuntimeInputError(
                    f"field '{f}' blew up (non-finite or beyond 1e150) between t = {ta:.6g} "
                    f"and {tb:.6g}",
                    hint=(_FIRST_INTERVAL if not finite and ta == times[0] else "")
                    + "reduce dt (dt = auto picks a stable step for the initial state); "
                    "if the problem has transport and diffusion, refine the grid where "
                    "transport dominates: centred differences need a cell Peclet number "
                    "|velocity| * h / diffusivity below about 2; if the solution itself grows "
                    "without bound (a blow-up of the equation), end the run earlier",
                    code="R540",
                )
            snaps[f].append(snap[f])
    return np.array(times), {f: np.stack(v) for f, v in snaps.items()}, total


_FIRST_INTERVAL = (
    "a right-hand side that is not finite at the initial state (a division by zero or a log "
    "of a negative number at a grid point) makes it so from the first step: check the "
    "equation there; otherwise "
)


def _sane(values: np.ndarray) -> bool:
    """Finite and below 1e150: past that an explicit scheme has almost surely gone unstable."""
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(values)) and np.all(np.abs(values) < 1e150))


def count_steps(times: list[float], dt: float) -> int:
    return sum(max(1, math.ceil((tb - ta) / dt - 1e-9)) for ta, tb in itertools.pairwise(times))
