"""fuse: stage Programs -> a KernelGroup of fused stencil, ghost, wrap and init kernels.

Input: the output of ``integrate`` (outputs ``stage<i>:<buffer>``, flat Maps over leaves and
Shift chains of Inputs). Output: a KernelGroup in which each stage is one stencil loop nest that
reads its stage inputs with offsets, computes every field's right-hand side and writes every
stage combination at once; before each stage, the halo of each array it reads with offsets is
filled by ghost kernels (boundary conditions) or wrap kernels (periodic axes).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from ...dsl.remainder import Remainder
from ..ir.ops import (
    Const,
    Coord,
    Input,
    Map,
    Op,
    Param,
    Shift,
    Spacing,
    StepSize,
    Time,
    placeholder,
)
from ..ir.program import BoundaryRule, FaceRule, Grid, Program
from ..kernels import Kernel, KernelGroup, Launch, Read, Write, grid_scalars
from ..symbolic import (
    GHOST_ALPHA,
    GHOST_BETA,
    GHOST_DATA,
    GHOST_H,
    cse,
    ghost_values,
    interior_symbol,
    partial,
)
from .integrate import stage_buffer
from .manager import PassContext, Tableau


def ident(buffer: str) -> str:
    """The identifier of a buffer in generated code: ``u`` -> ``f_u``, ``u@q2`` -> ``q2_u``."""
    if "@" in buffer:
        field, stage = buffer.split("@", 1)
        return f"{stage}_{field}"
    return f"f_{buffer}"


def read_symbol(buffer: str, offsets: tuple[int, ...]) -> sympy.Symbol:
    parts = [("m" if o < 0 else "p") + str(abs(o)) for o in offsets]
    return sympy.Symbol(f"{ident(buffer)}_{'_'.join(parts)}", real=True)


def param_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(f"p_{name}", real=True)


def coord_symbol(axis: int) -> sympy.Symbol:
    return sympy.Symbol(f"x{axis}", real=True)


T, DT = sympy.Symbol("t", real=True), sympy.Symbol("dt", real=True)


@dataclass(frozen=True)
class FuseInput:
    """What fuse needs besides the stage Program: names and initial values of the problem."""

    fields: tuple[str, ...]
    params: tuple[str, ...]
    initial: dict[str, sympy.Expr]
    axes: tuple[str, ...]
    time: str
    source_lines: dict[str, str]  # field -> "file:line  text" of its equation
    # per axis, (lower bound, length) of a periodic one: face data read there wrap (a ghost
    # row's periodic halo cells, and a tile's cells across the seam, lie outside the period)
    periods: tuple[tuple[float, float] | None, ...] = ()


def scalar_leaf(op: Op) -> sympy.Expr | None:
    """The kernel symbol (or number) of a scalar leaf: a parameter, the time, the step, a
    spacing or a constant; None for any other op."""
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
    return None


def _leaf_expr(prog: Program, i: int, reads: dict, coords: set, stencil: dict) -> sympy.Expr:
    """The kernel-level expression of a Map argument (a leaf or a Shift chain)."""
    op = prog.ops[i]
    ndim = prog.grid.ndim if prog.grid else 1
    if isinstance(op, Shift | Input):
        offsets = [0] * ndim
        while isinstance(op, Shift):
            offsets[op.axis] += op.offset
            op = prog.ops[op.args[0]]
        if not isinstance(op, Input):
            raise TypeError("a Shift must apply to an Input after discretise")
        key = (op.name, tuple(offsets))
        if key not in reads:
            reads[key] = Read(read_symbol(*key), op.name, key[1])
        if any(offsets):
            stencil[op.name] = max(stencil.get(op.name, 0), *(abs(o) for o in offsets))
        return reads[key].symbol
    if isinstance(op, Coord):
        coords.add(op.axis)
        return coord_symbol(op.axis)
    scalar = scalar_leaf(op)
    if scalar is not None:
        return scalar
    if isinstance(op, Map):
        return op.body.xreplace(
            {
                placeholder(j): _leaf_expr(prog, a, reads, coords, stencil)
                for j, a in enumerate(op.args)
            }
        )
    raise TypeError(f"cannot fuse a {op.kind}")


def _canonical_to_kernel(expr: sympy.Expr, info: FuseInput) -> sympy.Expr:
    subs = {sympy.Symbol(a): coord_symbol(i) for i, a in enumerate(info.axes)}
    subs.update({sympy.Symbol(p): param_symbol(p) for p in info.params})
    subs[sympy.Symbol(info.time)] = T
    return sympy.sympify(expr).xreplace(subs)


def _stage_kernel(prog: Program, stage: int, info: FuseInput, scalars) -> tuple[Kernel, dict]:
    prefix = f"stage{stage}:"
    outputs = [
        (name[len(prefix) :], v) for name, v in prog.outputs.items() if name.startswith(prefix)
    ]
    return stencil_kernel(prog, f"stage{stage}", outputs, info, scalars)


def stencil_kernel(
    prog: Program, name: str, outputs: list[tuple[str, int]], info: FuseInput, scalars
) -> tuple[Kernel, dict[str, int]]:
    """One loop nest writing each (buffer, value) of ``outputs`` at every interior point; also
    returns, per buffer read with offsets, the widest offset (the halo it needs)."""
    reads: dict = {}
    coords: set[int] = set()
    stencil: dict[str, int] = {}
    targets, exprs, comments = [], [], []
    for buffer, v in outputs:
        targets.append(buffer)
        exprs.append(_leaf_expr(prog, v, reads, coords, stencil))
        field = buffer.split("@", 1)[0]
        line = info.source_lines.get(field)
        if line and line not in comments:
            comments.append(line)
    kernel = assemble_kernel(
        name, "stencil", [(t, ()) for t in targets], exprs, reads, coords, comments, scalars, info
    )
    return kernel, stencil


def assemble_kernel(
    name: str,
    kind: str,
    targets: Sequence[tuple[str, tuple[int, ...]]],
    exprs: list[sympy.Expr],
    reads: dict,
    coords: set[int],
    comments: list[str],
    scalars: tuple[str, ...],
    info: FuseInput,
    axis: int = -1,
    side: str = "",
    totals: frozenset[str] = frozenset(),
) -> Kernel:
    """A Kernel writing ``exprs`` (in read symbols) to ``targets`` (buffer, offsets): terms
    grouped by the reads they multiply, common subexpressions shared, invariants hoisted;
    the buffers in ``totals`` receive sums over the kernel's points (``Write.total``)."""
    read_symbols = [r.symbol for r in reads.values()]
    exprs = [_by_reads(e, read_symbols) for e in exprs]
    replacements, reduced = cse(exprs, "e")
    replacements, invariant = _hoist_invariant(replacements, set(read_symbols), coords)
    arrays = sorted(
        {r.array for r in reads.values()} | {t for t, _ in targets}, key=_buffer_order(info)
    )
    return Kernel(
        name=name,
        kind=kind,
        arrays=tuple(arrays),
        scalars=scalars,
        reads=tuple(sorted(reads.values(), key=lambda r: (r.array, r.offsets))),
        statements=tuple(replacements),
        writes=tuple(
            Write(t, e, o, t in totals) for (t, o), e in zip(targets, reduced, strict=True)
        ),
        coords=tuple((coord_symbol(a), a) for a in sorted(coords)),
        comments=tuple(comments),
        invariant=invariant,
        axis=axis,
        side=side,
    )


