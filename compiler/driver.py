"""compile a checked PDE problem and a solve line to backend source plus its kernel plan."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from ..dsl.ast import PdeProblem, SolveSpec
from ..dsl.diagnostics import UnsupportedError
from .backends.base import safe_name
from .ir.dump import dump_program
from .ir.verify import verify_program
from .kernels import KernelGroup
from .lower.pde import LoweredPde, lower_pde
from .passes.fuse import FuseInput, fuse
from .passes.fuse_adjoint import fuse_adjoint
from .passes.fuse_steady import fuse_steady
from .passes.integrate import TABLEAUS
from .passes.manager import Pass, PassContext, run_pipeline
from .passes.pipelines import (
    PDE_FD_ADJOINT,
    PDE_FD_EXPLICIT,
    PDE_FD_IMPLICIT,
    PDE_FD_IMPLICIT_ADJOINT,
    PDE_FD_STEADY,
    PDE_FD_STEADY_ADJOINT,
)

VERSION = "0.1.0"


@lru_cache(maxsize=1)
def compiler_fingerprint() -> str:
    """A hash of the compiler's own source, so cached kernels never outlive a compiler change."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(VERSION.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


#: options that change generated code; every other option only changes run-time arguments
CODE_OPTIONS = ("order", "scheme", "dtype")
BACKENDS = ("numba", "cupy")


@dataclass(frozen=True)
class FdOptions:
    order: int = 2
    scheme: str = "rk4"
    dtype: str = "float64"


@dataclass
class CompiledArtifact:
    """Generated source and what the runtime needs to drive it."""

    problem: str
    backend: str
    source: str
    group: KernelGroup
    lowered: LoweredPde
    dumps: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # what `ritz build` writes


IMPLICIT_SCHEMES = ("cn", "imex")


def fd_pipeline(steady: bool, scheme: str, adjoint: bool = False) -> tuple:
    """The pass list of an fd solve (see compiler/passes/pipelines.py)."""
    if adjoint:
        if steady:
            return PDE_FD_STEADY_ADJOINT
        return PDE_FD_IMPLICIT_ADJOINT if scheme in IMPLICIT_SCHEMES else PDE_FD_ADJOINT
    if steady:
        return PDE_FD_STEADY
    return PDE_FD_IMPLICIT if scheme in IMPLICIT_SCHEMES else PDE_FD_EXPLICIT


def fd_options(
    solve: SolveSpec | None, overrides: dict[str, object], given: Collection[str] = ()
) -> FdOptions:
    """The code-shaping options of an fd solve line, with run-time overrides applied; an
    option named in ``given`` came from the run (a keyword, ``--set``), so a bad value of it
    is reported without the line's location, which holds another (valid) value."""
    opts = dict(solve.options) if solve else {}
    opts.update({k: v for k, v in overrides.items() if v is not None})

    def where(name: str) -> Any:
        if solve is None or name in given:
            return None
        return solve.option_spans.get(name) or solve.span

    def origin(name: str) -> str:
        return " (given at run time)" if name in given else ""

    scheme = str(opts.get("scheme", "rk4"))
    if scheme not in TABLEAUS and scheme not in IMPLICIT_SCHEMES:
        raise UnsupportedError(
            f"unknown scheme '{scheme}'{origin('scheme')}",
            where("scheme"),
            "use euler, rk2, rk4, ssprk3 (explicit), cn or imex (implicit)",
            code="R404",
        )
    given_order = opts.get("order", 2)
    plain = given_order.item() if isinstance(given_order, np.generic) else given_order
    # a whole number, as cells: 2.0, "2" and True are refused, not converted
    whole = isinstance(plain, int | sympy.Integer) and not isinstance(plain, bool)
    order = int(plain) if whole else 0
    if order not in (2, 4):
        raise UnsupportedError(
            f"order {order}{origin('order')} is not available"
            if whole
            else f"order must be the whole number 2 or 4, got {given_order!r}{origin('order')}",
            where("order"),
            "use order = 2 or 4",
            code="R405",
        )
    dtype = str(opts.get("dtype", "float64"))
    if dtype not in ("float64", "float32"):
        raise UnsupportedError(
            f"dtype {dtype}{origin('dtype')} is not available",
            where("dtype"),
            "use float64 or float32",
            code="R406",
        )
    return FdOptions(order=order, scheme=scheme, dtype=dtype)


