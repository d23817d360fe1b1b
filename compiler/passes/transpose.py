"""Lowering of transposed Programs (the output of the rule table's reverse sweep) to kernels.

A transposed stencil ``ShiftTranspose`` splits into a gather, lowered inline (the cotangent's
halo is zero on a non-periodic axis, so reads that left the grid contribute nothing), and a
fold: the reads that landed on ghost cells, folded back onto the cells those ghosts
extrapolate, by one ``fold`` kernel per face (the transposed ghost weights). Parameter
cotangents (sums over the grid) become ``Write.total``s; a parameter of a boundary condition
also gets (dG/dp)^T of the cotangent each ghost read received, from the same fold kernels (the
rule table holds the ghosts fixed). Shared by the adjoints of explicit
steps (``fuse_adjoint``), of implicit steps and of steady problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from ...dsl.diagnostics import UnsupportedError
from ..ir.adjoint_ops import BroadcastInDim, ShiftTranspose
from ..ir.ops import (
    Broadcast,
    Coord,
    Input,
    Map,
    Param,
    Reduce,
    Shift,
    placeholder,
)
from ..ir.program import BoundaryRule, FaceRule, Program
from ..kernels import GroupMeta, Kernel, Launch, Read
from ..symbolic import interior_symbol
from .adjoint import boundary_params
from .fuse import (
    FuseInput,
    Stage,
    _canonical_to_kernel,
    assemble_kernel,
    coord_symbol,
    face_ghosts,
    grid_of,
    param_symbol,
    read_symbol,
    scalar_leaf,
)

# param name -> the (buffer, weight) pairs its cotangent is written into
ParamDestinations = dict[str, list[tuple[str, sympy.Expr]]]
# (axis, side) -> value key -> its (coefficient, Fold) terms on that face
FoldsByFace = dict[tuple[int, str], dict[str, list[tuple]]]


def adjoint_buffer(field: str) -> str:
    """lambda: the cotangent of the state ``field`` (the gradient, once the sweep is done)."""
    return f"{field}@adj"


def next_adjoint_buffer(field: str) -> str:
    """The cotangent of the state one step earlier, written while ``adjoint_buffer`` is read
    (the first adjoint stage reads lambda with its stencils, so it cannot update it in place);
    the two exchange roles after each adjoint step."""
    return f"{field}@adj2"


def weight_buffer(field: str, stage: int) -> str:
    """w_i: the cotangent of stage i's right-hand side of ``field``."""
    return f"{field}@w{stage}"


def param_buffer(param: str) -> str:
    """Per-cell contributions to the cotangent of ``param``."""
    return f"{param}@gp"


def shifted_by(shift: tuple[int, ...], axis: int, by: int) -> tuple[int, ...]:
    return tuple(s + by if a == axis else s for a, s in enumerate(shift))


@dataclass
class Fold:
    """A non-periodic ShiftTranspose met by the gather: its argument, where it was read, and
    the symbol that stands for it until its coefficient is known."""

    arg: int
    axis: int
    offset: int
    boundary: str
    shift: tuple[int, ...]
    symbol: sympy.Symbol


@dataclass
class Lowering:
    """Kernel-level expressions of a vjp Program's values at the kernel's point moved by
    ``shift`` cells: Inputs become reads of (renamed) buffers, times their ``scale`` if they
    have one; shifts move the point."""

    prog: Program
    rename: dict[str, str]
    scale: dict[str, sympy.Expr] = field(default_factory=dict)
    reads: dict = field(default_factory=dict)
    coords: set[int] = field(default_factory=set)
    folds: list[Fold] = field(default_factory=list)
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
            return self.scale.get(op.name, sympy.Integer(1)) * self.reads[(buffer, shift)].symbol
        if isinstance(op, Shift):
            return self.at(op.args[0], shifted_by(shift, op.axis, op.offset), depth)
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
        scalar = scalar_leaf(op)
        if scalar is not None:
            return scalar
        raise TypeError(f"cannot lower a {op.kind} into an adjoint kernel")

    def _transpose(self, op: ShiftTranspose, shift: tuple[int, ...], depth: int) -> sympy.Expr:
        rule = self.prog.boundaries.get(op.boundary)
        gather = self.at(op.args[0], shifted_by(shift, op.axis, -op.offset), depth + 1)
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
        self.folds.append(Fold(op.args[0], op.axis, op.offset, op.boundary, shift, symbol))
        self.gathers[symbol] = gather
        return symbol