def _by_reads(expr: sympy.Expr, reads: list[sympy.Symbol]) -> sympy.Expr:
    """Expand and group terms by the neighbour values they multiply, so that all scalar factors
    of a stencil weight (dt * nu / h^2 ...) fold into one loop-invariant coefficient; neighbours
    that share a weight are summed first (w*(a + b), one multiplication instead of two)."""
    terms = sympy.collect(sympy.expand(expr), reads, evaluate=False)
    groups: dict[sympy.Expr, list[sympy.Expr]] = {}
    for monomial, coeff in terms.items():
        groups.setdefault(coeff, []).append(monomial)
    return sympy.Add(*(coeff * sympy.Add(*monos) for coeff, monos in groups.items()))


def _hoist_invariant(
    statements: list[tuple[sympy.Symbol, sympy.Expr]], reads: set, coords: set[int]
) -> tuple[list[tuple[sympy.Symbol, sympy.Expr]], int]:
    """Reorder CSE statements: those that depend on no grid value or coordinate come first."""
    varying = set(reads) | {coord_symbol(a) for a in coords}
    first, rest = [], []
    for sym, e in statements:
        if e.free_symbols & varying:
            varying.add(sym)
            rest.append((sym, e))
        else:
            first.append((sym, e))
    return first + rest, len(first)