def _source_lines(problem: PdeProblem, lowered: LoweredPde) -> dict[str, str]:
    lines = {}
    for f, span in lowered.equation_spans.items():
        if span is not None and span.source is not None:
            text = span.source.line_text(span.line).strip()
            lines[f] = f"{safe_name(span.file)}:{span.line}  {text}"
    return lines


def _equations_title(problem: PdeProblem, options: FdOptions) -> str:
    if problem.time is not None and options.scheme in IMPLICIT_SCHEMES:
        return (
            f"adjoint of {problem.name} ({options.scheme}, order {options.order}), each step "
            "from the last to the first: mu solves J^T mu = lambda (J: the Jacobian of the "
            "step's residual at the new state), then lambda becomes the cotangent of the old "
            "state"
            + (
                "; lh_<f>: the cotangent of the previous step's explicit part"
                if options.scheme == "imex"
                else ""
            )
        )
    if problem.time is None:
        return (
            f"adjoint of {problem.name} (steady, order {options.order}): lambda solves "
            "J^T lambda = dL/du; w_<f> below is lambda"
        )
    return (
        f"adjoint of {problem.name} (order {options.order}), applied at every stage of each "
        f"{options.scheme} step from the last to the first: w_<f> is the cotangent of the "
        "stage's right-hand side, <f> the stage state, mu_<f> its contribution to the "
        "cotangent of the state; on a face, i is the cell next to it"
    )


def program_hash(problem: PdeProblem) -> str:
    """A hash of the checked program alone (stable across compiler edits, unlike cache keys)."""
    return hashlib.sha256(repr(problem).encode()).hexdigest()


def compile_pde(
    problem: PdeProblem,
    options: FdOptions,
    backend: str = "numba",
    source_hash: str = "",
    dump_after: tuple[str, ...] = (),
    adjoint: bool = False,
    equations: bool = False,
) -> CompiledArtifact:
    """Run the fd pipeline for one problem and print the backend source; ``adjoint``: the
    group of an explicit step with its discrete adjoint (entries adjoint_step and
    adjoint_initial), which ``Solution.vjp`` drives; ``equations`` (with ``adjoint``): also
    the derived adjoint in readable form, in ``dumps["equations"]``."""
    if backend not in BACKENDS:
        raise UnsupportedError(
            f"unknown backend '{backend}'", None, "use numba or cupy", code="R407"
        )
    ctx = PassContext(
        problem=problem.name,
        order=options.order,
        dtype=options.dtype,
        tableau=TABLEAUS.get(options.scheme),
        scheme=options.scheme,
        source_name=Path(problem.span.file).name if problem.span else "",
        dump_after=dump_after,
    )
    lowered = lower_pde(problem, options.order, options.dtype)
    if "lower" in dump_after or "*" in dump_after:
        ctx.dumps["lower"] = dump_program(lowered.program)
    steady = problem.time is None
    pipeline = fd_pipeline(steady, options.scheme, adjoint)
    prog = run_pipeline(pipeline, lowered.program, ctx, verify_program, dump_program)
    info = FuseInput(
        fields=lowered.fields,
        params=tuple(lowered.params),
        initial=lowered.initial,
        axes=tuple(a.name for a in problem.axes),
        time=problem.time.name if problem.time else "t",
        source_lines=_source_lines(problem, lowered),
        periods=tuple((a.lo, a.hi - a.lo) if a.periodic else None for a in problem.axes),
    )

    def fuse_any(p, c):
        if adjoint and not steady and c.tableau is not None:
            return fuse_adjoint(p, c, info)
        return fuse_steady(p, c, info) if steady or c.tableau is None else fuse(p, c, info)

    if equations:
        from .passes.adjoint_text import adjoint_equations

        ctx.dumps["equations"] = adjoint_equations(prog, info, _equations_title(problem, options))
    fuse_pass = Pass("fuse", fuse_any, "stage or residual Programs -> KernelGroup")
    group = run_pipeline((fuse_pass,), prog, ctx)
    group = replace(group, source_hash=source_hash or program_hash(problem))
    if backend == "numba":
        from .backends.numba_emit import emit_numba

        source = emit_numba(group, VERSION)
        files = {f"{problem.name}.py": source}
    else:
        from .backends.cupy_emit import cuda_source, emit_cupy

        source = emit_cupy(group, VERSION)
        files = {f"{problem.name}.py": source, f"{problem.name}.cu": cuda_source(group, VERSION)}
    return CompiledArtifact(
        problem.name, backend, source, group, lowered, ctx.dumps, ctx.timings, files
    )
