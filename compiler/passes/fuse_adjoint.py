"""fuse_adjoint: one explicit Runge-Kutta step and its discrete adjoint, in one KernelGroup.

Input: the output of ``adjoint`` (outputs ``rhs:<f>``, ``vjp:<f>`` and ``vjp:<p>``). Output: the
forward group of ``fuse`` (its step recomputes the stage states S_i of a step, left in the stage
buffers) with a halo twice the stencil radius, plus the entries

- ``adjoint_step``: the reverse sweep of one step. With lambda the cotangent of the new state,
  the cotangent of stage i's right-hand side is w_i = dt b_i lambda + dt sum_{m>i} a_mi mu_m,
  where mu_m = (df/du)(S_m)^T w_m. Stages run from last to first; stage m's kernel computes
  mu_m, adds it into lambda and dt a_mi mu_m into every earlier w_i, and adds (df/dp)^T w_m,
  cell by cell, into one buffer per parameter (summed by the runtime once, at the end);
- ``adjoint_initial``: the cotangent of the parameters through the initial condition.

A transposed stencil ``ShiftTranspose`` splits into a gather, lowered inline (the cotangent's
halo is zero on a non-periodic axis, so reads that left the grid contribute nothing), and a
fold: the reads that landed on ghost cells, folded back onto the cells those ghosts
extrapolate, by one ``fold`` kernel per face (the transposed ghost weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy

from ...dsl.diagnostics import UnsupportedError
from ..ir.adjoint_ops import BroadcastInDim, ShiftTranspose
from ..ir.ops import (
    Broadcast,
    Const,
    Coord,
    Input,
    Map,
    Param,
    Reduce,
    Shift,
    Spacing,
    StepSize,
    Time,
    placeholder,
)
from ..ir.program import FaceRule, Program
from ..kernels import Kernel, KernelGroup, Launch, Read
from ..symbolic import interior_symbol
from .adjoint import boundary_params, cotangent
from .fuse import (
    DT,
    FuseInput,
    T,
    _canonical_to_kernel,
    assemble_kernel,
    coord_symbol,
    face_ghosts,
    fuse,
    grid_of,
    param_symbol,
    read_symbol,
)
from .integrate import _row, integrate, stage_input
from .manager import PassContext
from .simplify import simplify


def adjoint_buffer(field: str) -> str:
    """lambda: the cotangent of the state ``field`` (the gradient, once the sweep is done)."""
    return f"{field}@adj"


def weight_buffer(field: str, stage: int) -> str:
    """w_i: the cotangent of stage i's right-hand side of ``field``."""
    return f"{field}@w{stage}"


def param_buffer(param: str) -> str:
    """Per-cell contributions to the cotangent of ``param``."""
    return f"{param}@gp"


def _shifted(shift: tuple[int, ...], axis: int, by: int) -> tuple[int, ...]:
    return tuple(s + by if a == axis else s for a, s in enumerate(shift))


@dataclass
class _Fold:
    """A non-periodic ShiftTranspose met by the gather: its argument, where it was read, and
    the symbol that stands for it until its coefficient is known."""

    arg: int
    axis: int
    offset: int
    boundary: str
    shift: tuple[int, ...]
    symbol: sympy.Symbol


