"""fuse_adjoint: one explicit Runge-Kutta step and its discrete adjoint, in one KernelGroup.

Input: the output of ``adjoint`` (outputs ``rhs:<f>``, ``vjp:<f>`` and ``vjp:<p>``). Output: the
forward group of ``fuse`` (its step recomputes the stage states S_i of a step, left in the stage
buffers) with a halo twice the stencil radius, plus the entries

- ``adjoint_step``: the reverse sweep of one step. With lambda the cotangent of the new state,
  the cotangent of stage i's right-hand side is w_i = dt b_i lambda + dt sum_{m>i} a_mi mu_m,
  where mu_m = (df/du)(S_m)^T w_m. Stages run from last to first; stage m's kernel computes
  mu_m, adds it into lambda' (the cotangent of the old state) and dt a_mi mu_m into every
  earlier w_i, and adds (df/dp)^T w_m, as a sum over the grid (Write.total) into one buffer
  per parameter. The last stage reads w_s = dt b_s lambda as lambda itself and writes
  lambda' = lambda + mu_s; the first stage that feeds w_i (a_mi != 0) writes it as
  dt b_i lambda + dt a_mi mu_m, and a stage no later stage feeds reads its w_i as lambda too:
  no pass over memory only to scale lambda (RK4's stage 4 would write w_1 and w_2 as copies).
  lambda' and lambda exchange roles after the step (meta ``adjoint_swaps``);
- ``adjoint_initial``: the cotangent of the parameters through the initial condition.

The transposed stencils are lowered by ``transpose``; ``param_vjp_kernel`` and
``theta_adjoint`` add the adjoint entries of steady problems and implicit steps to the groups
of ``fuse_steady``.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..ir.program import Program
from ..kernels import GroupMeta, Kernel, KernelGroup, Launch
from .adjoint import cotangent
from .fuse import DT, FuseInput, assemble_kernel, fuse, grid_of
from .integrate import _row, integrate, stage_input
from .manager import PassContext
from .simplify import simplify
from .transpose import (
    Lowering,
    adjoint_buffer,
    adjoint_meta,
    adjoint_params,
    boundary_folds,
    cotangent_buffer,
    fold_kernel,
    history_cotangent,
    initial_gradient_kernel,
    next_adjoint_buffer,
    offset_reads,
    param_buffer,
    shift_radius,
    transposed_entry,
    weight_buffer,
)


def fuse_adjoint(prog: Program, ctx: PassContext, info: FuseInput) -> KernelGroup:
    tableau = ctx.tableau
    assert tableau is not None, "the adjoint of an explicit step needs its tableau"
    rhs = {k: v for k, v in prog.outputs.items() if k.startswith("rhs:")}
    forward_prog = simplify(integrate(replace(prog, outputs=rhs), ctx), ctx)
    group = fuse(forward_prog, ctx, info, min_halo=2 * shift_radius(prog))
    scalars = group.kernel("initial").scalars
    params = adjoint_params(prog, info)
    s = tableau.stages

    kernels: dict[str, Kernel] = {}
    launches: list[Launch] = []
    started: set[int] = set()  # the stages i whose w_i a later stage has written this step
    for m in range(s, 0, -1):
        row = _row(tableau, m)
        rename = {f: stage_input(f, tableau, m) for f in info.fields}
        values = {f: prog.outputs[f"vjp:{f}"] for f in info.fields}
        scale: dict[str, sympy.Expr] = {}
        bases: dict[str, tuple[str, sympy.Expr]] = {}
        if m in started:
            rename |= {cotangent(f): weight_buffer(f, m) for f in info.fields}
        else:  # w_m = dt b_m lambda (the last stage; or no later stage feeds this one)
            rename |= {cotangent(f): adjoint_buffer(f) for f in info.fields}
            scale = {cotangent(f): DT * sympy.Float(tableau.b[m - 1]) for f in info.fields}
        if m == s:  # lambda' = lambda + mu_s: lambda' starts here
            for f in info.fields:
                bases[next_adjoint_buffer(f)] = (adjoint_buffer(f), sympy.Integer(1))
        feeds = [i for i in range(1, m) if row[i - 1]]
        for i in feeds:  # the first write of w_i starts it at dt b_i lambda
            if i not in started:
                for f in info.fields:
                    bases[weight_buffer(f, i)] = (
                        adjoint_buffer(f),
                        DT * sympy.Float(tableau.b[i - 1]),
                    )
        started |= set(feeds)
        destinations = {
            f: [(next_adjoint_buffer(f), sympy.Integer(1))]
            + [(weight_buffer(f, i), DT * sympy.Float(row[i - 1])) for i in feeds]
            for f in info.fields
        }
        for p in params:
            if f"vjp:{p}" in prog.outputs:
                values[p] = prog.outputs[f"vjp:{p}"]
                destinations[p] = [(param_buffer(p), sympy.Integer(1))]
        ghost_params = {p: destinations[p] for p in params if p in destinations}
        launches += transposed_entry(
            prog,
            f"adjoint_stage{m}",
            values,
            destinations,
            rename=rename,
            info=info,
            scalars=scalars,
            kernels=kernels,
            c=tableau.c[m - 1],
            comments=[
                f"adjoint of stage {m}",
                *(info.source_lines[f] for f in info.fields if f in info.source_lines),
            ],
            accumulate=True,
            totals=frozenset(param_buffer(p) for p in params),
            scale=scale,
            bases=bases,
            params=ghost_params,
            stage=(tableau, m),
        )

    entries = [("adjoint_step", tuple(launches))]
    init = initial_gradient_kernel(info, params, group.ndim, scalars)
    if init is not None:
        kernels[init.name] = init
        entries.append(("adjoint_initial", (Launch(init.name, init.arrays),)))
    buffers = list(group.buffers)
    for f in info.fields:
        buffers += [adjoint_buffer(f), next_adjoint_buffer(f)]
        buffers += [weight_buffer(f, i) for i in sorted(started)]
    buffers += [param_buffer(p) for p in params]
    swaps = tuple((adjoint_buffer(f), next_adjoint_buffer(f)) for f in info.fields)
    existing = {k.name: k for k in group.kernels}
    return replace(
        group,
        kernels=tuple({**existing, **kernels}.values()),
        buffers=tuple(buffers),
        entries=tuple(entries),
        meta={**group.meta, **adjoint_meta(prog, info), "adjoint_swaps": swaps},
    )


def param_vjp_kernel(
    prog: Program, info: FuseInput, scalars: tuple[str, ...]
) -> tuple[Kernel, dict[str, int], tuple[str, ...], list[Kernel]]:
    """Steady problems: gp_p = (dR/dp)^T lambda cell by cell (lambda in ``<f>@adj``), from the
    outputs ``vjp:<p>`` of ``adjoint``; also the offset reads (halo), the parameters, and the
    fold kernels that add the part of the parameters of boundary conditions (run after it)."""
    params = adjoint_params(prog, info)
    rename = {cotangent(f, steady=True): adjoint_buffer(f) for f in info.fields}
    lowering = Lowering(prog, rename, fold_allowed=False)
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
    reach = offset_reads(lowering)
    assert not any(b.endswith("@adj") for b in reach), "cotangents are read in place"
    residuals = {f: prog.outputs[f"vjp:{f}"] for f in info.fields if f"vjp:{f}" in prog.outputs}
    ghost_params = {p: [(param_buffer(p), sympy.Integer(1))] for p in params}
    folds = [
        fold_kernel(
            prog,
            f"param_vjp_fold_{axis}_{side}",
            axis,
            side,
            terms,
            {f: [] for f in residuals},
            rename,
            info,
            scalars,
            params=ghost_params,
        )[0]
        for (axis, side), terms in sorted(boundary_folds(prog, residuals, rename).items())
    ]
    return kernel, reach, params, [k for k in folds if k.writes]


def theta_adjoint(
    prog: Program, info: FuseInput, scalars: tuple[str, ...], halo: int, kernels: dict
) -> tuple[list[tuple[str, tuple[Launch, ...]]], list[str], GroupMeta]:
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
    common = {"info": info, "scalars": scalars, "kernels": kernels, "ghosts": halo}
    for kind in ("explicit", "start"):
        if f"vjp_{kind}:{fields[0]}" not in prog.outputs:
            continue
        rename = {f"bar:{kind}:{rhs_buffer(f)}": cotangent_buffer(f) for f in fields}
        rename |= {f"bar:{kind}:{history_buffer(f)}": history_cotangent(f) for f in fields}
        values = {adjoint_buffer(f): prog.outputs[f"vjp_{kind}:{f}"] for f in fields}
        if kind == "explicit" and imex:
            values |= {
                history_cotangent(f, True): prog.outputs[f"vjp_explicit:{history_buffer(f)}"]
                for f in fields
            }
        sums = {
            param_buffer(p): prog.outputs[f"vjp_{kind}:{p}"]
            for p in params
            if f"vjp_{kind}:{p}" in prog.outputs  # not one used only by the initial condition
        }
        entries.append(
            (
                f"adjoint_{kind}",
                tuple(_overwrite(prog, f"adjoint_{kind}", values, sums, 1, rename, 0.0, common)),
            )
        )
    sums = {
        param_buffer(p): prog.outputs[f"vjp_res:{p}"]
        for p in params
        if f"vjp_res:{p}" in prog.outputs
    }
    if sums:
        rename = {f"bar:res:{f}": cotangent_buffer(f) for f in fields}
        residuals = {
            f: prog.outputs[f"vjp_res:{f}"] for f in fields if f"vjp_res:{f}" in prog.outputs
        }
        launches = _overwrite(
            prog, "adjoint_residual", {}, sums, -1, rename, 1.0, common, residuals
        )
        if launches:  # none where the implicit part is empty (imex with no linear term)
            entries.append(("adjoint_residual", tuple(launches)))
    init = initial_gradient_kernel(info, params, grid_of(prog).ndim, scalars)
    if init is not None:
        kernels[init.name] = init
        entries.append(("adjoint_initial", (Launch(init.name, init.arrays),)))
    buffers = [b for f in fields for b in (adjoint_buffer(f), cotangent_buffer(f))]
    if imex:
        buffers += [b for f in fields for b in (history_cotangent(f), history_cotangent(f, True))]
    buffers += [param_buffer(p) for p in params]
    return entries, buffers, adjoint_meta(prog, info)


def _overwrite(
    prog: Program,
    name: str,
    values: dict[str, int],
    sums: dict[str, int],
    sign: int,
    rename: dict[str, str],
    c: float,
    common: dict,
    fold_only: dict[str, int] | None = None,
) -> list[Launch]:
    """An implicit step's entry: each buffer of ``values`` becomes sign * its value, each of
    ``sums`` gets sign * its value summed over the grid (with the ghosts' part of the
    parameters of boundary conditions, from the folds of ``values`` and of ``fold_only``); the
    state's ghosts are filled first."""
    weight = sympy.Integer(sign)
    info = common["info"]
    params = {p: [(param_buffer(p), weight)] for p in info.params if param_buffer(p) in sums}
    return transposed_entry(
        prog,
        name,
        {**values, **sums},
        {b: [(b, weight)] for b in (*values, *sums)},
        rename=rename,
        c=c,
        comments=[f"adjoint: {name}"],
        accumulate=False,
        totals=frozenset(sums),
        gather=f"{name}_kernel",
        params=params,
        fold_only=fold_only,
        **common,
    )
