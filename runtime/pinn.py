"""``solve pinn(...)``: sample the point sets, train the network on the compiled loss, and return
a Solution whose values come from the network (``sol.at`` evaluates it anywhere)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..dsl import ast as A
from ..dsl.check.common import METHOD_OPTIONS, check_given
from ..dsl.diagnostics import RuntimeInputError
from .networks import _load, compiled_steps, init_weights, pack, unpack
from .optimizers import OPTION_NAMES, parse_optimizer, run_lbfgs
from .results import Solution

PINN_OPTIONS = (
    "points",
    "boundary_points",
    "initial_points",
    "steps",
    "seed",
    "dtype",
    "net",
    "optimizer",
    "every",
    "cells",
    *OPTION_NAMES,  # the optimizer's own options
)


class PinnSolution(Solution):
    """A pinn solution: fields sampled on a grid at the output times (for plots and ``sol[...]``),
    and ``at`` evaluates the trained network itself."""

    def __init__(self, *args: Any, network: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.network = network

    def at(self, t: Any = None, **points: Any) -> dict[str, np.ndarray]:
        """The network at points of the domain and times of the solved span, checked as
        ``Solution.at`` checks them (R511): the network was trained there only, and a periodic
        coordinate is wrapped into its period."""
        coords, shape = self._query(t, points)
        return self.network(np.stack(coords, axis=1), shape)

    def vjp(self, *args: Any, **kwargs: Any) -> Any:
        """Refused (R513): a trained network has no discrete adjoint of a solve."""
        raise RuntimeInputError(
            "a pinn solution has no vjp: it is a trained network, not a discrete solve that "
            "ritz can transpose",
            hint="solve with method='fd' for gradients of the solution with respect to the "
            "parameters and the initial state",
            code="R513",
        )


def _sample(
    rng: np.random.Generator,
    n: int,
    problem: A.PdeProblem,
    kind: str,
    axis: int | None,
    side: str | None,
) -> np.ndarray:
    """n points of a set: uniform in the box (and in time), on a face, or at t0."""
    cols = [rng.uniform(a.lo, a.hi, n) for a in problem.axes]
    if axis is not None:
        a = problem.axes[axis]
        cols[axis] = np.full(n, a.lo if side == "lo" else a.hi)
    if problem.time is not None:
        t0, t1 = problem.time.t0, problem.time.t1
        cols.append(np.full(n, t0) if kind == "initial" else rng.uniform(t0, t1, n))
    return np.stack(cols, axis=1)


def pinn_inputs(
    art: Any, problem: A.PdeProblem, merged: dict[str, Any], params: dict[str, float], dtype: str
) -> list[Any]:
    """The loss's inputs in call order: sampled point sets (seeded), the unit directions and
    selectors the derivatives read, and the parameter values."""
    lowered = art.lowered
    seed = int(merged.get("seed", 0))
    rng = np.random.default_rng(seed + 7)
    n = int(merged.get("points", 2000))
    nb = int(merged.get("boundary_points", max(64, n // 10)))
    n0 = int(merged.get("initial_points", max(64, n // 10)))
    d, nf = len(lowered.coords), len(problem.fields)
    arrays: dict[str, np.ndarray] = {}
    for name, ps in lowered.sets.items():
        if ps.partner is not None and f"pts:{ps.partner}" in arrays:
            other = arrays[f"pts:{ps.partner}"].copy()  # the same points on the opposite face
            a = problem.axes[ps.axis]
            other[:, ps.axis] = a.lo if ps.side == "lo" else a.hi
            arrays[f"pts:{name}"] = other
            continue
        count = {"interior": n, "initial": n0}.get(ps.kind, nb)
        arrays[f"pts:{name}"] = _sample(rng, count, problem, ps.kind, ps.axis, ps.side)
    inputs: dict[str, Any] = {}
    for name in art.entries["loss_and_grad"].inputs:
        if name.startswith("dir:"):
            _, s, j = name.split(":")
            m = np.zeros_like(arrays[f"pts:{s}"])
            m[:, int(j)] = 1.0
            inputs[name] = m
        elif name.startswith("pick:"):
            inputs[name] = np.eye(nf)[int(name.split(":")[1])]
        elif name.startswith("coord:"):
            inputs[name] = np.eye(d)[int(name.split(":")[1])]
        elif name in params:
            inputs[name] = np.asarray(params[name])
        else:
            inputs[name] = arrays[name]
    order = art.entries["loss_and_grad"].inputs
    return [
        np.ascontiguousarray(inputs[k], dtype=dtype)
        if np.ndim(inputs[k])
        else np.dtype(dtype).type(inputs[k])
        for k in order
    ]


def pinn_artifact(
    handle: Any, solve: A.SolveSpec, options: dict[str, Any]
) -> tuple[Any, dict[str, Any], str]:
    """The compiled (not loaded) training module of a pinn line with ``options`` given at run
    time (checked), the line's options with them applied, and the artifact's cache key."""
    from ..compiler.lower.pinn import lower_pinn
    from ..compiler.tensor_driver import compile_train

    problem = handle.problem
    unknown = [k for k in options if k not in PINN_OPTIONS]
    if unknown:
        raise RuntimeInputError(
            f"'{unknown[0]}' is not an option of solve pinn",
            hint=f"options: {', '.join(PINN_OPTIONS)}",
            code="R503",
        )
    if problem.time is None and "initial_points" in options:  # no t0 to put them at
        raise RuntimeInputError(
            f"'initial_points' is an option of time-dependent problems, and pde "
            f"'{problem.name}' is steady (it has no time line)",
            hint="leave it out: a steady pinn has interior and boundary points only",
            code="R503",
        )
    rules = {**METHOD_OPTIONS["fd"], **METHOD_OPTIONS["pinn"]}  # cells and every: the grid
    options = {k: check_given(rules, k, v, "solve pinn") for k, v in options.items()}
    merged = {**solve.options, **options}
    dtype = str(merged.get("dtype", "float32"))
    key = repr(("pinn", merged.get("net"), dtype))
    if key not in handle._artifacts:
        lowered = lower_pinn(problem, merged, handle.env, dtype)
        art = compile_train(
            lowered.loss, {"net": lowered.forward}, f"{problem.name}_pinn", handle.source_name, ()
        )
        art.lowered = lowered
        handle._artifacts[key] = art
    return handle._artifacts[key], merged, key


def solve_pinn(
    handle: Any,
    solve: A.SolveSpec,
    params: dict[str, float],
    options: dict[str, Any],
    progress: bool,
) -> PinnSolution:
    """Train the solve line's network on the PDE's residual and conditions (LANGUAGE.md §3)."""
    problem = handle.problem
    line = solve.options.get("optimizer")
    span = solve.option_spans.get("optimizer")
    opt = parse_optimizer(  # before compiling: a bad optimizer is reported at once
        A.Keyword("optimizer", line, span) if line is not None else None,
        options.get("optimizer"),  # a name given from Python or --set
        {k: v for k, v in options.items() if k in OPTION_NAMES},
    )
    art, merged, key = pinn_artifact(handle, solve, options)
    if key not in handle._modules:
        handle._modules[key] = _load(art, handle.backend_name, handle.cache_dir)
    mod = handle._modules[key]
    seed = int(merged.get("seed", 0))
    dtype = art.dtype
    data = pinn_inputs(art, problem, merged, params, dtype)
    steps = int(merged.get("steps", 2000))
    w = pack(init_weights(art.weights, seed, dtype), art)
    if opt.name == "lbfgs":
        w, history, info = run_lbfgs(mod, w, data, steps, opt)
    else:

        def no_rows(count: int) -> np.ndarray:  # every step sees every point
            return np.zeros((count, 0), dtype=np.int64)

        w, history = compiled_steps(mod, art, w, data, steps, no_rows, opt, progress)
        info = {"steps": steps}
    weights = unpack(w, art)
    info = {**info, "method": "pinn", "optimizer": opt.name}
    return _solution(handle, art, mod, weights, merged, history, info)


def _solution(
    handle: Any,
    art: Any,
    mod: Any,
    weights: dict[str, np.ndarray],
    merged: dict[str, Any],
    history: np.ndarray,
    info: dict[str, Any],
) -> PinnSolution:
    from .drivers.integrators import check_frames, output_times

    problem = handle.problem
    w = pack(weights, art)
    dtype = art.dtype

    def network(points: np.ndarray, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        y = mod.forward_net(w, np.ascontiguousarray(points, dtype=dtype))
        return {
            f: np.asarray(y[:, k], dtype=float).reshape(shape) for k, f in enumerate(problem.fields)
        }

    cells = merged.get("cells", 64)
    cells = [int(cells)] * len(problem.axes) if np.ndim(cells) == 0 else [int(c) for c in cells]
    coords = {
        a.name: a.lo + (np.arange(c) + 0.5) * (a.hi - a.lo) / c
        for a, c in zip(problem.axes, cells, strict=True)
    }
    mesh = np.meshgrid(*coords.values(), indexing="ij")
    t = None
    if problem.time is not None:
        every = float(merged["every"]) if merged.get("every") else None
        frame = int(np.prod(cells)) * len(problem.fields) * 8
        check_frames(problem.time.t0, problem.time.t1, every, frame)
        t = np.array(output_times(problem.time.t0, problem.time.t1, every))
        frames: dict[str, list[np.ndarray]] = {f: [] for f in problem.fields}
        for tk in t:
            pts = np.stack([*(m.ravel() for m in mesh), np.full(mesh[0].size, tk)], axis=1)
            for f, v in network(pts, mesh[0].shape).items():
                frames[f].append(v)
        fields = {f: np.stack(v) for f, v in frames.items()}
    else:
        pts = np.stack([m.ravel() for m in mesh], axis=1)
        fields = network(pts, mesh[0].shape)
    info = {**info, "loss_history": history, "terms": art.lowered.terms}
    return PinnSolution(
        problem.name,
        t,
        coords,
        fields,
        {a.name: a.periodic for a in problem.axes},
        {a.name: (a.lo, a.hi) for a in problem.axes},
        info,
        network=network,
    )


__all__ = ["PinnSolution", "solve_pinn"]