def _buffer_order(info: FuseInput):
    def key(buffer: str) -> tuple:
        field, _, stage = buffer.partition("@")
        return (info.fields.index(field) if field in info.fields else 99, stage, field)

    return key


def grid_of(prog: Program) -> Grid:
    """The grid of a stage Program (lowering gives every PDE Program one)."""
    assert prog.grid is not None, "fuse needs a Program with a grid"
    return prog.grid


def _ghost_kernel(
    rule: BoundaryRule, axis: int, side: str, halo: int, info, scalars, stage: Stage | None = None
) -> Kernel:
    faces = rule.faces[axis]
    assert faces != "periodic", "periodic axes are wrapped, not extrapolated"
    face: FaceRule | None = faces[0 if side == "lo" else 1]
    if face is None:
        raise ValueError(
            f"field '{rule.field}' is differentiated along axis {info.axes[axis]} but has no "
            f"condition on its {side} face"
        )
    ndim = len(info.axes)
    sign = 1 if side == "lo" else -1
    reads = []
    subs = {}
    for i in range(face.degree):
        offsets = tuple(sign * i if a == axis else 0 for a in range(ndim))
        sym = read_symbol(rule.field, offsets)
        reads.append(Read(sym, rule.field, offsets))
        subs[interior_symbol(i)] = sym
    if staged_condition(*face_condition(face, axis, side, info), stage) is None:
        stage = None  # the same ghosts at every stage: one kernel
    values = face_ghosts(face, axis, side, halo, info, interior=subs, stage=stage)
    replacements, reduced = cse(values, "e")
    coords = {a for a in range(ndim) if any(v.has(coord_symbol(a)) for v in reduced)}
    coords |= {a for a in range(ndim) for _, e in replacements if e.has(coord_symbol(a))}
    writes = tuple(
        Write(rule.field, v, tuple(-sign * (j + 1) if a == axis else 0 for a in range(ndim)))
        for j, v in enumerate(reduced)
    )
    return Kernel(
        name=f"ghost_{ident(rule.field)}_{axis}_{side}" + (f"_s{stage[1]}" if stage else ""),
        kind="ghost",
        arrays=(rule.field,),
        scalars=scalars,
        reads=tuple(reads),
        statements=tuple(replacements),
        writes=writes,
        coords=tuple((coord_symbol(a), a) for a in sorted(coords)),
        axis=axis,
        side=side,
        comments=(
            f"boundary of {rule.field} on the {side} face of {info.axes[axis]}"
            + (" (outflow: the interior continued)" if face.extrapolate else "")
            + (f" (data as Runge-Kutta stage {stage[1]} imposes it)" if stage else ""),
        ),
    )


# an explicit Runge-Kutta stage: (tableau, stage number from 1)
Stage = tuple[Tableau, int]


