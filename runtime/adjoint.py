"""``Solution.vjp``: the discrete adjoint of the solve that made a solution.

The gradient is that of the computed numbers: the transpose of each compiled step (explicit
Runge-Kutta, cn, imex) applied from the last step to the first, or for a steady problem one
solve with the transposed Jacobian. This module checks the request (cotangents, parameters),
replays the forward solve's step schedule and hands over to the reverse sweeps of
``drivers/reverse.py``; the adjoint kernels come from the compiler (``compile_pde(...,
adjoint=True)``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dsl.diagnostics import RuntimeInputError, did_you_mean
from .drivers.reverse import AdjointRun, ImplicitAdjointRun, steady_vjp
from .inputs import real_array

if TYPE_CHECKING:
    from .api import PdeHandle
    from .results import Solution


@dataclass
class Gradient:
    """``params[name]``: d loss / d parameter; ``initial[field]``: d loss / d initial state."""

    params: dict[str, float]
    initial: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Gradient(params={self.params}, initial fields {list(self.initial)})"


def step_schedule(times: np.ndarray, dt: float) -> tuple[list[tuple[float, float]], dict[int, int]]:
    """The steps ``(t_n, dt_n)`` the forward run took between ``times`` (as ``run`` takes them),
    and for each output time after the first, the index of the step that ends there."""
    steps: list[tuple[float, float]] = []
    ends: dict[int, int] = {}
    for k, (ta, tb) in enumerate(itertools.pairwise(times), start=1):
        n = max(1, math.ceil((tb - ta) / dt - 1e-9))
        h = (tb - ta) / n
        steps += [(ta + j * h, h) for j in range(n)]
        ends[len(steps) - 1] = k
    return steps, ends


def _cotangents(
    sol: Solution, given: dict[str, Any], fields: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Cotangents per field as [len(t), *cells] (zeros where none is given)."""
    assert sol.t is not None
    out = {}
    known = {**sol.fields, **sol.velocities}  # dt(u) of a second-order equation counts
    for name, value in given.items():
        if name not in known:
            raise RuntimeInputError(
                f"vjp got a cotangent for '{name}', which is not a field of the solution",
                hint=f"fields: {', '.join(known)}",
                code="R513",
            )
        array = real_array(value, f"the cotangent of '{name}'", "R513")
        frames = known[name].shape
        if array.shape == frames[1:]:
            full = np.zeros(frames)
            full[-1] = array
            array = full
        elif array.shape != frames:
            raise RuntimeInputError(
                f"the cotangent of '{name}' has shape {array.shape}; it must match the final "
                f"field {frames[1:]} or every output {frames}",
                hint="give d loss / d u at the final time, or one frame per output time",
                code="R513",
            )
        out[name] = array
    return out


def _param_names(params: Any) -> list[str]:
    """``params=`` of vjp: a list (any iterable) of parameter names, or one name."""
    if isinstance(params, str):
        return [params]
    try:
        return list(params)
    except TypeError:
        raise RuntimeInputError(
            f"params takes a list of parameter names, got {params!r}",
            hint="e.g. params=['nu'] (or one name, params='nu')",
            code="R513",
        ) from None


def _checkpoints(value: Any) -> int | None:
    """``checkpoints=`` of vjp: None (the default) or a whole number >= 1 (NumPy integers
    count; 2.0 does not, as for every whole-number option)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise RuntimeInputError(
            f"checkpoints must be a whole number >= 1, got {value!r}",
            hint="the number of states the forward sweep keeps, e.g. checkpoints=10",
            code="R513",
        )
    return int(value)


def pde_vjp(
    handle: PdeHandle,
    kwargs: dict[str, Any],
    sol: Solution,
    cotangents: dict[str, Any],
    params: list[str] | None = None,
    checkpoints: int | None = None,
) -> Gradient:
    """The discrete adjoint of the solve that made ``sol`` (see ``Solution.vjp``)."""
    from ..compiler.driver import IMPLICIT_SCHEMES

    problem = handle.problem
    kwargs = dict(kwargs)
    overridden = kwargs.pop("initial", None) or {}
    values, merged, fd = handle.resolve(kwargs)
    if not isinstance(cotangents, Mapping):
        raise RuntimeInputError(
            f"vjp takes a dict field -> cotangent, got {type(cotangents).__name__}",
            hint="e.g. sol.vjp({'u': dloss_du})",
            code="R513",
        )
    names = [p.name for p in problem.params]
    wanted = names if params is None else _param_names(params)
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise RuntimeInputError(
            f"'{unknown[0]}' is not a parameter of '{problem.name}'",
            hint=did_you_mean(str(unknown[0]), names)
            or f"parameters: {', '.join(names) or 'none'}",
            code="R513",
        )
    checkpoints = _checkpoints(checkpoints)
    # checked before anything is compiled (a steady problem's, by its Jacobian's fields)
    cts = _cotangents(sol, cotangents, tuple(sol.fields)) if problem.time is not None else {}
    module = handle.adjoint_module(fd)
    fields = tuple(module.PLAN["fields"])
    if problem.time is None:
        grads, info = steady_vjp(handle, module, merged, values, sol, cotangents)
        return _finite(Gradient({p: grads.get(p, 0.0) for p in wanted}, {}, info))
    # a second-order equation's velocity is a field of the reduction: dt(u) -> its name
    from .api import velocity_names

    speeds = velocity_names(problem, list(fields))
    cts = {speeds.get(name, name): value for name, value in cts.items()}
    # a field whose initial value was given as an array does not depend on the parameters
    drop = tuple(speeds.get(f, f) for f in overridden if speeds.get(f, f) in fields)
    sim = handle.simulation(module, merged, values, float(sol.info["dt"]))
    handle.apply_initial(sim, overridden)
    assert sol.t is not None
    steps, ends = step_schedule(sol.t, float(sol.info["dt"]))
    if fd.scheme in IMPLICIT_SCHEMES:
        tol, maxiter = handle._newton_options(merged)
        implicit = ImplicitAdjointRun(module, sim, tol, maxiter)
        initial, grads, kept = implicit.run(steps, ends, cts, fields, drop)
    else:
        runner = AdjointRun(module, sim)
        initial, grads, kept = runner.run(steps, ends, cts, fields, checkpoints, drop)
    # a second-order equation's velocity field is the gradient of its `initial dt(u)`
    keys = {f: name for name, f in speeds.items()}
    return _finite(
        Gradient(
            params={p: grads.get(p, 0.0) for p in wanted},
            initial={keys.get(f, f): v for f, v in initial.items()},
            info={"steps": len(steps), "checkpoints": kept, "backend": handle.backend_name},
        )
    )


def _finite(grad: Gradient) -> Gradient:
    """R540 where the adjoint overflowed (cotangents near the largest float, or a solve whose
    sensitivities grow past it): a NaN gradient would pass silently into an optimiser."""
    bad = [p for p, v in grad.params.items() if not np.isfinite(v)]
    bad += [f"initial {f}" for f, v in grad.initial.items() if not np.all(np.isfinite(v))]
    if bad:
        raise RuntimeInputError(
            f"the gradient is not finite ({', '.join(bad)}): the adjoint sweep overflowed",
            hint="scale the loss (its cotangents) down; the gradient is linear in them",
            code="R540",
        )
    return grad