@dataclass
class _Lowering:
    """Kernel-level expressions of a vjp Program's values at the kernel's point moved by
    ``shift`` cells: Inputs become reads of (renamed) buffers, shifts move the point."""

    prog: Program
    rename: dict[str, str]
    reads: dict = field(default_factory=dict)
    coords: set[int] = field(default_factory=set)
    folds: list[_Fold] = field(default_factory=list)
    fold_allowed: bool = True
    memo: dict = field(default_factory=dict)
    gathers: dict = field(default_factory=dict)  # fold symbol -> its gather expression

    def at(self, i: int, shift: tuple[int, ...], depth: int = 0) -> sympy.Expr:
        key = (i, shift, depth)
        if key not in self.memo:
            self.memo[key] = self._lower(i, shift, depth)
        return self.memo[key]

    def _lower(self, i: int, shift: tuple[int, ...], depth: int) -> sympy.Expr:
        op = self.prog.ops[i]
        if isinstance(op, Input):
            buffer = self.rename.get(op.name, op.name)
            if (buffer, shift) not in self.reads:
                self.reads[(buffer, shift)] = Read(read_symbol(buffer, shift), buffer, shift)
            return self.reads[(buffer, shift)].symbol
        if isinstance(op, Shift):
            return self.at(op.args[0], _shifted(shift, op.axis, op.offset), depth)
        if isinstance(op, ShiftTranspose):
            return self._transpose(op, shift, depth)
        if isinstance(op, Map):
            return op.body.xreplace(
                {placeholder(j): self.at(a, shift, depth) for j, a in enumerate(op.args)}
            )
        if isinstance(op, Reduce):  # a parameter's cotangent: its per-cell terms
            if op.op != "sum" or len(self.prog.ops[op.args[0]].shape) != len(op.axes):
                raise NotImplementedError(f"adjoint kernels cannot lower a partial {op.kind}")
            return self.at(op.args[0], shift, depth)
        if isinstance(op, Broadcast | BroadcastInDim):
            if self.prog.ops[op.args[0]].shape:
                raise NotImplementedError(f"adjoint kernels cannot lower a {op.kind} of an array")
            return self.at(op.args[0], shift, depth)
        if isinstance(op, Coord):
            self.coords.add(op.axis)
            h = sympy.Symbol(f"h{op.axis}", real=True)
            return coord_symbol(op.axis) + shift[op.axis] * h
        if isinstance(op, Param):
            return param_symbol(op.name)
        if isinstance(op, Time):
            return T
        if isinstance(op, StepSize):
            return DT
        if isinstance(op, Spacing):
            return sympy.Symbol(f"h{op.axis}", real=True)
        if isinstance(op, Const):
            return sympy.Float(op.value)
        raise TypeError(f"cannot lower a {op.kind} into an adjoint kernel")

    def _transpose(self, op: ShiftTranspose, shift: tuple[int, ...], depth: int) -> sympy.Expr:
        rule = self.prog.boundaries.get(op.boundary)
        gather = self.at(op.args[0], _shifted(shift, op.axis, -op.offset), depth + 1)
        if rule is None or rule.is_periodic(op.axis):
            return gather
        if depth or not self.fold_allowed:
            raise UnsupportedError(
                "the adjoint cannot yet differentiate a mixed derivative across two "
                "non-periodic axes (its ghost corners)",
                None,
                "make one of the two axes periodic, or write the term without a mixed derivative",
                code="R414",
            )
        symbol = sympy.Symbol(f"fold{len(self.folds)}", real=True)
        self.folds.append(_Fold(op.args[0], op.axis, op.offset, op.boundary, shift, symbol))
        self.gathers[symbol] = gather
        return symbol


def _face(rule_faces, side: str) -> FaceRule:
    face = rule_faces[0 if side == "lo" else 1]
    if face is None:  # the forward step needed this face too, and fuse refused it there
        raise ValueError(f"no condition on the {side} face")
    return face


def _split(expr: sympy.Expr, lowering: _Lowering) -> tuple[sympy.Expr, list[tuple]]:
    """The gather expression of ``expr`` and its folds with their (constant) coefficients."""
    symbols = [f.symbol for f in lowering.folds if expr.has(f.symbol)]
    terms = []
    for f in lowering.folds:
        if f.symbol not in symbols:
            continue
        coef = sympy.diff(expr, f.symbol)
        if coef.free_symbols & (set(symbols) | {r.symbol for r in lowering.reads.values()}):
            raise NotImplementedError("a transposed stencil enters its cotangent nonlinearly")
        terms.append((coef, f))
    return expr.xreplace(lowering.gathers), terms