def face_of(rule_faces, side: str) -> FaceRule:
    face = rule_faces[0 if side == "lo" else 1]
    if face is None:  # the forward step needed this face too, and fuse refused it there
        raise ValueError(f"no condition on the {side} face")
    return face


def split_folds(expr: sympy.Expr, lowering: Lowering) -> tuple[sympy.Expr, list[tuple]]:
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


def primal_rule(prog: Program, key: str) -> BoundaryRule:
    """The rule the forward step's ghosts were filled with: a transposed stencil names its
    homogeneous copy (``u:lin``, or ``u:adj`` in an implicit step's adjoint)."""
    for suffix in (":lin", ":adj"):
        if key.endswith(suffix) and key[: -len(suffix)] in prog.boundaries:
            return prog.boundaries[key[: -len(suffix)]]
    return prog.boundaries[key]


def ghost_parameter_derivatives(
    prog: Program,
    fold: Fold,
    side: str,
    info: FuseInput,
    params: tuple[str, ...],
    stage: Stage | None = None,
) -> list[dict[str, sympy.Expr]]:
    """dG_j/dp for each ghost j = 1..layers that ``fold`` reads and each parameter of its
    face's condition, in kernel symbols and ``interior_symbol(m)``, the primal cell m inward
    from the face (a Robin coefficient's derivative multiplies the state)."""
    face = face_of(primal_rule(prog, fold.boundary).faces[fold.axis], side)
    used = {
        s.name for e in (face.alpha, face.beta, face.data) for s in sympy.sympify(e).free_symbols
    }
    wanted = [p for p in params if p in used]
    if not wanted:
        return [{} for _ in range(abs(fold.offset))]
    along = {
        coord_symbol(b): coord_symbol(b) + s * sympy.Symbol(f"h{b}", real=True)
        for b, s in enumerate(fold.shift)
        if s and b != fold.axis
    }
    ghosts = face_ghosts(face, fold.axis, side, abs(fold.offset), info, stage=stage)
    out = []
    for g in ghosts:
        g = g.xreplace(along)
        derivs = {p: sympy.diff(g, param_symbol(p)) for p in wanted}
        out.append({p: d for p, d in derivs.items() if d != 0})
    return out


def fold_kernel(
    prog: Program,
    name: str,
    axis: int,
    side: str,
    contributions: dict[str, list[tuple]],
    destinations: dict[str, list[tuple[str, sympy.Expr]]],
    rename: dict[str, str],
    info: FuseInput,
    scalars: tuple[str, ...],
    scale: dict[str, sympy.Expr] | None = None,
    params: ParamDestinations | None = None,
    stage: Stage | None = None,
) -> tuple[Kernel, dict[str, int]]:
    """Fold the reads that landed on the ghosts of one face back onto the cells they
    extrapolate: cell m (inward from the face) gets sum_j w_jm x(reader of ghost j); each
    parameter of ``params`` that the face's condition uses gets sum_j (dG_j/dp) x(reader of
    ghost j) at the boundary cell (only its sum over the grid is read)."""
    ndim = grid_of(prog).ndim
    inward = 1 if side == "lo" else -1
    lowering = Lowering(prog, rename, scale or {}, fold_allowed=False)
    params = params or {}
    origin = (0,) * ndim
    per_cell: dict[tuple[str, int], sympy.Expr] = {}
    per_param: dict[str, sympy.Expr] = {}

    def primal(fold: Fold, m: int) -> sympy.Symbol:
        field = primal_rule(prog, fold.boundary).field
        buffer = rename.get(field, field)
        offsets = tuple(inward * m if a == axis else s for a, s in enumerate(fold.shift))
        if (buffer, offsets) not in lowering.reads:
            lowering.reads[(buffer, offsets)] = Read(read_symbol(buffer, offsets), buffer, offsets)
        return lowering.reads[(buffer, offsets)].symbol

    for fld, terms in contributions.items():
        for coef, fold in terms:
            layers = abs(fold.offset)
            face = face_of(prog.boundaries[fold.boundary].faces[axis], side)
            along = {
                coord_symbol(b): coord_symbol(b) + s * sympy.Symbol(f"h{b}", real=True)
                for b, s in enumerate(fold.shift)
                if s and b != axis
            }
            ghosts = [g.xreplace(along) for g in face_ghosts(face, axis, side, layers, info, False)]
            derivs = ghost_parameter_derivatives(prog, fold, side, info, tuple(params), stage)
            for j in range(1, layers + 1):
                reader = shifted_by(fold.shift, axis, inward * (layers - j))
                x = lowering.at(fold.arg, reader)
                for m in range(face.degree):
                    w = sympy.diff(ghosts[j - 1], interior_symbol(m))
                    if w != 0:
                        key = (fld, m)
                        per_cell[key] = per_cell.get(key, sympy.Integer(0)) + coef * w * x
                for p, d in derivs[j - 1].items():
                    cells = {
                        interior_symbol(m): primal(fold, m)
                        for m in range(face.degree)
                        if d.has(interior_symbol(m))
                    }
                    term = coef * d.xreplace(cells) * x
                    per_param[p] = per_param.get(p, sympy.Integer(0)) + term
    targets, exprs = [], []

    def write(buffer: str, offsets: tuple[int, ...], value: sympy.Expr) -> None:
        at = (buffer, offsets)
        if at not in lowering.reads:
            lowering.reads[at] = Read(read_symbol(buffer, offsets), buffer, offsets)
        targets.append(at)
        exprs.append(lowering.reads[at].symbol + value)

    for (fld, m), value in per_cell.items():
        offsets = tuple(inward * m if a == axis else 0 for a in range(ndim))
        for buffer, weight in destinations[fld]:
            if weight != 0:
                write(buffer, offsets, weight * value)
    for p, value in per_param.items():
        for buffer, weight in params[p]:
            if weight != 0:
                write(buffer, origin, weight * value)
    # ghost weights and data may vary along the face (a coefficient or data of y on x = 0)
    lowering.coords |= {a for a in range(ndim) if any(e.has(coord_symbol(a)) for e in exprs)}
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
    return kernel, offset_reads(lowering)