def stage_face_data(data: sympy.Expr, stage: Stage | None) -> sympy.Expr | None:
    """Boundary data g(t) as stage ``i`` of an explicit Runge-Kutta step imposes it, in kernel
    symbols (t is the stage time t_n + c_i dt): sum_k dt^k (A^k e)_i g^(k)(t_n), the value the
    stage would hold for a solution whose boundary values are g, not g(t_n + c_i dt). The
    stage states are low-order approximations at t_n + c_i dt, and data imposed exactly
    there cost the scheme its order at a step proportional to the cells (Carpenter et al.
    1995; this formulation is Pathria's, 1997): the wave equation's u fell to second order at
    order 4 and its velocity to first, transport with a moving inflow to second. The
    derivatives of g are SymPy's. None where nothing changes: no stage, the first stage, or
    data at most linear in t (for which the two agree, as A e = c)."""
    if stage is None or not data.has(T):
        return None
    tableau, i = stage
    if not any(tableau.a[i - 1]) or partial(partial(data, T), T) == 0:
        return None
    start = T - sympy.Float(tableau.c[i - 1]) * DT
    weights = [1.0] * len(tableau.b)  # (A^k e), from k = 0
    terms, derivative, used = [], data, []
    for k in range(len(tableau.b)):
        if weights[i - 1]:
            terms.append(sympy.Float(weights[i - 1]) * DT**k * derivative.xreplace({T: start}))
            used.append(derivative)
        derivative = partial(derivative, T)  # a step's derivative is zero off the step
        weights = [sum(a * w for a, w in zip(row, weights, strict=True)) for row in tableau.a]
    staged = sympy.Add(*terms)
    if staged.has(sympy.Derivative, sympy.Subs):  # floor(t), say: no derivative to print
        return None
    if _new_singularities(data, used[1:]):  # sqrt(t): g'(0) is infinite
        return None
    return staged


# functions whose derivatives are as regular as they are
_SMOOTH = (sympy.sin, sympy.cos, sympy.exp, sympy.sinh, sympy.cosh, sympy.Heaviside, sympy.sign)


def _new_singularities(data: sympy.Expr, derivatives: list[sympy.Expr]) -> bool:
    """Whether a derivative of the data may be infinite where the data are finite: those of
    sqrt(t) or t^1.5 are at t = 0, and the stage would impose inf there (R540, a division by
    zero, where data at the stage times gave a sensible answer). Polynomials, sin, cos, exp
    and steps cannot be; otherwise SymPy's real singularities of each derivative must be the
    data's own (1 / (1 + t) keeps its pole at -1), and where SymPy cannot tell, they may."""
    from sympy.calculus.singularities import singularities

    own = None
    for d in derivatives:
        powers = [p for p in d.atoms(sympy.Pow) if p.base.has(T)]
        irregular = any(not (p.exp.is_Integer and p.exp >= 0) for p in powers)
        calls = [type(f) for f in d.atoms(sympy.Function) if f.has(T)]
        if not irregular and all(issubclass(f, _SMOOTH) for f in calls):
            continue
        try:
            own = singularities(data, T, sympy.S.Reals) if own is None else own
            if not singularities(d, T, sympy.S.Reals).is_subset(own):
                return True
        except Exception:  # SymPy cannot tell (NotImplementedError and kin)
            return True
    return False


def face_condition(
    face: FaceRule, axis: int, side: str, info: FuseInput
) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """``alpha``, ``beta`` and ``data`` of a face's condition in kernel symbols, evaluated on
    the face (periodic coordinates along it at their images)."""
    n, lo, h = (sympy.Symbol(f"{s}{axis}", real=True) for s in ("n", "lo", "h"))
    face_coord = lo if side == "lo" else lo + n * h
    to_kernel = {coord_symbol(axis): face_coord}
    for b, period in enumerate(info.periods):
        if period is not None and b != axis:  # the data at the cell's periodic image
            start, length = (sympy.Float(v) for v in period)
            to_kernel[coord_symbol(b)] = start + Remainder(coord_symbol(b) - start, length)
    alpha, beta, data = (
        _canonical_to_kernel(e, info).xreplace(to_kernel)
        for e in (face.alpha, face.beta, face.data)
    )
    return alpha, beta, data