def _fold_kernel(
    prog: Program,
    name: str,
    axis: int,
    side: str,
    contributions: dict[str, list[tuple]],
    destinations: dict[str, list[tuple[str, sympy.Expr]]],
    rename: dict[str, str],
    info: FuseInput,
    scalars: tuple[str, ...],
) -> tuple[Kernel, dict[str, int]]:
    """Fold the reads that landed on the ghosts of one face back onto the cells they
    extrapolate: cell m (inward from the face) gets sum_j w_jm x(reader of ghost j)."""
    ndim = grid_of(prog).ndim
    inward = 1 if side == "lo" else -1
    lowering = _Lowering(prog, rename, fold_allowed=False)
    per_cell: dict[tuple[str, int], sympy.Expr] = {}
    for fld, terms in contributions.items():
        for coef, fold in terms:
            layers = abs(fold.offset)
            face = _face(prog.boundaries[fold.boundary].faces[axis], side)
            along = {
                coord_symbol(b): coord_symbol(b) + s * sympy.Symbol(f"h{b}", real=True)
                for b, s in enumerate(fold.shift)
                if s and b != axis
            }
            ghosts = [g.xreplace(along) for g in face_ghosts(face, axis, side, layers, info, False)]
            for j in range(1, layers + 1):
                reader = _shifted(fold.shift, axis, inward * (layers - j))
                x = lowering.at(fold.arg, reader)
                for m in range(face.degree):
                    w = sympy.diff(ghosts[j - 1], interior_symbol(m))
                    if w != 0:
                        key = (fld, m)
                        per_cell[key] = per_cell.get(key, sympy.Integer(0)) + coef * w * x
    targets, exprs = [], []
    for (fld, m), value in per_cell.items():
        offsets = tuple(inward * m if a == axis else 0 for a in range(ndim))
        for buffer, weight in destinations[fld]:
            at = (buffer, offsets)
            if at not in lowering.reads:
                lowering.reads[at] = Read(read_symbol(buffer, offsets), buffer, offsets)
            targets.append(at)
            exprs.append(lowering.reads[at].symbol + weight * value)
    kernel = assemble_kernel(
        name,
        "fold",
        targets,
        exprs,
        lowering.reads,
        lowering.coords,
        [f"adjoint: ghost reads folded back on the {side} face of {info.axes[axis]}"],
        scalars,
        info,
        axis=axis,
        side=side,
    )
    return kernel, _offset_reads(lowering)


def _offset_reads(lowering: _Lowering) -> dict[str, int]:
    out: dict[str, int] = {}
    for buffer, offsets in lowering.reads:
        if any(offsets):
            out[buffer] = max(out.get(buffer, 0), *(abs(o) for o in offsets))
    return out


def _radius(prog: Program) -> int:
    return max([1] + [abs(op.offset) for op in prog.ops if isinstance(op, Shift)])


def adjoint_params(prog: Program, info: FuseInput) -> tuple[str, ...]:
    """The parameters whose cotangents the adjoint computes: those the right-hand sides or the
    initial condition use, unless a boundary condition uses them."""
    used = {op.name for op in prog.ops if isinstance(op, Param)}
    for e in info.initial.values():
        used |= {s.name for s in sympy.sympify(e).free_symbols if s.name in info.params}
    return tuple(p for p in info.params if p in used and p not in boundary_params(prog))