def offset_reads(lowering: Lowering) -> dict[str, int]:
    out: dict[str, int] = {}
    for buffer, offsets in lowering.reads:
        if any(offsets):
            out[buffer] = max(out.get(buffer, 0), *(abs(o) for o in offsets))
    return out


def shift_radius(prog: Program) -> int:
    return max([1] + [abs(op.offset) for op in prog.ops if isinstance(op, Shift)])


def adjoint_params(prog: Program, info: FuseInput) -> tuple[str, ...]:
    """The parameters whose cotangents the adjoint computes: those the right-hand sides, the
    boundary conditions or the initial condition use."""
    used = {op.name for op in prog.ops if isinstance(op, Param)} | boundary_params(prog)
    for e in info.initial.values():
        used |= {s.name for s in sympy.sympify(e).free_symbols if s.name in info.params}
    return tuple(p for p in info.params if p in used)


def cotangent_buffer(field: str) -> str:
    """Implicit steps: mu, the cotangent of the step's explicit half b (J^T mu = lambda)."""
    return f"{field}@mu"


def history_cotangent(field: str, fresh: bool = False) -> str:
    """imex: the cotangent of the history N(u_prev) (``fresh``: the one being computed)."""
    return f"{field}@lh2" if fresh else f"{field}@lh"


def boundary_folds(
    prog: Program,
    values: dict[str, int],
    rename: dict[str, str],
    scale: dict[str, sympy.Expr] | None = None,
) -> FoldsByFace:
    """The folds of ``values`` by face (axis, side) and value key, found by lowering them at
    the origin (the gathers are dropped: a residual's field cotangents are wanted only for
    the cotangents their ghost reads received)."""
    lowering = Lowering(prog, rename, scale or {})
    origin = (0,) * grid_of(prog).ndim
    out: FoldsByFace = {}
    for key, value in values.items():
        file_folds(out, key, split_folds(lowering.at(value, origin), lowering)[1])
    return out


def file_folds(out: FoldsByFace, key: str, terms: list[tuple]) -> None:
    """Add the folds ``terms`` (coefficient, Fold) of value ``key`` under their face."""
    for coef, fold in terms:
        side = "hi" if fold.offset > 0 else "lo"
        out.setdefault((fold.axis, side), {}).setdefault(key, []).append((coef, fold))