def face_ghosts(
    face: FaceRule,
    axis: int,
    side: str,
    layers: int,
    info: FuseInput,
    data: bool = True,
    interior: dict | None = None,
    stage: Stage | None = None,
) -> list[sympy.Expr]:
    """Ghost values 1..``layers`` beyond a face in kernel symbols (coefficients evaluated on the
    face) and ``interior_symbol(m)``, the m-th cell inward (or what ``interior`` maps it to);
    ``data=False``: the homogeneous part, whose coefficients are the ghost weights (what an
    adjoint folds back)."""
    alpha, beta, value = face_condition(face, axis, side, info)
    staged = staged_condition(alpha, beta, value, stage)
    if staged is not None:
        alpha, beta, value = staged
    h = sympy.Symbol(f"h{axis}", real=True)
    subs = {GHOST_ALPHA: alpha, GHOST_BETA: beta, GHOST_H: h, **(interior or {})}
    # the ghosts are linear in the data: simplified with the data held as a symbol (staged
    # data, sums of derivatives, would make SymPy's simplify take minutes), then put in
    fill = {GHOST_DATA: value if data else 0}
    return [
        sympy.simplify(g.xreplace(subs)).xreplace(fill)
        if face.beta != 0
        else g.xreplace(subs).xreplace(fill)
        for g in ghost_values(face.degree, layers, side, face.extrapolate)
    ]


@functools.lru_cache(maxsize=256)  # a ghost kernel asks, then its ghosts (SymPy's derivatives)
def staged_condition(
    alpha: sympy.Expr, beta: sympy.Expr, data: sympy.Expr, stage: Stage | None
) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr] | None:
    """The condition ``alpha u + beta du/dn = data`` as Runge-Kutta ``stage`` imposes it, or
    None where it is unchanged (see ``stage_face_data``). A Dirichlet or Neumann condition
    whose coefficient depends on t is divided by it first: ``(1 + t) u = g`` is ``u = g / (1 +
    t)``, whose stage data then match the stage (a coefficient taken at the stage time beside
    staged data cost the order again). A Robin condition whose ratio alpha / beta depends on t
    keeps it at the stage time."""
    if stage is None:
        return None
    one = sympy.Integer(1)
    if beta == 0 and alpha.has(T):
        alpha, data = one, data / alpha
    elif alpha == 0 and beta.has(T):
        beta, data = one, data / beta
    staged = stage_face_data(data, stage)
    return None if staged is None else (alpha, beta, staged)


def fuse(prog: Program, ctx: PassContext, info: FuseInput, min_halo: int = 1) -> KernelGroup:
    """Build the KernelGroup of one explicit time step (``ctx.tableau``)."""
    tableau = ctx.tableau
    assert tableau is not None, "integrate has run, with a tableau"
    ndim = grid_of(prog).ndim
    scalars = (*tuple(param_symbol(p).name for p in info.params), "t", "dt", *grid_scalars(ndim))
    stages = []
    stencils = []
    for i in range(1, tableau.stages + 1):
        k, st = _stage_kernel(prog, i, info, scalars)
        stages.append(k)
        stencils.append(st)
    halo = max([min_halo] + [r for st in stencils for r in st.values()])

    kernels: dict[str, Kernel] = {}
    step: list[Launch] = []
    for i, (k, st) in enumerate(zip(stages, stencils, strict=True)):
        c = tableau.c[i]
        step += halo_launches(prog, st, halo, info, scalars, kernels, c, (tableau, i + 1))
        kernels[k.name] = k
        step.append(Launch(k.name, k.arrays, c))

    s = tableau.stages
    used = {b for launch in step for b in launch.arrays}
    buffers = list(info.fields)
    for f in info.fields:
        buffers += [stage_buffer(f, m) for m in range(2, s + 2) if stage_buffer(f, m) in used]
    init = initial_kernel(info, ndim, scalars)
    kernels[init.name] = init
    return KernelGroup(
        name=ctx.problem,
        ndim=ndim,
        halo=halo,
        dtype=ctx.dtype,
        axes=info.axes,
        fields=info.fields,
        buffers=tuple(buffers),
        params=info.params,
        kernels=tuple(kernels.values()),
        step=tuple(step),
        swaps=tuple((f, stage_buffer(f, s + 1)) for f in info.fields),
        init=Launch("initial", info.fields),
        source_name=ctx.source_name,
        meta={
            "scheme": tableau.name,
            "order": ctx.order,
            "stages": s,
            "periodic": tuple(grid_of(prog).periodic),
            "min_cells": min_cells(prog, halo),
            "robin": robin_faces(prog),
        },
    )


