"""Bilevel blocks: the lower level solved by projected Newton-Krylov on the derived residual, the
hypergradient by the implicit function theorem, the upper level by L-BFGS-B, GD or Adam.

Every matrix is matrix-free: J v, J^T u and (dR/dy)^T u are compiled functions derived from the
objectives' IR (``compiler/lower/bilevel.py``). With one lower objective J is its Hessian and the
Krylov solves are CG; a game of several followers has a nonsymmetric J and uses GMRES. Lower
variables at an active bound are held fixed (their rows leave the Krylov systems), which is the
derivative of the projection onto the box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from ..dsl import ast as A
from ..dsl.check.common import param_value
from ..dsl.diagnostics import (
    DslTypeError,
    RitzError,
    RuntimeInputError,
    UnsupportedError,
    did_you_mean,
    shape_text,
)
from ..dsl.resolve import ModuleEnv
from .inputs import checked_size, keywords_only, real_array
from .networks import _array, _BlockHandle, _load

# the default tol of each dtype (relative to the first lower solve's residual norm)
DEFAULT_TOL = {"float64": 1e-10, "float32": 1e-5}


@dataclass
class BilevelResult:
    """``res.upper`` and ``res.lower`` (dicts of values), ``res.hypergrad`` (d upper objective /
    d upper variable, at the solution), ``res.history`` (the upper objective per iteration)."""

    upper: dict[str, Any]
    lower: dict[str, Any]
    hypergrad: dict[str, Any]
    history: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


class BilevelHandle(_BlockHandle):
    """``mod.ridge``: ``hypergrad(lam=..., **data)`` and ``solve(**data)``."""

    what = "bilevel block"

    def __init__(
        self, block: A.Bilevel, env: ModuleEnv, source: str, backend: str, cache_dir: Any
    ) -> None:
        super().__init__(block, env, source, backend, cache_dir)
        self.options = self._solve_options()
        self._keywords: dict[str, tuple[Any, Any, tuple[str, ...]]] = {}
        self.siblings: Mapping[str, Any] = {}  # the other blocks of the file (PDE lower levels)

    # -- options, data, compilation ------------------------------------------------------------
    def _solve_options(self, method: str | None = None) -> dict[str, Any]:
        """The options of the solve line of ``method`` (default: the first line's method) over
        the defaults. A line of another method lends nothing: as in a pde block, each solve
        line is an alternative selected by its method's name, with its own options."""
        opts: dict[str, Any] = {
            "method": "implicit",
            "steps": 100,
            "lr": 0.1,
            "outer": "lbfgs",
            "k": 100,
            "inner_lr": "auto",
            "rho": "auto",
        }
        if self.block.lower_solutions:
            opts["method"] = "adjoint"
        if self.block.solves:
            opts["method"] = self.block.solves[0].method
        if method is not None:
            opts["method"] = method
        self._method_span = self.block.span
        for solve in self.block.solves:
            if solve.method == opts["method"]:
                for kw in solve.options:
                    opts[kw.name] = _option(kw, self.env)
                self._method_span = solve.span
        # what the dtype resolves: a float32 residual stalls near 1e-6 of its scale
        opts.setdefault("tol", DEFAULT_TOL[str(opts.get("dtype", "float64"))])
        return opts

    @property
    def dtype(self) -> str:
        return str(self.options.get("dtype", "float64"))

    def _split(self, kwargs: Mapping[str, Any]) -> tuple[dict, dict, dict, dict]:
        data_names = [d.name for d in self.block.data]
        var_names = [v.name for v in self.block.variables]
        param_names = [p.name for p in self.block.params]
        option_names = [*BILEVEL_OPTIONS, "method"]
        data, variables, params, options = {}, {}, {}, {}
        for k, v in kwargs.items():
            if k in data_names:
                data[k] = v
            elif k in var_names:
                variables[k] = v
            elif k in param_names:
                params[k] = param_value(k, v, f"bilevel '{self.name}'")
            elif k in option_names:
                options[k] = v
            else:
                known = [*data_names, *var_names, *param_names, *option_names]
                raise RuntimeInputError(
                    f"'{k}' is not a data array, variable, param or option of '{self.name}'",
                    hint=did_you_mean(k, known) or f"names: {', '.join(known)}",
                    code="R503",
                )
        missing = [n for n in data_names if n not in data]
        if missing:
            raise RuntimeInputError(
                f"bilevel '{self.name}' needs the data {', '.join(missing)}",
                hint=f"pass them as keywords ({missing[0]}=array) or on the command line "
                f"(--data {missing[0]}=FILE.npy)",
                code="R535",
            )
        return data, variables, params, options

    def _check_method(self, method: str) -> None:
        pde = bool(self.block.lower_solutions)
        followers = sum(1 for ob in self.block.objectives if ob.level == "lower")
        if pde and method != "adjoint":
            raise UnsupportedError(
                f"bilevel method '{method}' is not compiled for a PDE lower level yet "
                f"('{self.name}')",
                self._method_span,
                "use 'solve adjoint(...)' (the PDE's discrete adjoint)",
                code="R416",
            )
        if not pde and method == "adjoint":
            raise UnsupportedError(
                f"bilevel method 'adjoint' is for a PDE lower level ('{self.name}' has lower "
                "objectives)",
                self._method_span,
                "use 'solve implicit(...)', 'unroll(k = ...)' or 'penalty(rho = ...)'",
                code="R416",
            )
        if method == "penalty" and followers > 1:
            raise UnsupportedError(
                f"the penalty method needs one lower objective; '{self.name}' is a game of "
                f"{followers} followers",
                self._method_span,
                "use 'solve implicit(...)' or 'unroll(k = ...)' for an equilibrium of followers",
                code="R416",
            )

    def _data_sizes(self, data: Mapping[str, np.ndarray]) -> dict[str, int]:
        """The size names of the data declarations, read from the arrays (R536 where they
        disagree with the declaration or with each other)."""
        sizes: dict[str, int] = {}
        consts = {sympy.Symbol(k): v for k, v in self.env.consts.items()}
        for decl in self.block.data:
            for d, n in zip(decl.shape, np.shape(data[decl.name]), strict=False):
                fixed = d.value.xreplace(consts)
                if fixed.is_Integer and int(fixed) != n:
                    raise RuntimeInputError(
                        f"data '{decl.name}' needs size {int(fixed)} on an axis, got shape "
                        f"{shape_text(np.shape(data[decl.name]))}",
                        decl.span,
                        code="R536",
                    )
                if d.value.is_Symbol and sizes.setdefault(d.value.name, n) != n:
                    raise RuntimeInputError(
                        f"size '{d.value.name}' is {sizes[d.value.name]} in one data array and "
                        f"{n} in '{decl.name}'",
                        decl.span,
                        code="R536",
                    )
            if np.ndim(data[decl.name]) != len(decl.shape):
                raise RuntimeInputError(
                    f"data '{decl.name}' is declared with {len(decl.shape)} axes, got shape "
                    f"{shape_text(np.shape(data[decl.name]))}",
                    decl.span,
                    code="R536",
                )
        return sizes

    def compile(
        self,
        data: Mapping[str, np.ndarray],
        solution_shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> tuple[Any, Any, Any]:
        """The artifact, module and lowering for data of these sizes (and, for a PDE lower
        level, the shapes of its solutions)."""
        return self._compile_sizes(self._data_sizes(data), solution_shapes)

    def _compile_sizes(
        self,
        sizes: Mapping[str, int],
        solution_shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> tuple[Any, Any, Any]:
        from ..compiler.lower.bilevel import lower_bilevel
        from ..compiler.tensor_driver import compile_bilevel

        key = repr((self.dtype, sorted(sizes.items()), sorted((solution_shapes or {}).items())))
        if key not in self._compiled:
            lowered = lower_bilevel(self.block, self.env, self.dtype, sizes, solution_shapes)
            art = compile_bilevel(lowered, self.name, self.source_name)
            art.lowered = lowered
            self._compiled[key] = (art, _load(art, self.backend_name, self.cache_dir))
        art, mod = self._compiled[key]
        return art, mod, art.lowered

    def compile_keywords(self, data: Mapping[str, np.ndarray]) -> tuple[Any, Any, tuple[str, ...]]:
        """A PDE lower level's parameters as compiled functions of the upper variables (see
        ``lower_pde_keywords``): the artifact, its module and the selector inputs' names."""
        return self._compile_keywords(self._data_sizes(data))

    def _compile_keywords(self, sizes: Mapping[str, int]) -> tuple[Any, Any, tuple[str, ...]]:
        from ..compiler.lower.bilevel import lower_pde_keywords
        from ..compiler.tensor_driver import compile_bilevel

        key = repr(("keywords", self.dtype, sorted(sizes.items())))
        if key not in self._keywords:
            lowered, selectors = lower_pde_keywords(self.block, self.env, self.dtype, sizes)
            art = compile_bilevel(lowered, f"{self.name}_params", self.source_name)
            art.lowered = lowered
            self._keywords[key] = (art, _load(art, self.backend_name, self.cache_dir), selectors)
        return self._keywords[key]

    @property
    def kernels(self) -> Any:
        """The loaded module compiled last (``upper``, ``residual``, ``residual_jvp``,
        ``residual_vjp``, ``lower_objective``: functions of the flat vector of variables). A
        block without data or PDE lower level is compiled here if it has not been yet."""
        if not self._compiled and not self.block.data and not self.block.lower_solutions:
            self._compile_sizes({})
        if not self._compiled:
            raise RuntimeInputError(
                f"bilevel block '{self.name}' has not been compiled yet",
                hint="its kernels are compiled for the sizes of its data: call "
                "hypergrad(...) or solve(...) first, or compile(data) (or write them with "
                "'ritz build')",
                code="R534",
            )
        return next(reversed(self._compiled.values()))[1]

    def build_artifacts(self, sizes: Mapping[str, Any]) -> dict[str, Any]:
        """The modules that ``ritz build`` writes, by file name: ``NAME.py``, the block's
        compiled entries for the sizes given (``--set p=10``), where data sizes not given stay
        symbolic (the functions read them from the arrays) while the sizes of the variables
        must be known (R523 otherwise). A PDE lower level adds ``NAME_params.py``, the PDE's
        parameters as functions of the upper variables; the lower solution's shape is the
        pde block's grid (its default solve line)."""
        fixed = self.given_sizes(sizes)
        solution_shapes = None
        out: dict[str, Any] = {}
        try:
            if self.block.lower_solutions:
                solution_shapes = {
                    ls.name: self._grid_shape(ls) for ls in self.block.lower_solutions
                }
            out[f"{self.name}.py"] = self._compile_sizes(fixed, solution_shapes)[0]
            if self.block.lower_solutions:
                out[f"{self.name}_params.py"] = self._compile_keywords(fixed)[0]
        except RitzError as err:
            if err.code != "R349":
                raise
            needed = sorted(
                {
                    s.name
                    for v in self.block.variables
                    for d in v.shape or ()
                    for s in d.value.free_symbols
                    if s.name not in fixed and s.name not in self.env.consts
                }
            )
            raise RuntimeInputError(
                f"the variables of bilevel '{self.name}' need the size"
                f"{'s' if len(needed) > 1 else ''} {', '.join(needed)} to be compiled",
                self.block.span,
                "give "
                + ("them" if len(needed) > 1 else "it")
                + " with --set, e.g. "
                + " ".join(f"--set {n}=10" for n in needed),
                code="R523",
            ) from None
        return out

    def size_names(self) -> set[str]:
        """The size names of the data, which ``ritz build`` takes with --set."""
        return {s.name for d in self.block.data for dim in d.shape for s in dim.value.free_symbols}

    def given_sizes(self, sizes: Mapping[str, Any]) -> dict[str, int]:
        """Sizes of the data given by name (``--set n=40``): positive whole numbers (R538);
        other names are left to the caller."""
        names = self.size_names()
        return {
            name: checked_size(
                value, f"size '{name}' of the data of '{self.name}'", f"e.g. --set {name}=10"
            )
            for name, value in sizes.items()
            if name in names
        }

    def _grid_shape(self, ls: A.LowerSolution) -> tuple[int, ...]:
        """The shape of a PDE lower solution: the grid of the pde block's default solve."""
        pde = self.siblings.get(ls.problem.name)
        try:
            if pde is None:
                raise AttributeError(ls.problem.name)
            merged = pde.resolve({})[1]
            return tuple(pde._grid(merged).cells)
        except (AttributeError, RitzError):
            raise RuntimeInputError(
                f"the shape of the lower solution '{ls.name}' is not known without a grid",
                ls.span,
                f"give pde '{ls.problem.name}' a 'solve fd(cells = ...)' line",
                code="R523",
            ) from None

    # -- the contract --------------------------------------------------------------------------
    def hypergrad(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """d upper objective / d upper variables, with the lower level solved to ``tol``."""
        keywords_only("hypergrad", args, self._example())
        return self._problem(kwargs).hypergrad()

    def solve(self, *args: Any, progress: bool = False, **kwargs: Any) -> BilevelResult:
        """Optimise the upper level (lower level re-solved, warm-started, at every iterate)."""
        keywords_only("solve", args, self._example())
        return self._problem(kwargs).optimise()

    def _example(self) -> str:
        names = [v.name for v in self.block.variables if v.level == "upper"][:2] or ["tol"]
        return ", ".join(f"{n}=..." for n in names)

    def _problem(self, kwargs: Mapping[str, Any]) -> _Problem | _PdeProblem:
        data, variables, params, options = self._split(kwargs)
        given = _checked_options(options)
        self.options = self._solve_options(given.get("method"))  # its dtype casts the data
        arrays = {k: _array(k, v, self.dtype) for k, v in data.items()}
        opts = {**self.options, **given}
        self._check_method(str(opts["method"]))
        if self.block.lower_solutions:
            return _PdeProblem(self, arrays, variables, params, opts)
        art, mod, lowered = self.compile(arrays)
        from .bilevel_methods import PenaltyProblem, UnrollProblem

        kind = {"unroll": UnrollProblem, "penalty": PenaltyProblem}.get(opts["method"], _Problem)
        return kind(self, art, mod, lowered, arrays, variables, params, opts)


BILEVEL_OPTIONS = ("tol", "steps", "inner_steps", "lr", "outer", "k", "inner_lr", "rho")


def _checked_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options given from Python, checked by the rules of a solve line's options (R538), and
    numbers finite besides."""
    from ..dsl.check.common import BILEVEL_METHODS, OptionRule, check_given

    rules = {k: rule for table in BILEVEL_METHODS.values() for k, rule in table.items()}
    rules["method"] = OptionRule(
        lambda v: v if v in BILEVEL_METHODS else None, f"one of {', '.join(BILEVEL_METHODS)}"
    )
    out: dict[str, Any] = {}
    for k, v in options.items():
        value = check_given(rules, k, v, "a bilevel solve")
        if isinstance(value, float) and not np.isfinite(value):
            raise RuntimeInputError(f"option '{k}' must be finite, got {v!r}", code="R538")
        out[k] = value
    return out


Step = tuple[np.ndarray, float, np.ndarray, float, bool]  # w, g, R, |free R|, accepted


# the largest adjoint system that is assembled and solved directly when a Krylov method
# stalls on it (one product per column, then an LU factorisation)
DENSE_ADJOINT = 1000


def _dense_solve(matvec: Any, rhs: np.ndarray) -> np.ndarray | None:
    """x with A x = rhs, A assembled column by column from ``matvec``: the answer to
    cond(A) * eps, or None where A is singular in floating point (the smallest singular
    value at rounding level of the largest, or a solution that leaves a residual beyond
    rounding)."""
    size = rhs.size
    columns = np.empty((size, size))
    unit = np.zeros(size)
    for j in range(size):
        unit[j] = 1.0
        columns[:, j] = matvec(unit)
        unit[j] = 0.0
    if not np.all(np.isfinite(columns)):
        return None
    sv = np.linalg.svd(columns, compute_uv=False)
    if not sv[-1] > size * np.finfo(float).eps * sv[0]:
        return None
    try:
        x = np.linalg.solve(columns, rhs)
    except np.linalg.LinAlgError:
        return None
    scale = sv[0] * float(np.linalg.norm(x)) + float(np.linalg.norm(rhs))
    if not np.linalg.norm(columns @ x - rhs) <= 1e3 * size * np.finfo(float).eps * scale:
        return None
    return x


# Lanczos steps of the curvature check of a lower solution (each one Hessian-vector product)
LANCZOS_STEPS = 12


def lowest_curvature(hessian: Any, start: np.ndarray, steps: int) -> tuple[float, float]:
    """The smallest Ritz value of ``hessian`` on the Krylov space of ``start`` (``steps``
    Lanczos steps, fully reorthogonalised), and the largest magnitude seen: a Ritz value is a
    Rayleigh quotient, so a negative one is a direction of negative curvature."""
    basis: list[np.ndarray] = []
    alphas: list[float] = []
    betas: list[float] = []
    q = start / np.linalg.norm(start) if np.any(start) else start
    while np.any(q) and len(alphas) < min(steps, start.size):
        basis.append(q)
        z = hessian(q)
        alphas.append(float(q @ z))
        for b in basis:  # twice is enough (Kahan): the basis stays orthogonal to rounding
            z = z - (b @ z) * b
        for b in basis:
            z = z - (b @ z) * b
        beta = float(np.linalg.norm(z))
        scale = max(abs(a) for a in alphas) + max(betas, default=0.0)
        if not np.isfinite(beta) or beta <= 1e-10 * max(scale, 1e-300):
            break  # an invariant subspace: its Ritz values are eigenvalues
        betas.append(beta)
        q = z / beta
    if not alphas:
        return 0.0, 0.0
    off = betas[: len(alphas) - 1]
    tri = np.diag(alphas) + np.diag(off, 1) + np.diag(off, -1)
    ritz = np.linalg.eigvalsh(tri)
    return float(ritz[0]), float(np.max(np.abs(ritz)))


class _Problem:
    """One bilevel instance: the compiled entries bound to data, params and options."""

    def __init__(
        self,
        handle: BilevelHandle,
        art: Any,
        mod: Any,
        lowered: Any,
        data: dict[str, np.ndarray],
        variables: dict[str, Any],
        params: dict[str, float],
        options: dict[str, Any],
    ) -> None:
        self.handle, self.art, self.mod, self.lowered = handle, art, mod, lowered
        self.options = options
        values = {**lowered.params, **params}
        self.args = [data[n] if n in data else float(values[n]) for n in lowered.inputs]
        self.given = variables
        self.layout = art.layout
        n = art.layout.size
        self.lo = np.full(n, -np.inf)
        self.hi = np.full(n, np.inf)
        for name, info in lowered.variables.items():
            if info.bounds is not None:
                start, stop = self.layout.offsets[name]
                self.lo[start:stop], self.hi[start:stop] = info.bounds
        self.lower_mask = np.zeros(n, dtype=bool)
        for name in lowered.lower:
            start, stop = self.layout.offsets[name]
            self.lower_mask[start:stop] = True
        self.solves = 0
        self.ref_norm: float | None = None

    @property
    def sign(self) -> float:
        """-1 where the upper objective is maximised: the Programs minimise its negative."""
        return -1.0 if self.lowered.upper_sense == "maximize" else 1.0

    # -- flat vectors --------------------------------------------------------------------------
    def initial(self) -> np.ndarray:
        """The initial values, as one flat float64 vector (``call`` rounds it to the dtype)."""
        w = np.zeros(self.layout.size)
        for name, info in self.lowered.variables.items():
            start, stop = self.layout.offsets[name]
            value = self.given.get(name, info.init)
            if name in self.given:
                _within(name, value, info.bounds)
            try:
                w[start:stop] = np.broadcast_to(np.asarray(value, dtype=float), info.shape).ravel()
            except ValueError:
                raise RuntimeInputError(
                    f"'{name}' needs shape {shape_text(info.shape)}, got "
                    f"{shape_text(np.shape(value))}",
                    code="R536",
                ) from None
        return np.clip(w, self.lo, self.hi)

    def _entry_names(self, mask: np.ndarray) -> list[str]:
        """The name of each entry of the flat vector where ``mask`` holds (``w[2]`` for an
        entry of a vector variable)."""
        out = [""] * mask.size
        for name, (start, stop) in self.layout.offsets.items():
            shape = self.lowered.variables[name].shape if name in self.lowered.variables else ()
            for j in range(start, min(stop, mask.size)):
                out[j] = name if not shape else f"{name}[{j - start}]"
        return [n for n, m in zip(out, mask, strict=True) if m]

    def unflatten(self, w: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
        out = {}
        for name in names:
            start, stop = self.layout.offsets[name]
            shape = self.lowered.variables[name].shape
            values = w[start:stop].astype(self.art.dtype)  # the values the kernels saw
            out[name] = float(values[0]) if not shape else values.reshape(shape)
        return out

    def call(
        self, entry: str, w: np.ndarray, v: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """A compiled entry at ``w`` (and ``v``), in the block's dtype: the solvers keep their
        vectors in float64 (NumPy's clip and arithmetic promote them), and each evaluation
        rounds its arguments to the dtype the module was compiled for, as its data are. The
        gradient or product comes back in float64."""
        dtype = self.art.dtype
        w = np.asarray(w, dtype=dtype)
        g = np.zeros_like(w)
        fn = getattr(self.mod, entry)
        if v is None:
            value = fn(w, g, *self.args)
        else:
            value = fn(w, np.asarray(v, dtype=dtype), g, *self.args)
        return float(value), g.astype(np.float64, copy=False)

    # -- the lower level -----------------------------------------------------------------------
    def _free(self, w: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Lower coordinates not held at a bound by a gradient that points out of the box."""
        at_lo = (w <= self.lo) & (r > 0)
        at_hi = (w >= self.hi) & (r < 0)
        return self.lower_mask & ~at_lo & ~at_hi

    def _krylov(
        self, entry: str, w: np.ndarray, free: np.ndarray, rhs: np.ndarray, strict: bool = False
    ) -> np.ndarray:
        from scipy.sparse.linalg import LinearOperator, cg, gmres

        idx = np.flatnonzero(free)
        if idx.size == 0:  # every lower variable held at a bound
            return np.zeros_like(w)

        def matvec(x: np.ndarray) -> np.ndarray:
            v = np.zeros_like(w)
            v[idx] = x
            return self.call(entry, w, v)[1][idx]

        op = LinearOperator((idx.size, idx.size), matvec=matvec, dtype=w.dtype)
        tol = float(self.options["tol"])
        rtol = min(1e-3, max(tol * 1e-2, 1e-14))
        with np.errstate(divide="ignore", invalid="ignore"):  # a singular J: judged below
            if self.lowered.symmetric:
                x, _ = cg(op, rhs[idx], rtol=rtol, atol=0.0, maxiter=10 * idx.size + 100)
            else:
                x, _ = gmres(
                    op,
                    rhs[idx],
                    rtol=rtol,
                    atol=0.0,
                    restart=min(idx.size, 50),
                    maxiter=10 * idx.size + 100,
                )
        if strict:  # the adjoint system: no answer is better than a wrong one
            miss = float(np.linalg.norm(op.matvec(x) - rhs[idx]))
            if not miss <= 1e3 * rtol * float(np.linalg.norm(rhs[idx])):
                # a Krylov method stalls near cond * eps: an ill-conditioned but regular system
                # asked for more is solved directly where it is small, not called singular
                solved = _dense_solve(matvec, rhs[idx]) if idx.size <= DENSE_ADJOINT else None
                if solved is not None:
                    x, miss = solved, 0.0
            if not miss <= 1e3 * rtol * float(np.linalg.norm(rhs[idx])):
                what = "Hessian" if self.lowered.symmetric else "Jacobian"
                raise RuntimeInputError(
                    f"the lower level of '{self.handle.name}' is singular (or too "
                    f"ill-conditioned to solve with) at its solution: the adjoint system with "
                    f"its {what} has no solution (residual {miss:.3g})",
                    self.handle._method_span,
                    "make the lower objective strictly convex (e.g. add 1e-6 * sum(w^2)), or use "
                    "'solve unroll(k = ...)', which needs no inverse",
                    code="R543",
                )
        out = np.zeros_like(w)
        out[idx] = x
        return out

    def solve_lower(self, w: np.ndarray) -> np.ndarray:
        """Projected Newton-Krylov with a backtracking line search on 0.5 |R|^2 (a Newton
        direction descends it whenever J is invertible, for a game as for a minimisation);
        stops when the free part of R is below ``tol`` times the first solve's initial norm
        (at least 1), so warm starts keep one absolute target. Where the Newton step is not
        defined (no curvature: a linear objective) or finds no decrease of |R| (which stays
        constant along a linear objective until a bound), one lower objective takes a projected
        gradient step instead, searched on the objective itself (``_gradient_step``)."""
        tol = float(self.options["tol"])
        steps = int(self.options.get("inner_steps", 50))
        w = w.copy()
        value, r = self.call("residual", w)
        norm = self._free_norm(w, r)
        if self.ref_norm is None:
            self.ref_norm = self.reference_norm(w, norm)
        target = tol * self.ref_norm
        d: np.ndarray | None = None
        for _ in range(steps):
            if norm <= target:
                return self._solved(w, r, d)
            free = self._free(w, r)
            newton = self._krylov("residual_jvp", w, free, -r)
            d = newton
            if not np.all(np.isfinite(newton)):  # no curvature: no Newton step
                d = None if self.lowered.symmetric else np.where(free, -r, 0.0)
            step = None if d is None else self._residual_search(w, d, norm)
            if (step is None or not step[4]) and self.lowered.symmetric:
                step = self._gradient_step(w, value, r, free) or step
            if step is None:
                break
            w, value, r, norm, _ = step  # an unaccepted Newton step: its shortest trial
        if norm <= target:
            return self._solved(w, r, d)
        hint = "raise inner_steps, or loosen tol"
        if self.art.dtype == "float32":
            hint += (
                " (float32 resolves about 1e-6 of the residual's scale; its default tol is "
                f"{DEFAULT_TOL['float32']:g}), or compute in float64"
            )
        raise RuntimeInputError(
            f"the lower level of '{self.handle.name}' did not converge in {steps} Newton "
            f"steps (residual {norm:.3g}, target {target:.3g})",
            self.handle._method_span,
            hint
            if np.isfinite(norm)
            else "the lower objective is not finite there (a log or sqrt of a negative "
            "number, a division by zero): bound the variables it takes (upper q = 1 in "
            "[lo, hi], lower w = 0 in [lo, hi]) so that they stay in its domain",
            code="R542",
        )

    @staticmethod
    def probe(mask: np.ndarray) -> np.ndarray:
        """A fixed random unit vector on the entries where ``mask`` holds (seed 0: every
        evaluation probes the same direction); zero where nothing is masked."""
        v = np.where(mask, np.random.default_rng(0).standard_normal(mask.size), 0.0)
        return v / max(float(np.linalg.norm(v)), 1e-300)

    def reference_norm(self, w: np.ndarray, norm: float) -> float:
        """The residual norm that ``tol`` is relative to, fixed at the first lower solve from
        ``w``, whose initial residual norm is ``norm``: that norm, but at least the residual a
        relative error of one in the lower variables leaves at the objective's own curvature,
        ``|J p| max(|x|, 1)`` for a fixed random unit vector p of the lower variables, or 1
        where that is larger (no lower level is solved less accurately than with the floor of
        1 this replaces); 1 where neither says anything (a start at a stationary point without
        curvature). Scaling the lower objectives by a constant scales the norm and the floor
        alike, so the lower level is solved to the same point: a floor of 1 alone took the
        start of ``1e-12 * (x - y)^2`` for its solution."""
        lower = self.lower_mask
        with np.errstate(over="ignore", invalid="ignore"):
            _, jp = self.call("residual_jvp", w, self.probe(lower))
            scale = float(np.linalg.norm(jp[lower])) * max(float(np.linalg.norm(w[lower])), 1.0)
        floor = min(scale, 1.0) if np.isfinite(scale) else 1.0
        reference = max(norm, floor) if np.isfinite(norm) else 1.0
        return reference if reference > 0.0 else 1.0

    def _solved(self, w: np.ndarray, r: np.ndarray, d: np.ndarray | None) -> np.ndarray:
        """The lower solution ``w``, once one lower objective's curvature there is checked."""
        if self.lowered.symmetric:
            self._check_curvature(w, r, d)
        self.solves += 1
        return w

    def _check_curvature(self, w: np.ndarray, r: np.ndarray, d: np.ndarray | None) -> None:
        """R542 where the one lower objective curves downwards at its stationary point along
        its free variables: Newton-Krylov finds maxima and saddles as readily as minima, and a
        minimisation must not return one (a Nash game's stationary point is its answer, and
        is not checked). Probes: the last Newton direction, then a few Lanczos steps from a
        fixed random vector, whose smallest Ritz value is a curvature v^T H v / v^T v of a
        vector of the Krylov space, so a negative one proves H is not positive semidefinite
        (a saddle with one downward direction among 20 variables slips past single random
        probes); no negative value proves nothing beyond the space searched."""
        free = self._free(w, r)
        if not free.any():
            return
        tiny = float(np.sqrt(np.finfo(w.dtype).eps))

        def hessian(v: np.ndarray) -> np.ndarray:
            v = np.where(free, v, 0.0).astype(w.dtype)
            return np.where(free, self.call("residual_jvp", w, v)[1], 0.0)

        if d is not None:
            v = np.where(free, d, 0.0)
            hv = hessian(v)
            curvature = float(v @ hv)
            if curvature < -tiny * float(np.linalg.norm(v) * np.linalg.norm(hv)):
                self._not_a_minimum(curvature / float(v @ v))
        lowest, scale = lowest_curvature(hessian, self.probe(free), LANCZOS_STEPS)
        if lowest < -tiny * scale:
            self._not_a_minimum(lowest)

    def _objective_span(self, level: str) -> Any:
        """Where the block's first objective of ``level`` is written (else its solve line)."""
        found = next((o for o in self.handle.block.objectives if o.level == level), None)
        return found.span if found is not None else self.handle._method_span

    def _not_a_minimum(self, curvature: float) -> None:
        raise RuntimeInputError(
            f"the lower level of '{self.handle.name}' is stationary at a maximum or a saddle "
            f"of its objective, not a minimum (curvature {curvature:.3g} along a direction "
            "of its free variables)",
            self._objective_span("lower"),
            "the lower objective is not convex there: check its sign, or write 'lower "
            "maximize' if the point wanted is a maximum",
            code="R542",
        )

    def _free_norm(self, w: np.ndarray, r: np.ndarray) -> float:
        return float(np.linalg.norm(r[self._free(w, r)]))

    def _residual_search(self, w: np.ndarray, d: np.ndarray, norm: float) -> Step:
        """Backtracking along clip(w + t d) until 0.5 |R|^2 decreases (Armijo); the last trial
        (not accepted) where 40 halvings find no decrease."""
        t = 1.0
        for _ in range(40):
            trial = np.clip(w + t * d, self.lo, self.hi)
            t_value, t_r = self.call("residual", trial)
            t_norm = self._free_norm(trial, t_r)
            if np.isfinite(t_norm) and t_norm**2 <= (1 - 1e-4 * t) * norm**2:
                return trial, t_value, t_r, t_norm, True
            t *= 0.5
        return trial, t_value, t_r, t_norm, False

    def _gradient_step(
        self, w: np.ndarray, value: float, r: np.ndarray, free: np.ndarray
    ) -> Step | None:
        """A projected gradient step of one lower objective g (R is its gradient, and the
        residual entry returns g's value): along the path clip(w - t R) over the free
        variables, backtracking from the t that carries every one of them to the bound it is
        heading for (the whole way for a linear objective; a unit step where no bound lies
        ahead), with an Armijo test on g itself. None where no step decreases g."""
        d = np.where(free, -r, 0.0)
        moving = free & (d != 0.0)
        if not np.any(moving):
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            ahead = np.where(d > 0, self.hi - w, self.lo - w)[moving] / d[moving]
        ahead = ahead[np.isfinite(ahead) & (ahead > 0)]
        t = float(ahead.max()) if ahead.size else 1.0 / float(np.linalg.norm(d))
        for _ in range(60):
            trial = np.clip(w + t * d, self.lo, self.hi)
            t_value, t_r = self.call("residual", trial)
            decrease = float(r @ (w - trial))  # the first-order decrease along the path
            if np.isfinite(t_value) and decrease > 0 and t_value <= value - 1e-4 * decrease:
                return trial, t_value, t_r, self._free_norm(trial, t_r), True
            t *= 0.5
        return None

    def hypergrad(self) -> dict[str, Any]:
        _, grad, _, _ = self.value_and_hypergrad(self.initial())
        return self.unflatten(grad, self.lowered.upper)

    def value_and_hypergrad(self, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """At the upper values in ``w`` (its lower part is the warm start): the value the upper
        optimiser minimises and its gradient (full vectors, as written), the lower solution, and
        the upper objective there (what the history records). Each method overrides this."""
        w = self.solve_lower(w)
        value, grad = self.upper_and_hypergrad(w)
        return value, grad, w, value

    # -- the hypergradient ---------------------------------------------------------------------
    def upper_and_hypergrad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """F and dF/dy at the lower solution: dF/dy = F_y - (dR/dy)^T lam, J^T lam = F_x."""
        value, gF = self.call("upper", w)
        if not (np.isfinite(value) and np.all(np.isfinite(gF))):
            raise RuntimeInputError(
                f"the upper objective of '{self.handle.name}' (or its gradient) is not finite "
                "at the lower solution",
                self._objective_span("upper"),
                "a division by zero, or a log or sqrt of a negative number: start the upper "
                "variables elsewhere, or bound them (in [lo, hi]) away from it",
                code="R540",
            )
        _, r = self.call("residual", w)
        free = self._free(w, r)
        lam = self._krylov("residual_vjp", w, free, np.where(free, gF, 0.0), strict=True)
        grad = np.where(self.lower_mask, 0.0, gF)
        _, mixed = self.call("residual_vjp", w, lam)  # its upper part: (dR/dy)^T lam
        grad = grad - np.where(self.lower_mask, 0.0, mixed)
        return self.sign * value, self.sign * grad

    # -- the upper level -----------------------------------------------------------------------
    def optimise(self) -> BilevelResult:
        upper_mask = ~self.lower_mask
        state = {"w": self.initial()}

        def evaluate(y: np.ndarray) -> tuple[float, np.ndarray, float]:
            w = state["w"].copy()
            w[upper_mask] = y
            value, grad, state["w"], reported = self.value_and_hypergrad(w)  # warm-started
            return value, grad[upper_mask], reported

        y0 = state["w"][upper_mask]
        _, grad, history, info = optimise_upper(
            evaluate,
            y0,
            self.lo[upper_mask],
            self.hi[upper_mask],
            self.options,
            self.lowered.upper_sense,
            self._entry_names(upper_mask),
        )
        w = state["w"]
        full = np.zeros_like(w)
        full[upper_mask] = grad
        return BilevelResult(
            self.unflatten(w, self.lowered.upper),
            self.unflatten(w, self.lowered.lower),
            self.unflatten(full, self.lowered.upper),
            history,
            {**info, "lower_solves": self.solves},
        )


def optimise_upper(
    evaluate: Any,
    y0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    options: Mapping[str, Any],
    sense: str,
    names: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """The upper loop: ``evaluate(y) -> (F, dF/dy)`` as written (``sense`` says whether F is
    minimised or maximised), or ``(F, dF/dy, reported)`` where the history records another
    value than the one optimised (the penalty method's upper objective at the lower solution).
    Returns the final y, the hypergradient there, the history per evaluation and what the
    optimiser reported. ``outer``: L-BFGS-B (bounds native), or projected GD / Adam
    with ``lr`` for ``steps`` iterations."""
    outer, steps = str(options["outer"]), int(options["steps"])
    sign = -1.0 if sense == "maximize" else 1.0
    history: list[float] = []
    last: dict[str, np.ndarray] = {}
    failed: list[RitzError] = []

    def f_and_g(y: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            out = evaluate(np.asarray(y, dtype=np.float64))
        except RitzError as err:
            # a trial point where the lower level fails (a PDE solve that blows up at a
            # parameter its time step cannot take, a Hessian too ill-conditioned to solve with
            # at an extreme step): a bad point the line search backs away from. The first
            # point must succeed.
            if not history or err.code not in ("R540", "R542", "R543"):
                raise
            failed.append(err)
            return abs(sign * history[0]) * 1e6 + 1e6, np.zeros_like(y)
        value, grad = out[0], out[1]
        history.append(out[2] if len(out) > 2 else value)
        last["grad"] = grad
        last["y"] = np.asarray(y, dtype=np.float64).copy()
        return sign * value, sign * grad

    y = np.asarray(y0, dtype=np.float64)
    if outer == "lbfgs":
        from scipy.optimize import minimize

        bounds = [
            (None if np.isinf(a) else a, None if np.isinf(b) else b)
            for a, b in zip(lo, hi, strict=True)
        ]
        res = minimize(
            f_and_g,
            y,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": steps, "ftol": 1e-15, "gtol": 1e-10},
        )
        y, info = res.x, {"message": str(res.message), "iterations": int(res.nit)}
    else:
        lr = float(options["lr"])
        m, v = np.zeros_like(y), np.zeros_like(y)
        for t in range(1, steps + 1):
            _, g = f_and_g(y)
            if outer == "adam":
                m = 0.9 * m + 0.1 * g
                v = 0.999 * v + 0.001 * g * g
                step = lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            else:
                step = lr * g
            y = np.clip(y - step, lo, hi)
        info = {"iterations": steps}
    if not np.array_equal(y, last["y"]):
        f_and_g(y)  # the lower level and the hypergradient at the final point
    if not np.array_equal(y, last["y"]):
        raise failed[-1]
    _check_bounded(y0, y, lo, hi, history, names)
    return (
        y,
        last["grad"],
        np.asarray(history),
        {**info, "outer": outer, "failed_evaluations": len(failed)},
    )


# an upper variable without bounds that moves this many times its start (or 1) has diverged
DIVERGED = 1e8


def _check_bounded(
    y0: np.ndarray,
    y: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    history: list[float],
    names: Sequence[str] = (),
) -> None:
    """R545 where an upper variable without bounds ran off (an upper objective unbounded in
    it: L-BFGS stops at its iteration limit with the variable at 1e12, which is no answer)."""
    free = np.isinf(lo) | np.isinf(hi)
    far = free & (np.abs(y) > DIVERGED * np.maximum(1.0, np.abs(np.asarray(y0, float))))
    if not far.any():
        return
    k = int(np.argmax(np.where(far, np.abs(y), 0.0)))
    which = f"'{names[k]}'" if k < len(names) else "an upper variable"
    raise RuntimeInputError(
        f"the upper level diverged: {which}, which has no bounds, went from "
        f"{float(np.asarray(y0, float)[k]):.3g} to {float(y[k]):.3g} (upper objective "
        f"{history[0]:.3g} -> {history[-1]:.3g}); the upper objective is unbounded along it",
        hint="give the upper variable bounds (upper q = 1 in [lo, hi]), or check the sign of "
        "the upper objective (minimize or maximize)",
        code="R545",
    )


class _PdeProblem:
    """A PDE lower level (``lower u = heat1d(nu = nu).u at t = 0.1``): each evaluation solves
    the PDE with parameters computed from the upper variables, and the hypergradient is the
    upper objective's partials plus the solve's discrete adjoint (``sol.vjp``) chained through
    d(parameter)/d(upper variable), derived with SymPy from the call's keyword expressions."""

    def __init__(
        self,
        handle: BilevelHandle,
        data: dict[str, np.ndarray],
        variables: dict[str, Any],
        params: dict[str, float],
        options: dict[str, Any],
    ) -> None:
        self.handle, self.options, self.data = handle, options, data
        bl = handle.block
        if len(bl.lower_solutions) != 1:
            raise UnsupportedError(
                "a bilevel block with several PDE lower solutions is not compiled yet",
                bl.lower_solutions[1].span,
                "use one 'lower NAME = P(...).field' line",
                code="R416",
            )
        self.ls = bl.lower_solutions[0]
        self.pde = handle.siblings[self.ls.problem.name]
        from ..compiler.lower.bilevel import param_defaults

        self.params = {**param_defaults(bl, handle.env), **params}
        self.upper = [v for v in bl.variables if v.level == "upper"]
        y0 = []
        self.lo, self.hi = [], []
        for v in self.upper:
            if v.name in variables:
                _within(v.name, variables[v.name], None)  # a finite number
            y0.append(float(variables.get(v.name, _const(v.init.value, handle.env))))
            lo, hi = v.bounds if v.bounds is not None else (None, None)
            self.lo.append(-np.inf if lo is None else float(_const(lo.value, handle.env)))
            self.hi.append(np.inf if hi is None else float(_const(hi.value, handle.env)))
            if v.name in variables:
                _within(v.name, variables[v.name], (self.lo[-1], self.hi[-1]))
        self.y0 = np.clip(np.array(y0, dtype=float), self.lo, self.hi)
        self.solve_kwargs, self.time = self._at()
        # the PDE's parameters as compiled functions of the upper variables
        self.kw_art, self.kw_mod, self.selectors = handle.compile_keywords(data)
        self.kw_args = [
            data[n] if n in data else float(self.params[n])
            for n in self.kw_art.lowered.inputs
            if n not in self.selectors
        ]
        sol = self._solve(self.y0)
        shape = self._observed(sol).shape
        self.art, self.mod, _ = handle.compile(data, {self.ls.name: shape})
        self.lowered = self.art.lowered
        self.args = [data[n] if n in data else float(self.params[n]) for n in self.lowered.inputs]
        self.solves = 0

    def _at(self) -> tuple[dict[str, Any], float | None]:
        out: dict[str, Any] = {}
        time = self.pde.problem.time
        for kw in self.ls.at:
            if time is None:
                raise DslTypeError(
                    f"pde '{self.ls.problem.name}' is steady: its solution has no time to "
                    f"observe 'at {kw.name} = ...'",
                    kw.span,
                    f"remove 'at {kw.name} = ...': the lower solution is the steady field",
                    code="R350",
                )
            if kw.name != time.name:
                raise UnsupportedError(
                    f"'at {kw.name} = ...' is not compiled yet: a PDE lower level is observed "
                    "at a time",
                    kw.span,
                    f"use 'at {time.name} = VALUE'",
                    code="R416",
                )
            out["t1"] = float(_const(kw.value.value, self.handle.env))  # > t0: checked (R350)
        return out, out.get("t1")

    def _pde_params(self, y: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """The PDE's parameters at y, and d parameter / d y: the compiled keyword module
        evaluated with each keyword's selector in turn."""
        layout = self.kw_art.layout
        w = np.zeros(layout.size, dtype=self.kw_art.dtype)
        for k, v in enumerate(self.upper):
            w[layout.offsets[v.name][0]] = y[k]
        values, derivs = {}, {}
        for j, kw in enumerate(self.ls.problem.kwargs):
            select = [1.0 if i == j else 0.0 for i in range(len(self.selectors))]
            g = np.zeros_like(w)
            value = float(self.kw_mod.upper(w, g, *self.kw_args, *select))
            if not np.isfinite(value):
                raise RuntimeInputError(
                    f"the value of '{kw.name}' is not finite ({value}) at "
                    + ", ".join(f"{v.name} = {y[k]:g}" for k, v in enumerate(self.upper)),
                    kw.span,
                    "keep the upper variables where the expression is defined (bounds)",
                    code="R540",
                )
            values[kw.name] = value
            derivs[kw.name] = np.array([float(g[layout.offsets[v.name][0]]) for v in self.upper])
        return values, derivs

    def _observed(self, sol: Any) -> np.ndarray:
        """The lower solution: the field at the last time of a time-dependent solve, or the
        field itself for a steady problem (its solution has no time axis)."""
        u = sol[self.ls.field]
        return np.asarray(u if sol.t is None else u[-1], dtype=float)

    def _solve(self, y: np.ndarray) -> Any:
        values, _ = self._pde_params(y)
        return self.pde.solve(**values, **self.solve_kwargs)

    def evaluate(self, y: np.ndarray) -> tuple[float, np.ndarray]:
        """F and dF/dy as written."""
        values, derivs = self._pde_params(y)
        sol = self.pde.solve(**values, **self.solve_kwargs)
        self.solves += 1
        u = self._observed(sol)
        w = np.zeros(self.art.layout.size, dtype=self.art.dtype)  # as its data are
        start, stop = self.art.layout.offsets[self.ls.name]
        w[start:stop] = u.ravel()
        for k, v in enumerate(self.upper):
            w[self.art.layout.offsets[v.name][0]] = y[k]
        g = np.zeros_like(w)
        value = float(self.mod.upper(w, g, *self.args))
        grad = np.array([g[self.art.layout.offsets[v.name][0]] for v in self.upper])
        adj = sol.vjp({self.ls.field: g[start:stop].reshape(u.shape)}, params=list(values))
        for name, d in derivs.items():
            grad = grad + d * float(adj.params[name])
        sign = -1.0 if self.lowered.upper_sense == "maximize" else 1.0
        self.last_u = u
        return sign * value, sign * grad

    def hypergrad(self) -> dict[str, Any]:
        _, grad = self.evaluate(self.y0)
        return {v.name: float(grad[k]) for k, v in enumerate(self.upper)}

    def optimise(self) -> BilevelResult:
        y, grad, history, info = optimise_upper(
            self.evaluate,
            self.y0,
            np.array(self.lo),
            np.array(self.hi),
            self.options,
            self.lowered.upper_sense,
            [v.name for v in self.upper],
        )
        return BilevelResult(
            {v.name: float(y[k]) for k, v in enumerate(self.upper)},
            {self.ls.name: self.last_u.copy()},
            {v.name: float(grad[k]) for k, v in enumerate(self.upper)},
            history,
            {**info, "lower_solves": self.solves},
        )


def _within(name: str, value: Any, bounds: tuple[float, float] | None) -> None:
    """A value given from Python is finite and lies in its variable's box (it is not moved
    there)."""
    # real and finite, as every array given from Python; "0.3" and True are no values
    hint = "give a finite real value (or leave it out for the declared initial value)"
    array = real_array(value, f"'{name}'", "R536", hint=hint, booleans=False)
    if bounds is None:
        return
    lo, hi = bounds
    if not bool(np.all((array >= lo) & (array <= hi))):
        raise RuntimeInputError(
            f"'{name}' = {value} is outside its bounds [{lo:g}, {hi:g}]",
            hint="give a value inside the box the block declares",
            code="R536",
        )


def _option(kw: A.Keyword, env: ModuleEnv) -> Any:
    """A solve line's option as a plain Python value, consts folded the way the checker folds
    them (``k = K``, ``lr = pi / 10``): int, float or str (an identifier such as ``gd``)."""
    from ..dsl.check.common import option_value
    from ..dsl.diagnostics import DiagnosticSink

    sink = DiagnosticSink()
    value = option_value(kw.value, env, sink)
    sink.raise_if_any()  # the checker has reported these already
    if isinstance(value, A.Call) or value is None:
        raise RuntimeInputError(
            f"option '{kw.name}' of a bilevel solve line must be a number or a name",
            kw.span,
            code="R538",
        )
    return value


def _const(value: sympy.Basic, env: ModuleEnv) -> float:
    return float(value.xreplace({sympy.Symbol(k): v for k, v in env.consts.items()}).evalf())


__all__ = ["BilevelHandle", "BilevelResult"]