def fuse_adjoint(prog: Program, ctx: PassContext, info: FuseInput) -> KernelGroup:
    tableau = ctx.tableau
    assert tableau is not None, "the adjoint of an explicit step needs its tableau"
    rhs = {k: v for k, v in prog.outputs.items() if k.startswith("rhs:")}
    forward_prog = simplify(integrate(replace(prog, outputs=rhs), ctx), ctx)
    group = fuse(forward_prog, ctx, info, min_halo=2 * _radius(prog))
    scalars = group.kernel("initial").scalars
    params = adjoint_params(prog, info)
    periodic = grid_of(prog).periodic
    s = tableau.stages

    kernels: dict[str, Kernel] = {}
    start_writes = []
    for f in info.fields:
        origin = (0,) * group.ndim
        lam = Read(read_symbol(adjoint_buffer(f), origin), adjoint_buffer(f), origin)
        for i in range(1, s + 1):
            start_writes.append((weight_buffer(f, i), DT * sympy.Float(tableau.b[i - 1]), lam))
    start = assemble_kernel(
        "adjoint_start",
        "stencil",
        [(w, ()) for w, _, _ in start_writes],
        [coef * lam.symbol for _, coef, lam in start_writes],
        {(lam.array, lam.offsets): lam for _, _, lam in start_writes},
        set(),
        ["adjoint: cotangents of the stage right-hand sides from that of the new state"],
        scalars,
        info,
    )
    kernels[start.name] = start
    launches = [Launch(start.name, start.arrays)]

    for m in range(s, 0, -1):
        rename = {f: stage_input(f, tableau, m) for f in info.fields}
        rename |= {cotangent(f): weight_buffer(f, m) for f in info.fields}
        destinations = {
            f: [(adjoint_buffer(f), sympy.Integer(1))]
            + [
                (weight_buffer(f, i), DT * sympy.Float(_row(tableau, m)[i - 1]))
                for i in range(1, m)
                if _row(tableau, m)[i - 1]
            ]
            for f in info.fields
        }
        lowering = _Lowering(prog, rename)
        origin = (0,) * group.ndim
        targets, exprs = [], []
        folds: dict[tuple[int, str], dict[str, list[tuple]]] = {}
        for f in info.fields:
            gather, terms = _split(lowering.at(prog.outputs[f"vjp:{f}"], origin), lowering)
            for coef, fold in terms:
                side = "hi" if fold.offset > 0 else "lo"
                folds.setdefault((fold.axis, side), {}).setdefault(f, []).append((coef, fold))
            for buffer, weight in destinations[f]:
                key = (buffer, origin)
                if key not in lowering.reads:
                    lowering.reads[key] = Read(read_symbol(buffer, origin), buffer, origin)
                targets.append((buffer, ()))
                exprs.append(lowering.reads[key].symbol + weight * gather)
        for p in params:
            if f"vjp:{p}" not in prog.outputs:
                continue
            targets.append((param_buffer(p), ()))  # summed over the grid (Write.total)
            exprs.append(lowering.at(prog.outputs[f"vjp:{p}"], origin))
        gather_kernel = assemble_kernel(
            f"adjoint_stage{m}",
            "stencil",
            targets,
            exprs,
            lowering.reads,
            lowering.coords,
            [
                f"adjoint of stage {m}",
                *(info.source_lines[f] for f in info.fields if f in info.source_lines),
            ],
            scalars,
            info,
            totals=frozenset(param_buffer(p) for p in params),
        )
        built = [(gather_kernel, _offset_reads(lowering))]
        for (axis, side), contributions in sorted(folds.items()):
            built.append(
                _fold_kernel(
                    prog,
                    f"adjoint_stage{m}_fold_{axis}_{side}",
                    axis,
                    side,
                    contributions,
                    destinations,
                    rename,
                    info,
                    scalars,
                )
            )
        c = tableau.c[m - 1]
        wrapped: set[str] = set()
        for kernel, reach in built:
            for buffer in sorted(set(reach) - wrapped):  # periodic halos of what is read aside
                for axis in range(group.ndim):
                    if periodic[axis]:
                        name = f"wrap_{axis}"
                        kernels.setdefault(name, Kernel(name, "wrap", ("a",), (), axis=axis))
                        launches.append(Launch(name, (buffer,), c))
                wrapped.add(buffer)
            kernels[kernel.name] = kernel
            launches.append(Launch(kernel.name, kernel.arrays, c))

    entries = [("adjoint_step", tuple(launches))]
    init = _initial_kernel(info, params, group.ndim, scalars)
    if init is not None:
        kernels[init.name] = init
        entries.append(("adjoint_initial", (Launch(init.name, init.arrays),)))
    buffers = list(group.buffers)
    for f in info.fields:
        buffers += [adjoint_buffer(f), *(weight_buffer(f, i) for i in range(1, s + 1))]
    buffers += [param_buffer(p) for p in params]
    existing = {k.name: k for k in group.kernels}
    return replace(
        group,
        kernels=tuple({**existing, **kernels}.values()),
        buffers=tuple(buffers),
        entries=tuple(entries),
        meta={
            **group.meta,
            "adjoint_params": params,
            "boundary_params": tuple(sorted(boundary_params(prog) & set(info.params))),
        },
    )


def param_vjp_kernel(
    prog: Program, info: FuseInput, scalars: tuple[str, ...]
) -> tuple[Kernel, dict[str, int], tuple[str, ...]]:
    """Steady problems: gp_p = (dR/dp)^T lambda cell by cell (lambda in ``<f>@adj``), from the
    outputs ``vjp:<p>`` of ``adjoint``; also the offset reads (halo) and the parameters."""
    params = adjoint_params(prog, info)
    rename = {cotangent(f, steady=True): adjoint_buffer(f) for f in info.fields}
    lowering = _Lowering(prog, rename, fold_allowed=False)
    origin = (0,) * grid_of(prog).ndim
    targets, exprs = [], []
    for p in params:
        if f"vjp:{p}" in prog.outputs:
            targets.append((param_buffer(p), ()))
            exprs.append(lowering.at(prog.outputs[f"vjp:{p}"], origin))
    kernel = assemble_kernel(
        "param_vjp_kernel",
        "stencil",
        targets,
        exprs,
        lowering.reads,
        lowering.coords,
        ["adjoint: (dR/dp)^T lambda, cell by cell"],
        scalars,
        info,
    )
    reach = _offset_reads(lowering)
    assert not any(b.endswith("@adj") for b in reach), "cotangents are read in place"
    return kernel, reach, params


