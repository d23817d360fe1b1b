"""Python embedding: ``ritz.load(path)`` -> a module of problems you can solve and inspect."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..dsl.ast import CheckedModule, Network, PdeProblem, SolveSpec, Train
from ..dsl.check.common import METHOD_OPTIONS, check_given, param_value
from ..dsl.diagnostics import RuntimeInputError, UnsupportedError, did_you_mean
from .backends import get_backend, threads_for
from .bilevel import BilevelHandle
from .closures import check_outflow_faces, check_robin_closures
from .drivers.integrators import (
    GridSpec,
    Simulation,
    check_frames,
    count_steps,
    output_times,
    run,
)
from .inputs import (
    check_backend,
    dtype_name,
    keywords_only,
    program_path,
    program_text,
    real_array,
    source_name,
)
from .networks import NetworkHandle, TrainHandle
from .results import Solution


def too_few_cells(
    problem: PdeProblem, cells: Sequence[int], need: Sequence[int], order: int
) -> tuple[str, str] | None:
    """The message and hint of R508 where an axis has fewer cells than the stencils and
    boundary closures of ``order`` read (``need``: the kernel plan's ``min_cells``)."""
    for axis, n, m in zip(problem.axes, cells, need, strict=False):
        if n < m:
            return (
                f"{n} cells along {axis.name} are too few for order {order}: the stencils and "
                f"boundary closures there read {m} cells",
                f"use cells >= {m} along {axis.name}",
            )
    return None


# a field grown past GROWTH times the initial scale has its explicit step checked for stability
# (a few steps far beyond the stable step double the largest value; the check costs a stability
# estimate, as dt = auto makes, only for runs that grow)
GROWTH = 2.0

DEFAULT_CELLS = 64


def velocity_names(problem: PdeProblem, plan_fields: list[str]) -> dict[str, str]:
    """``dt(u)`` -> the state field that holds it, for each equation of second order in time
    (the reduction to first order appends those fields after the declared ones)."""
    second = [eq.field for eq in problem.equations if eq.time_order == 2]
    added = plan_fields[len(problem.fields) :]
    return {f"dt({u})": f for u, f in zip(second, added, strict=True)}


RUN_OPTIONS = ("cells", "dt", "every", "order", "scheme", "dtype", "tol", "maxiter", "method", "t1")


def load(path: str | Path, backend: str = "numba", cache_dir: str | Path | None = None):
    """Parse, check and prepare every problem of the .dsl file at ``path`` (R516 for a path that
    is neither a str nor a Path, R506 for an unknown backend, both before the file is read)."""
    from ..dsl import load_file
    from .cache import check_cache_dir

    program_path(path)
    check_backend(backend)
    check_cache_dir(cache_dir)  # before the file is read, as the backend
    checked = load_file(Path(path))
    return CompiledModule(checked, backend, cache_dir)


def compile_text(
    text: str | bytes,
    backend: str = "numba",
    name: str = "<string>",
    cache_dir: str | Path | None = None,
):
    """Like ``load`` for program text: a str, or bytes read as a file is (UTF-8, else R126;
    R516 for anything else)."""
    from ..dsl import load_text

    name = source_name(name)
    text = program_text(text, name)
    check_backend(backend)
    checked = load_text(text, name)
    return CompiledModule(checked, backend, cache_dir)


class CompiledModule:
    """The problems of one program, by name: ``mod.heat1d`` or ``mod["heat1d"]``."""

    def __init__(self, checked: CheckedModule, backend: str, cache_dir: str | Path | None) -> None:
        from .cache import check_cache_dir

        self.checked = checked
        self.backend = check_backend(backend)
        check_cache_dir(cache_dir)  # R516, R527 before any block is prepared
        self.cache_dir = cache_dir
        self._problems: dict[str, Any] = {}
        for name, block in checked.problems.items():
            if isinstance(block, PdeProblem):
                self._problems[name] = PdeHandle(block, backend, cache_dir)
                self._problems[name].env = checked.env  # a pinn line's network lives there
            elif isinstance(block, Network):
                self._problems[name] = NetworkHandle(
                    block, checked.env, checked.source.name, backend, cache_dir
                )
            elif isinstance(block, Train):
                self._problems[name] = TrainHandle(
                    block, checked.env, checked.source.name, backend, cache_dir
                )
            else:
                self._problems[name] = BilevelHandle(
                    block, checked.env, checked.source.name, backend, cache_dir
                )

        for handle in self._problems.values():
            if isinstance(handle, BilevelHandle):
                handle.siblings = self._problems

    @property
    def names(self) -> list[str]:
        return list(self._problems)

    def __getitem__(self, name: str) -> Any:
        if isinstance(name, str) and name in self._problems:
            return self._problems[name]
        listed = f"problems: {', '.join(self._problems) or 'none'}"
        if not isinstance(name, str):
            raise RuntimeInputError(
                f"problems are named by text, got {name!r}", hint=listed, code="R501"
            )
        raise RuntimeInputError(
            f"no problem named '{name}'",
            hint=did_you_mean(name, self._problems) or listed,
            code="R501",
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except RuntimeInputError as err:  # also an AttributeError: getattr(mod, n, None) works
            raise UnknownProblem(diagnostics=err.diagnostics) from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._problems]


class UnknownProblem(RuntimeInputError, AttributeError):
    """R501 for ``mod.name``: an AttributeError too, so that ``getattr(mod, name, None)`` and
    ``hasattr`` behave as for any Python object."""


class PdeHandle:
    """One PDE problem: ``solve``, ``prepare`` (for stepping by hand), ``kernels``, ``source``."""

    def __init__(self, problem: PdeProblem, backend: str, cache_dir: str | Path | None) -> None:
        self.problem = problem
        self.name = problem.name
        self.backend_name = backend
        self.cache_dir = cache_dir
        self._modules: dict[str, Any] = {}
        self._artifacts: dict[str, Any] = {}
        self._flows_checked: set[tuple] = set()  # (params, span) whose open faces are outflow
        self.env: Any = None  # the file's names (set by CompiledModule), for a pinn network
        self.source_name = problem.span.file if problem.span else "<string>"

    def _check_outflow(self, params: dict, span: tuple[float, float]) -> None:
        """R544 where these parameters turn the flow into a face left open; a solve in a loop
        (an inverse problem) repeats its parameters, and judging the flow costs SymPy work."""
        try:
            key = (tuple(sorted((k, float(v)) for k, v in params.items())), span)
        except (TypeError, ValueError):
            key = None
        if key is not None and key in self._flows_checked:
            return
        check_outflow_faces(self.problem, params, span)
        if key is not None:
            self._flows_checked.add(key)

    # -- options -------------------------------------------------------------------------------
    def _solve_line(self, method: str | None) -> SolveSpec | None:
        if not self.problem.solves:
            return None
        if method is None:
            return self.problem.solves[0]
        for s in self.problem.solves:
            if s.method == method:
                return s
        raise RuntimeInputError(
            f"problem '{self.name}' has no solve line with method '{method}'",
            hint=f"methods: {', '.join(s.method for s in self.problem.solves)}",
            code="R502",
        )

    def _split(self, kwargs: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
        params = {p.name: p.default for p in self.problem.params}
        options: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in params:
                params[key] = param_value(key, value, f"pde '{self.name}'")
            elif key in RUN_OPTIONS:
                options[key] = dtype_name(value) if key == "dtype" else value
            else:
                raise RuntimeInputError(
                    f"'{key}' is neither a parameter of '{self.name}' nor a solve option",
                    hint=did_you_mean(key, [*params, *RUN_OPTIONS])
                    or f"parameters: {', '.join(params) or 'none'}; options: "
                    f"{', '.join(RUN_OPTIONS)}",
                    code="R503",
                )
        return params, options

    def _method_options(self, options: dict[str, Any]) -> tuple[SolveSpec | None, dict[str, Any]]:
        solve = self._solve_line(options.pop("method", None))
        if solve is not None and solve.method != "fd":
            raise UnsupportedError(
                f"method '{solve.method}' cannot be compiled by this version of ritz",
                solve.span,
                "use the fd method (a `solve fd(...)` line) for now",
                code="R411",
            )
        # scheme, order and dtype are checked where the code is chosen (R404-R406, at the line)
        rules = {
            k: r for k, r in METHOD_OPTIONS["fd"].items() if k not in ("scheme", "order", "dtype")
        }
        given = {k: check_given(rules, k, v, "solve fd") for k, v in options.items()}
        timed = [k for k in ("scheme", "dt", "every", "t1") if k in given]
        if timed and self.problem.time is None:  # R206 on a solve line; silently dropped here
            raise RuntimeInputError(
                f"'{timed[0]}' is an option of time-dependent problems, and pde "
                f"'{self.problem.name}' is steady (it has no time line)",
                hint="a steady solve takes cells, order, dtype, tol and maxiter",
                code="R503",
            )
        merged = dict(solve.options) if solve else {}
        merged.update(given)
        from ..compiler.driver import IMPLICIT_SCHEMES

        newton = [k for k in ("tol", "maxiter") if k in given]
        scheme = str(merged.get("scheme", "rk4"))
        if newton and self.problem.time is not None and scheme not in IMPLICIT_SCHEMES:
            raise RuntimeInputError(
                f"'{newton[0]}' is an option of Newton's method (steady problems and the "
                f"implicit schemes cn and imex), and scheme {scheme} is explicit: it would do "
                "nothing",
                hint="leave it out, or choose scheme = cn or imex",
                code="R503",
            )
        return solve, merged

    def _option_span(self, name: str, kwargs: dict[str, Any]) -> Any:
        """Where the solve line sets option ``name`` (None where Python gave it, or no line)."""
        if name in kwargs:
            return None
        line = self._solve_line(kwargs.get("method"))
        return None if line is None else line.option_spans.get(name, line.span)

    def _grid(self, merged: dict[str, Any], span: Any = None) -> GridSpec:
        cells = merged.get("cells", DEFAULT_CELLS)
        ndim = len(self.problem.axes)
        if isinstance(cells, int | np.integer):
            cells = [int(cells)] * ndim
        cells = [int(c) for c in cells]
        if len(cells) != ndim or any(c < 2 for c in cells):
            raise RuntimeInputError(
                f"cells must be one integer >= 2 or a list of {ndim} of them; got {cells}",
                code="R504",
                span=span,
            )
        return GridSpec(tuple(cells), tuple((a.lo, a.hi) for a in self.problem.axes))

    def resolve(self, kwargs: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any], Any]:
        """Keywords -> (parameter values, the solve line's options with the keywords applied,
        the FdOptions that shape the generated code)."""
        from ..compiler.driver import fd_options

        params, options = self._split(kwargs)
        solve, merged = self._method_options(options)
        return params, merged, fd_options(solve, merged, tuple(options))

    # -- compilation ---------------------------------------------------------------------------
    def artifact(self, **kwargs: Any):
        """The compiled artifact (generated source and kernel plan) for these options."""
        return self._compile(self.resolve(kwargs)[2])[0]

    def _compile(self, fd, adjoint: bool = False) -> tuple[Any, Any]:
        from ..compiler.driver import compile_pde, compiler_fingerprint
        from .cache import cache_path, key_lock, load_generated

        parts = [compiler_fingerprint(), self.backend_name, repr(self.problem), repr(fd)]
        key_text = "\n".join(parts + (["adjoint"] if adjoint else []))
        key = hashlib.sha256(key_text.encode()).hexdigest()
        if key in self._modules:
            return self._artifacts.get(key), self._modules[key]
        backend = get_backend(self.backend_name)
        path = cache_path(self.cache_dir, self.backend_name, self.name, key, ".py")
        with key_lock(path):  # several threads' first solve: one compiles, the others wait
            if key in self._modules:
                return self._artifacts.get(key), self._modules[key]
            made: list[Any] = []

            def source() -> str:
                made.append(compile_pde(self.problem, fd, self.backend_name, adjoint=adjoint))
                return made[-1].source

            module = load_generated(
                path, f"ritz_gen_{self.name}_{key[:20]}", source, backend.load_module
            )
            self._artifacts[key] = made[-1] if made else None
            self._modules[key] = module  # last: a reader outside the lock finds both
        return self._artifacts[key], module

    def adjoint_module(self, fd: Any) -> Any:
        """The module of an explicit step with its discrete adjoint (``Solution.vjp``)."""
        return self._compile(fd, adjoint=True)[1]

    def module(self, **kwargs: Any) -> Any:
        return self._compile(self.resolve(kwargs)[2])[1]

    @property
    def kernels(self) -> dict[str, Any]:
        """The compiled kernels of the default solve line, as plain callables by name."""
        module = self.module()
        names = [*module.KERNELS, "step", "advance"] if hasattr(module, "KERNELS") else []
        # steady and implicit modules have entries of their own (residual, jvp) instead
        return {n: getattr(module, n) for n in names if hasattr(module, n)}

    def source(self, **kwargs: Any) -> str:
        """The generated source for these options."""
        from .cache import END_MARK

        return Path(self.module(**kwargs).__file__).read_text().removesuffix(END_MARK)

    # -- running -------------------------------------------------------------------------------
    def prepare(self, **kwargs: Any) -> Simulation:
        """Compile, allocate and initialise: a Simulation to ``advance(nsteps)`` by hand."""
        return self._prepare(kwargs)[0]

    def apply_initial(self, sim: Simulation, initial: dict[str, Any] | None) -> None:
        """Replace the initial values (the initial guess, for a steady problem) of the named
        fields by arrays of the grid's shape."""
        if initial is None:
            return
        if not isinstance(initial, Mapping):
            raise RuntimeInputError(
                f"initial takes a dict field -> array, got {type(initial).__name__}",
                hint="give the arrays by field name, e.g. initial={'u': u0}",
                code="R514",
            )
        targets = {f: f for f in self.problem.fields} | velocity_names(
            self.problem, sim.plan["fields"]
        )
        for name, value in initial.items():
            if name not in targets:
                raise RuntimeInputError(
                    f"initial names '{name}', which is not a field of '{self.name}'",
                    hint=did_you_mean(name, targets) or f"fields: {', '.join(targets)}",
                    code="R514",
                )
            view = sim.interior(targets[name])
            label = f"the initial value of '{name}'"
            array = real_array(value, label, "R514", np.dtype(view.dtype).name)
            if array.shape != tuple(sim.grid.cells):
                raise RuntimeInputError(
                    f"{label} must be an array of shape {tuple(sim.grid.cells)} (the grid's "
                    f"cells); got shape {array.shape}",
                    hint="give one value per cell, e.g. a function of sol.coords",
                    code="R514",
                )
            view[...] = sim.backend.from_host(array)

    def _check_initial_values(self, sim: Simulation) -> None:
        """R540 at the ``initial`` line where it makes a value that is not finite
        (``log(x - 0.5)`` at a cell centre x = 0.5): no step could repair it, and a run would
        report it as a blow-up of the scheme. Arrays given as ``initial=`` are checked (R514)
        when they are given."""
        speeds = {f: name for name, f in velocity_names(self.problem, sim.plan["fields"]).items()}
        for f in sim.plan["fields"]:
            if sim.backend.all_finite(sim.interior(f)):
                continue
            bad = ~np.isfinite(np.asarray(sim.backend.to_host(sim.interior(f))))
            name = speeds.get(f, f)
            order = 1 if f in speeds else 0
            spec = next(
                (
                    s
                    for s in self.problem.initials
                    if s.field == name.removeprefix("dt(").removesuffix(")")
                    and s.time_derivative == order
                ),
                None,
            )
            where = np.argwhere(bad)[0]
            point = ", ".join(
                f"{a.name} = {sim.grid.centres(i)[k]:.6g}"
                for i, (a, k) in enumerate(zip(self.problem.axes, where, strict=True))
            )
            what = "initial guess" if self.problem.time is None else "initial value"
            raise RuntimeInputError(
                f"the {what} of '{name}' is not finite at {int(bad.sum())} of {bad.size} "
                f"cell(s), first at {point}",
                spec.span if spec is not None else None,
                "the initial expression is evaluated at the cell centres: keep it finite there "
                "(e.g. log(x - 0.5) is -inf at x = 0.5)",
                code="R540",
            )

    def _prepare(self, kwargs: dict[str, Any]) -> tuple[Simulation, dict[str, Any]]:
        kwargs = dict(kwargs)
        initial = kwargs.pop("initial", None)
        params, merged, fd = self.resolve(kwargs)
        module = self._compile(fd)[1]
        grid = self._grid(merged, self._option_span("cells", kwargs))
        need = module.PLAN["meta"].get("min_cells", ())
        short = too_few_cells(self.problem, grid.cells, need, fd.order)
        if short is not None:
            message, hint = short
            span = self._option_span("cells", kwargs)
            raise RuntimeInputError(message, hint=hint, code="R508", span=span)
        dt = self._dt(merged)
        t0 = self.problem.time.t0 if self.problem.time else 0.0
        t1 = self._end_time(merged) if self.problem.time else t0
        robin = module.PLAN["meta"].get("robin", ())
        check_robin_closures(self.problem, robin, grid, params, (t0, t1))
        self._check_outflow(params, (t0, t1))
        backend = get_backend(self.backend_name)
        if module.PLAN["meta"].get("implicit"):
            if dt is None:
                raise RuntimeInputError(
                    f"dt = auto picks a stable step for explicit schemes; scheme {fd.scheme} is "
                    "stable at any step, so its size is the accuracy you choose",
                    hint="give dt (e.g. dt = 1e-3), or use an explicit scheme with dt = auto",
                    code="R512",
                    span=self._option_span("dt", kwargs),
                )
            from .drivers.implicit import ThetaSimulation

            tol, maxiter = self._newton_options(merged)
            sim: Simulation = ThetaSimulation(module, grid, params, t0, dt, backend, tol, maxiter)
            self.apply_initial(sim, initial)
            self._check_initial_values(sim)
            return sim, merged
        sim = Simulation(module, grid, params, t0, dt or 1.0, backend)
        self.apply_initial(sim, initial)
        self._check_initial_values(sim)
        if dt is None and self.problem.time is not None:
            sim.dt = self._auto_dt(sim, fd)
        return sim, merged

    def _auto_dt(self, sim: Simulation, fd: Any) -> float:
        """The stable step of ``dt = auto`` (see runtime/drivers/stability.py)."""
        from ..compiler.lower.pde import lower_pde
        from .drivers.stability import stable_dt

        lowered = lower_pde(self.problem, fd.order, "float64")
        state = {
            f: np.asarray(sim.backend.to_host(sim.interior(f)), dtype=float) for f in lowered.fields
        }
        grid = {"lo": [lo for lo, _ in sim.grid.bounds], "h": list(sim.grid.spacing)}
        assert self.problem.time is not None
        span = self.problem.time.t1 - self.problem.time.t0
        return stable_dt(
            lowered.program,
            fd.scheme,
            lowered.fields,
            state,
            sim.params,
            grid,
            sim.t,
            span,
            fd.order,
        )

    def _dt(self, merged: dict[str, Any]) -> float | None:
        """The fixed step asked for, or None for ``dt = auto`` (also the default)."""
        dt = merged.get("dt")
        if dt is None or dt == "auto":
            return None
        try:
            value = float(dt)
        except (TypeError, ValueError):
            raise RuntimeInputError(f"dt must be a number, got {dt!r}", code="R505") from None
        if not value > 0:
            raise RuntimeInputError(f"dt must be positive, got {value}", code="R505")
        return value

    def solve(self, *args: Any, progress: bool = False, **kwargs: Any) -> Solution:
        """Solve with parameters and method options given as keywords (see LANGUAGE.md §7);
        ``initial={field: array}`` replaces initial values given in the program."""
        keywords_only("solve", args, "solve(cells=128, nu=0.1)")
        line = self._solve_line(kwargs.get("method"))
        if line is not None and line.method == "pinn":
            from .pinn import solve_pinn

            params = {p.name: p.default for p in self.problem.params}
            options = {k: v for k, v in kwargs.items() if k != "method"}
            what = f"pde '{self.name}'"
            params.update(
                {k: param_value(k, options.pop(k), what) for k in list(options) if k in params}
            )
            if "dtype" in options:
                options["dtype"] = dtype_name(options["dtype"])
            return solve_pinn(self, line, params, options, progress)
        sim, merged = self._prepare(kwargs)
        with threads_for(self.backend_name, int(np.prod(sim.grid.cells))):
            return self._solve_fd(sim, merged, kwargs, progress)

    def _solve_fd(
        self, sim: Simulation, merged: dict[str, Any], kwargs: dict[str, Any], progress: bool
    ) -> Solution:
        if self.problem.time is None:
            near = self._start_at_low_order(sim, kwargs)
            sol = self._solve_steady(sim, merged, continuation=not near)
            sol.adjoint = self._adjoint_of(kwargs, sol)
            return sol
        t0, t1 = self.problem.time.t0, self._end_time(merged)
        every = float(merged["every"]) if merged.get("every") is not None else None
        frame = int(np.prod(sim.grid.cells)) * len(sim.module.PLAN["fields"]) * 8
        check_frames(t0, t1, every, frame, self._option_span("every", kwargs))
        times = output_times(t0, t1, every)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=count_steps(times, sim.dt),
                unit="step",
                desc=self.name,
                leave=False,
                dynamic_ncols=True,
                disable=None,  # only on a terminal: logs and pipes get no bar
                mininterval=0.5,
            )
        speeds = velocity_names(self.problem, list(sim.module.PLAN["fields"]))
        kept = (*self.problem.fields, *speeds.values())
        try:
            t, snaps, steps = run(sim, times, kept, bar.update if bar else None)
        except RuntimeInputError as err:
            if err.code != "R540" or "blew up" not in err.message:
                raise
            unstable = self._unstable_step(sim, merged, kwargs, "the solution blew up")
            raise (unstable or err) from None
        finally:
            if bar is not None:
                bar.close()
        velocities = {name: snaps.pop(f) for name, f in speeds.items()}
        self._check_unstable_step(sim, merged, kwargs, snaps)
        taken = [(b - a) / max(1, math.ceil((b - a) / sim.dt - 1e-9)) for a, b in pairwise(t)]
        # dt: the largest step asked for; step: the largest taken (an interval's equal share)
        info: dict[str, Any] = {"steps": steps, "dt": sim.dt, "step": max(taken, default=sim.dt)}
        if hasattr(sim, "newton_steps"):  # implicit schemes: Newton iterations over all steps
            info["newton_steps"] = sim.newton_steps
        sol = self._solution(sim, t, snaps, info)
        sol.velocities = velocities
        sol.adjoint = self._adjoint_of(kwargs, sol)
        return sol

    def _check_unstable_step(
        self,
        sim: Simulation,
        merged: dict[str, Any],
        kwargs: dict[str, Any],
        snaps: dict[str, np.ndarray],
    ) -> None:
        """R540 for a given explicit step beyond the stable one. Far beyond it a few steps give
        garbage that stays below the blow-up test (1e150): so where the largest value of the
        fields grew by more than GROWTH over the run, the step is compared with the stable step
        of the initial state; a growth the equation itself makes, at a stable step, passes."""
        scale = max(float(np.max(np.abs(v[0]))) for v in snaps.values())
        grown = {f: float(np.max(np.abs(v))) for f, v in snaps.items()}
        worst = max(grown, key=lambda f: grown[f])
        if grown[worst] > GROWTH * scale:
            what = f"field '{worst}' grew from {scale:.3g} to {grown[worst]:.3g}"
            error = self._unstable_step(sim, merged, kwargs, what)
            if error is not None:
                raise error

    def _unstable_step(
        self, sim: Simulation, merged: dict[str, Any], kwargs: dict[str, Any], what: str
    ) -> RuntimeInputError | None:
        """The R540 to raise if the given explicit step is beyond the stable step of the
        initial state (dt = auto's, without its safety factor), else None."""
        from .drivers.stability import SAFETY

        if sim.module.PLAN["meta"].get("implicit") or self._dt(merged) is None:
            return None
        probe, _ = self._prepare({**kwargs, "dt": "auto"})
        limit = probe.dt / SAFETY
        if not sim.dt > limit:
            return None
        return RuntimeInputError(
            f"dt = {sim.dt:.4g} is beyond the stable step of {merged.get('scheme', 'rk4')} "
            f"for this problem (about {limit:.3g} at t0), and {what}: that is the scheme's "
            "instability, not the solution's growth",
            hint=f"use dt = auto, or dt <= {probe.dt:.3g}",
            code="R540",
            span=self._option_span("dt", kwargs),
        )

    def _end_time(self, merged: dict[str, Any]) -> float:
        """``t1`` of the time line, or an earlier or later end given as the option ``t1``."""
        assert self.problem.time is not None
        t0, t1 = self.problem.time.t0, self.problem.time.t1
        if merged.get("t1") is None:
            return t1
        given = merged["t1"]
        try:
            if isinstance(given, str | bytes | bool):  # as every other option: no text
                raise TypeError
            end = float(given)
        except (TypeError, ValueError):
            raise RuntimeInputError(f"t1 must be a number, got {given!r}", code="R515") from None
        if not end > t0:
            raise RuntimeInputError(f"t1 = {end} must be after the start time {t0}", code="R515")
        return end

    def _adjoint_of(self, kwargs: dict[str, Any], sol: Solution) -> Any:
        from .adjoint import pde_vjp

        frozen = dict(kwargs)
        if isinstance(frozen.get("initial"), Mapping):  # the caller may reuse its arrays
            frozen["initial"] = {f: np.array(v, copy=True) for f, v in frozen["initial"].items()}

        def vjp(
            cotangents: dict[str, Any],
            params: list[str] | None = None,
            checkpoints: int | None = None,
        ) -> Any:
            return pde_vjp(self, frozen, sol, cotangents, params, checkpoints)

        return vjp

    def simulation(
        self, module: Any, merged: dict[str, Any], params: dict[str, float], dt: float
    ) -> Simulation:
        """A fresh explicit Simulation of ``module`` (initialised) on the grid of ``merged``."""
        t0 = self.problem.time.t0 if self.problem.time else 0.0
        backend = get_backend(self.backend_name)
        return Simulation(module, self._grid(merged), params, t0, dt, backend)

    @staticmethod
    def _newton_options(merged: dict[str, Any]) -> tuple[float, int]:
        """``tol`` and ``maxiter`` of Newton's method (steady problems, implicit steps)."""
        tol = float(merged.get("tol", 1e-10))
        maxiter = int(merged.get("maxiter", 20000))
        if not tol > 0 or maxiter < 1:
            raise RuntimeInputError("tol must be positive and maxiter at least 1", code="R507")
        return tol, maxiter

    def _start_at_low_order(self, sim: Simulation, kwargs: dict[str, Any]) -> bool:
        """A nonlinear steady problem above order 2 starts from its order-2 solution. Its wider
        boundary closures extrapolate the default guess, which breaks a condition like u = 1 on
        a face by O(1), into ghost values far off, and Newton can settle on a spurious root
        there (``-diff((1 + u^2) * diff(u, x), x) = 0`` at order 4: an error of 0.5 at every
        resolution); the order-2 solution is within O(h^2) of the answer, close enough for
        Newton without continuation. Where it does not converge, the default guess is kept.
        True where the solve starts from it."""
        from .drivers.solvers import solve_steady

        meta = sim.plan["meta"]
        if "initial" in kwargs or meta["order"] <= 2 or meta.get("constant_jacobian"):
            return False
        low, merged = self._prepare({**kwargs, "order": 2})
        try:
            fields, _ = solve_steady(low, *self._newton_options(merged))
        except RuntimeInputError:
            return False
        self.apply_initial(sim, fields)
        return True

    def _solve_steady(
        self, sim: Simulation, merged: dict[str, Any], continuation: bool = True
    ) -> Solution:
        from .drivers.solvers import solve_steady

        tol, maxiter = self._newton_options(merged)
        fields, report = solve_steady(sim, tol, maxiter, continuation)
        info = {
            "steps": report.newton_steps,
            "krylov_iterations": report.krylov_iterations,
            "residual_norms": report.residual_norms,
            "stopped": report.stopped,
        }
        return self._solution(sim, None, fields, info)

    def _solution(
        self, sim: Simulation, t: Any, fields: dict[str, Any], info: dict[str, Any]
    ) -> Solution:
        coords = {a.name: sim.grid.centres(i) for i, a in enumerate(self.problem.axes)}
        periodic = {a.name: a.periodic for a in self.problem.axes}
        info = {
            **info,
            "cells": sim.grid.cells,
            "params": dict(sim.params),
            "backend": self.backend_name,
        }
        bounds = {a.name: b for a, b in zip(self.problem.axes, sim.grid.bounds, strict=True)}
        return Solution(self.name, t, coords, fields, periodic, bounds, info)