def robin_faces(prog: Program) -> tuple[tuple[str, int, str, int], ...]:
    """(field, axis, side, degree) of every face whose condition involves the derivative: its
    ghost values are rational in h and singular at one grid spacing, which the runtime checks."""
    out = set()
    for rule in prog.boundaries.values():
        for axis, faces in enumerate(rule.faces):
            if faces == "periodic":
                continue
            for side, face in zip(("lo", "hi"), faces, strict=True):
                if face is not None and face.beta != 0 and face.alpha != 0:
                    out.add((rule.field, axis, side, face.degree))
    return tuple(sorted(out))


def min_cells(prog: Program, halo: int) -> tuple[int, ...]:
    """Fewest cells per axis the kernels can run on: a ghost extrapolation reads ``degree``
    interior cells, a periodic wrap copies ``halo`` of them."""
    need = [halo] * grid_of(prog).ndim
    for rule in prog.boundaries.values():
        for axis, faces in enumerate(rule.faces):
            if faces != "periodic":
                need[axis] = max([need[axis], *(f.degree for f in faces if f is not None)])
    return tuple(max(2, n) for n in need)


def halo_launches(
    prog: Program,
    stencil: dict[str, int],
    halo: int,
    info: FuseInput,
    scalars,
    kernels: dict[str, Kernel],
    c: float = 0.0,
    stage: Stage | None = None,
) -> list[Launch]:
    """Fill the halo of every buffer in ``stencil`` before a kernel reads it with offsets: wrap
    periodic axes, solve ghost values from the boundary rule of the buffer's field (the rule
    named like the buffer, else like its field) on the others; new kernels go into ``kernels``."""
    out = []
    for buffer in sorted(stencil, key=_buffer_order(info)):
        rule = prog.boundaries.get(buffer) or prog.boundaries[buffer.split("@", 1)[0]]
        for axis in range(grid_of(prog).ndim):
            if rule.is_periodic(axis):
                name = f"wrap_{axis}"
                kernels.setdefault(name, Kernel(name, "wrap", ("a",), (), axis=axis))
                out.append(Launch(name, (buffer,), c))
                continue
            if rule.faces[axis] == (None, None):
                # no condition on the axis: the field is not differentiated along it (R313
                # otherwise), so no stencil reads its ghosts there
                continue
            for side in ("lo", "hi"):
                g = _ghost_kernel(rule, axis, side, halo, info, scalars, stage)
                kernels.setdefault(g.name, g)
                out.append(Launch(g.name, (buffer,), c))
    return out


def initial_kernel(info: FuseInput, ndim: int, scalars) -> Kernel:
    """Writes every field's initial value (or initial guess) at every interior point."""
    init_writes, init_coords = [], set()
    for f in info.fields:
        e = _canonical_to_kernel(info.initial.get(f, sympy.Integer(0)), info)
        init_coords |= {a for a in range(ndim) if e.has(coord_symbol(a))}
        init_writes.append(Write(f, e))
    return Kernel(
        name="initial",
        kind="init",
        arrays=info.fields,
        scalars=scalars,
        writes=tuple(init_writes),
        coords=tuple((coord_symbol(a), a) for a in sorted(init_coords)),
        comments=("initial conditions",),
    )