def transposed_entry(
    prog: Program,
    name: str,
    values: dict[str, int],
    destinations: dict[str, list[tuple[str, sympy.Expr]]],
    *,
    rename: dict[str, str],
    info: FuseInput,
    scalars: tuple[str, ...],
    kernels: dict[str, Kernel],
    c: float,
    comments: list[str],
    accumulate: bool,
    totals: frozenset[str] = frozenset(),
    ghosts: int | None = None,
    gather: str | None = None,
    scale: dict[str, sympy.Expr] | None = None,
    bases: dict[str, tuple[str, sympy.Expr]] | None = None,
    params: ParamDestinations | None = None,
    fold_only: dict[str, int] | None = None,
    stage: Stage | None = None,
) -> list[Launch]:
    """The launches that write each value of ``values`` (ids of a transposed Program, by key)
    into its ``destinations`` (buffer, weight): one gather kernel (``gather``, default
    ``name``) writing weight * value (added to the buffer if ``accumulate``; summed over the
    grid for the buffers in ``totals``), then one fold kernel per face its transposed stencils
    reach (``<name>_fold_<axis>_<side>``, always added). Before them, buffers read aside get
    their periodic halos, and with ``ghosts`` (a halo width) the state fields their ghosts
    at t + c dt; without it the forward step has filled them already. ``scale``: factors of
    renamed Inputs (a cotangent read from a buffer that holds a multiple of it); ``bases``:
    a destination written as coefficient * (another buffer) + weight * value, overriding
    ``accumulate`` (a first stage that initialises what later stages accumulate into).
    ``params``: where the boundary conditions' parameters write their ghosts' part (see
    ``fold_kernel``); ``fold_only``: values (a residual's field cotangents) transposed only
    for those folds, their gathers dropped."""
    from .fuse import halo_launches

    scale = scale or {}
    bases = bases or {}
    lowering = Lowering(prog, rename, scale)
    origin = (0,) * grid_of(prog).ndim
    writes, exprs = [], []
    folds: FoldsByFace = {}
    for key, value in values.items():
        expr, terms = split_folds(lowering.at(value, origin), lowering)
        file_folds(folds, key, terms)
        for buffer, weight in destinations[key]:
            term = weight * expr
            base = bases.get(buffer)
            adds = buffer in totals or (accumulate and base is None)
            if term == 0 and adds:  # a parameter only a boundary condition reads
                continue
            if base is None and accumulate and buffer not in totals:
                base = (buffer, sympy.Integer(1))
            if base is not None:
                at = (base[0], origin)
                if at not in lowering.reads:
                    lowering.reads[at] = Read(read_symbol(base[0], origin), base[0], origin)
                term = base[1] * lowering.reads[at].symbol + term
            writes.append((buffer, ()))
            exprs.append(term)
    if params and fold_only:
        for face, by_key in boundary_folds(prog, fold_only, rename, scale).items():
            for key, found in by_key.items():
                folds.setdefault(face, {}).setdefault(key, []).extend(found)
        destinations = {**{key: [] for key in fold_only}, **destinations}
    built = []
    if writes:  # none: only folds write (the residual of parameters only a boundary reads)
        gathered = assemble_kernel(
            gather or name,
            "stencil",
            writes,
            exprs,
            lowering.reads,
            lowering.coords,
            comments,
            scalars,
            info,
            totals=totals,
        )
        built.append((gathered, offset_reads(lowering)))
    for (axis, side), contributions in sorted(folds.items()):
        folded = fold_kernel(
            prog,
            f"{name}_fold_{axis}_{side}",
            axis,
            side,
            contributions,
            destinations,
            rename,
            info,
            scalars,
            scale,
            params,
            stage,
        )
        if folded[0].writes:  # none: a face whose condition no parameter enters, fold only
            built.append(folded)
    periodic = grid_of(prog).periodic
    reach: dict[str, int] = {}
    for _, r in built:
        for b, n in r.items():
            reach[b] = max(reach.get(b, 0), n)
    state = {b: n for b, n in reach.items() if ghosts is not None and b in info.fields}
    launches = halo_launches(prog, state, ghosts or 0, info, scalars, kernels, c, stage)
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


def adjoint_meta(prog: Program, info: FuseInput) -> GroupMeta:
    """What an adjoint group tells the runtime: the parameters it differentiates."""
    return GroupMeta(adjoint_params=adjoint_params(prog, info))


def initial_gradient_kernel(
    info: FuseInput, params: tuple[str, ...], ndim: int, scalars: tuple[str, ...]
) -> Kernel | None:
    """gp += sum_f lambda_f * d(initial_f)/dp, summed over the grid, for the parameters the initial
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