def _initial_kernel(
    info: FuseInput, params: tuple[str, ...], ndim: int, scalars: tuple[str, ...]
) -> Kernel | None:
    """gp += sum_f lambda_f * d(initial_f)/dp, cell by cell, for the parameters the initial
    condition uses (lambda: the cotangent of the initial state)."""
    origin = (0,) * ndim
    reads: dict = {}
    coords: set[int] = set()
    targets, exprs = [], []
    for p in params:
        total = sympy.Integer(0)
        for f in info.fields:
            d = sympy.diff(sympy.sympify(info.initial.get(f, 0)), sympy.Symbol(p))
            if d == 0:
                continue
            key = (adjoint_buffer(f), origin)
            reads.setdefault(key, Read(read_symbol(*key), *key))
            e = _canonical_to_kernel(d, info)
            coords |= {a for a in range(ndim) if e.has(coord_symbol(a))}
            total += reads[key].symbol * e
        if total != 0:
            targets.append((param_buffer(p), ()))
            exprs.append(total)
    if not targets:
        return None
    return assemble_kernel(
        "adjoint_initial_kernel",
        "stencil",
        targets,
        exprs,
        reads,
        coords,
        ["adjoint: parameters through the initial condition"],
        scalars,
        info,
        totals=frozenset(param_buffer(p) for p in params),
    )


def adjoint_equations(prog: Program, info: FuseInput, title: str) -> str:
    """The derived adjoint in readable form: per field, the transposed right-hand side
    mu = (df/du)^T w as a gather over neighbours plus the folds at each face, and per
    parameter its cell-by-cell term (the output of ``ritz show --adjoint``)."""
    ndim = grid_of(prog).ndim
    index = "ijk"[:ndim]

    def readable(expr: sympy.Expr, lowering: _Lowering, at: tuple[int, ...]) -> str:
        subs = {}
        for (buffer, offsets), read in lowering.reads.items():
            parts = []
            for a, o in enumerate(offsets):
                o += at[a] if at else 0
                parts.append(index[a] + (f"{o:+d}" if o else ""))
            subs[read.symbol] = sympy.Symbol(f"{buffer}[{','.join(parts)}]")
        for a, name in enumerate(info.axes):
            subs[sympy.Symbol(f"h{a}", real=True)] = sympy.Symbol(f"h_{name}")
            subs[coord_symbol(a)] = sympy.Symbol(name)
        subs |= {param_symbol(p): sympy.Symbol(p) for p in info.params}
        return str(sympy.factor_terms(sympy.expand(expr.xreplace(subs))))

    origin = (0,) * ndim

    def describe(label: str, value: int, rename: dict[str, str], folds: bool = True) -> None:
        lowering = _Lowering(prog, rename)
        gather, terms = _split(lowering.at(value, origin), lowering)
        lines.append(f"  {label} {readable(gather, lowering, origin)}")
        for coef, fold in terms if folds else ():
            side = "hi" if fold.offset > 0 else "lo"
            face = _face(prog.boundaries[fold.boundary].faces[fold.axis], side)
            ghosts = face_ghosts(face, fold.axis, side, abs(fold.offset), info, False)
            inward = 1 if side == "lo" else -1
            inner = _Lowering(prog, rename, fold_allowed=False)
            for j in range(1, abs(fold.offset) + 1):
                reader = _shifted(fold.shift, fold.axis, inward * (abs(fold.offset) - j))
                x = inner.at(fold.arg, reader)
                for m in range(face.degree):
                    w = sympy.diff(ghosts[j - 1], interior_symbol(m))
                    if w != 0:
                        cell = "the cell next to it" if m == 0 else f"cell {m + 1} from it"
                        lines.append(
                            f"    + on the {side} face of {info.axes[fold.axis]}, {cell}: "
                            f"{readable(coef * w * x, inner, ())}"
                        )

    cells = ",".join(index)
    params = adjoint_params(prog, info)
    lines = [title]
    if any(name.startswith("vjp_") for name in prog.outputs):  # an implicit step
        from .theta import history_buffer, rhs_buffer

        for kind, when in (("explicit", "every step"), ("start", "a first step")):
            if f"vjp_{kind}:{info.fields[0]}" not in prog.outputs:
                continue
            lines.append(f"  {when}, with the old state (b: the explicit half, at t):")
            rename = {f"bar:{kind}:{rhs_buffer(f)}": f"mu_{f}" for f in info.fields}
            rename |= {f"bar:{kind}:{history_buffer(f)}": f"lh_{f}" for f in info.fields}
            for f in info.fields:
                describe(f"lambda_{f}[{cells}] =", prog.outputs[f"vjp_{kind}:{f}"], rename)
                if f"vjp_{kind}:{history_buffer(f)}" in prog.outputs:
                    value = prog.outputs[f"vjp_{kind}:{history_buffer(f)}"]
                    describe(f"lh_{f}[{cells}] (history) =", value, rename)
            for p in params:
                if f"vjp_{kind}:{p}" in prog.outputs:
                    describe(
                        f"dL/d{p} += sum over cells of", prog.outputs[f"vjp_{kind}:{p}"], rename
                    )
        lines.append("  with the new state (at t + dt):")
        rename = {f"bar:res:{f}": f"mu_{f}" for f in info.fields}
        for p in params:
            if f"vjp_res:{p}" in prog.outputs:
                describe(f"dL/d{p} -= sum over cells of", prog.outputs[f"vjp_res:{p}"], rename)
        return "\n".join(lines) + "\n"
    steady = any(name.startswith("res:") for name in prog.outputs)
    rename = {cotangent(f, steady): f"w_{f}" for f in info.fields}
    if steady and not params:
        lines.append("  (no parameters: the gradient is lambda itself)")
    for f in info.fields:
        if f"vjp:{f}" in prog.outputs:
            describe(f"mu_{f}[{cells}] =", prog.outputs[f"vjp:{f}"], rename)
    for p in params:
        if f"vjp:{p}" in prog.outputs:
            label = f"dL/d{p} = -sum over cells of" if steady else f"dL/d{p} += sum over cells of"
            describe(label, prog.outputs[f"vjp:{p}"], rename)
    return "\n".join(lines) + "\n"


def cotangent_buffer(field: str) -> str:
    """Implicit steps: mu, the cotangent of the step's explicit half b (J^T mu = lambda)."""
    return f"{field}@mu"


def history_cotangent(field: str, fresh: bool = False) -> str:
    """imex: the cotangent of the history N(u_prev) (``fresh``: the one being computed)."""
    return f"{field}@lh2" if fresh else f"{field}@lh"


def _vjp_entry(
    prog: Program,
    name: str,
    targets: list[tuple[str, int, int, bool]],
    rename: dict[str, str],
    info: FuseInput,
    scalars: tuple[str, ...],
    halo: int,
    kernels: dict[str, Kernel],
    c: float,
) -> list[Launch]:
    """Launches writing, for each (buffer, value id, sign, total) of ``targets``, buffer =
    sign * value (``total``: its sum over the grid, see ``Write.total``): a gather kernel,
    then the folds of its transposed stencils. State
    fields read aside get their ghosts (at t + c dt), cotangents their periodic halos."""
    from .fuse import halo_launches

    lowering = _Lowering(prog, rename)
    origin = (0,) * grid_of(prog).ndim
    writes, exprs = [], []
    folds: dict[tuple[int, str], dict[str, list[tuple]]] = {}
    for buffer, value, sign, _total in targets:
        gather, terms = _split(lowering.at(value, origin), lowering)
        for coef, fold in terms:
            side = "hi" if fold.offset > 0 else "lo"
            folds.setdefault((fold.axis, side), {}).setdefault(buffer, []).append(
                (sign * coef, fold)
            )
        writes.append((buffer, ()))
        exprs.append(sign * gather)
    gather_kernel = assemble_kernel(
        f"{name}_kernel",
        "stencil",
        writes,
        exprs,
        lowering.reads,
        lowering.coords,
        [f"adjoint: {name}"],
        scalars,
        info,
        totals=frozenset(b for b, _, _, total in targets if total),
    )
    built = [(gather_kernel, _offset_reads(lowering))]
    for (axis, side), contributions in sorted(folds.items()):
        built.append(
            _fold_kernel(
                prog,
                f"{name}_fold_{axis}_{side}",
                axis,
                side,
                contributions,
                {b: [(b, sympy.Integer(1))] for b in contributions},
                rename,
                info,
                scalars,
            )
        )
    periodic = grid_of(prog).periodic
    launches: list[Launch] = []
    reach: dict[str, int] = {}
    for _, r in built:
        for b, n in r.items():
            reach[b] = max(reach.get(b, 0), n)
    state = {b: n for b, n in reach.items() if b in info.fields}
    launches += halo_launches(prog, state, halo, info, scalars, kernels, c)
    for b in sorted(set(reach) - set(state)):
        for axis in range(len(periodic)):
            if periodic[axis]:
                wrap = f"wrap_{axis}"
                kernels.setdefault(wrap, Kernel(wrap, "wrap", ("a",), (), axis=axis))
                launches.append(Launch(wrap, (b,), c))
    for kernel, _ in built:
        kernels[kernel.name] = kernel
        launches.append(Launch(kernel.name, kernel.arrays, c))
    return launches


def theta_adjoint(
    prog: Program, info: FuseInput, scalars: tuple[str, ...], halo: int, kernels: dict
) -> tuple[list[tuple[str, tuple[Launch, ...]]], list[str], dict]:
    """The entries of an implicit step's adjoint (see runtime/adjoint.py): ``adjoint_residual``
    (gp -= (dR/dp)^T mu at t + dt, the new state in the fields), ``adjoint_explicit`` and
    ``adjoint_start`` (lambda = (db/du)^T mu + (dN/du)^T lambda_h, the history's cotangent
    and gp += (db/dp)^T mu + (dN/dp)^T lambda_h, at t, the old state in the fields), and
    ``adjoint_initial``; also the buffers they add and the group's meta."""
    from .theta import history_buffer, rhs_buffer

    params = adjoint_params(prog, info)
    fields = info.fields
    imex = any(f"vjp_explicit:{history_buffer(f)}" in prog.outputs for f in fields)
    entries = []
    for kind in ("explicit", "start"):
        if f"vjp_{kind}:{fields[0]}" not in prog.outputs:
            continue
        rename = {f"bar:{kind}:{rhs_buffer(f)}": cotangent_buffer(f) for f in fields}
        rename |= {f"bar:{kind}:{history_buffer(f)}": history_cotangent(f) for f in fields}
        targets = [(adjoint_buffer(f), prog.outputs[f"vjp_{kind}:{f}"], 1, False) for f in fields]
        if kind == "explicit" and imex:
            targets += [
                (
                    history_cotangent(f, True),
                    prog.outputs[f"vjp_explicit:{history_buffer(f)}"],
                    1,
                    False,
                )
                for f in fields
            ]
        targets += [
            (param_buffer(p), prog.outputs[f"vjp_{kind}:{p}"], 1, True)
            for p in params
            if f"vjp_{kind}:{p}" in prog.outputs
        ]
        launches = _vjp_entry(
            prog, f"adjoint_{kind}", targets, rename, info, scalars, halo, kernels, 0.0
        )
        entries.append((f"adjoint_{kind}", tuple(launches)))
    residual = [
        (param_buffer(p), prog.outputs[f"vjp_res:{p}"], -1, True)
        for p in params
        if f"vjp_res:{p}" in prog.outputs
    ]
    if residual:
        rename = {f"bar:res:{f}": cotangent_buffer(f) for f in fields}
        launches = _vjp_entry(
            prog, "adjoint_residual", residual, rename, info, scalars, halo, kernels, 1.0
        )
        entries.append(("adjoint_residual", tuple(launches)))
    init = _initial_kernel(info, params, grid_of(prog).ndim, scalars)
    if init is not None:
        kernels[init.name] = init
        entries.append(("adjoint_initial", (Launch(init.name, init.arrays),)))
    buffers = [b for f in fields for b in (adjoint_buffer(f), cotangent_buffer(f))]
    if imex:
        buffers += [b for f in fields for b in (history_cotangent(f), history_cotangent(f, True))]
    buffers += [param_buffer(p) for p in params]
    meta = {
        "adjoint_params": params,
        "boundary_params": tuple(sorted(boundary_params(prog) & set(info.params))),
    }
    return entries, buffers, meta
