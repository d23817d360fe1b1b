"""fuse_steady: residual and Jacobian-vector Programs -> the KernelGroup of a steady solve (or of
the Newton solve inside each step of an implicit scheme, which adds the entry ``explicit``).

Input: the output of ``linearize`` (outputs ``res:<f>`` and ``jvp:<f>``, and for an implicit
step ``explicit:<buffer>`` and ``start:<buffer>``). Output: a KernelGroup whose entries the
runtime's Newton driver calls: ``residual`` (fill the fields' halos, then write R(u) into
``<f>@r``), ``jvp`` (fill the halos of the fields and the direction ``<f>@v``, then write
J(u) v into ``<f>@jv``) and, for an implicit step, ``explicit`` (and ``start``), which write
the step's right-hand side. No time step, no swaps.
"""

from __future__ import annotations

import sympy

from ..ir.ops import Input, Shift, Time
from ..ir.program import Program
from ..kernels import GroupMeta, Kernel, KernelGroup, Launch, grid_scalars
from .fuse import (
    FuseInput,
    grid_of,
    halo_launches,
    initial_kernel,
    min_cells,
    param_symbol,
    robin_faces,
    stencil_kernel,
)
from .linearize import direction
from .manager import PassContext
from .theta import history_buffer, rhs_buffer


def residual_buffer(field: str) -> str:
    return f"{field}@r"


def jvp_buffer(field: str) -> str:
    return f"{field}@jv"


def _coupling(prog: Program, halo: int) -> int:
    """How far apart (in cells, per axis) two coupled unknowns can be: the stencil radius, or the
    reach of a ghost extrapolation (degree - 1 cells inward) near a face."""
    reach = halo
    for rule in prog.boundaries.values():
        for faces in rule.faces:
            if faces == "periodic":
                continue
            reach = max([reach, *(f.degree - 1 for f in faces if f is not None)])
    return reach


def constant_jacobian(
    prog: Program, fields: tuple[str, ...], info: FuseInput | None = None
) -> bool:
    """Whether J v depends on neither the state nor the time: then one factorisation of the
    Jacobian serves every Newton solve with the same dt and parameters."""
    seen: set[int] = set()
    todo = [prog.outputs[f"jvp:{f}"] for f in fields]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        op = prog.ops[i]
        if isinstance(op, Time) or (isinstance(op, Input) and op.name in fields):
            return False
        if isinstance(op, Shift) and op.boundary and _rule_reads_time(prog, op.boundary, info):
            return False  # a Robin coefficient of t: the ghost weights change with the step
        todo.extend(op.args)
    return True


def _wrapped_aside(
    folds: list[Kernel], periodic: tuple[bool, ...], kernels: dict[str, Kernel], c: float
) -> list[Launch]:
    """Periodic halos of the buffers the folds read aside along a periodic axis (lambda, read
    across the seam by a mixed derivative's fold; it is put into the interior only)."""
    out = []
    aside = sorted({r.array for k in folds for r in k.reads if any(r.offsets)})
    for buffer in aside:
        for axis, wraps in enumerate(periodic):
            if wraps:
                wrap = f"wrap_{axis}"
                kernels.setdefault(wrap, Kernel(wrap, "wrap", ("a",), (), axis=axis))
                out.append(Launch(wrap, (buffer,), c))
    return out


def _rule_reads_time(prog: Program, key: str, info: FuseInput | None) -> bool:
    """Whether a boundary rule's coefficients (alpha, beta: the ghost weights) depend on t."""
    time = sympy.Symbol(info.time if info is not None else "t")
    for faces in prog.boundaries[key].faces:
        if faces == "periodic":
            continue
        for face in faces:
            if face is not None and any(
                time in sympy.sympify(e).free_symbols for e in (face.alpha, face.beta)
            ):
                return True
    return False


def fuse_steady(prog: Program, ctx: PassContext, info: FuseInput) -> KernelGroup:
    ndim = grid_of(prog).ndim
    scalars = (*(param_symbol(p).name for p in info.params), "t", "dt", *grid_scalars(ndim))
    # an implicit step: the explicit half (and imex's first-step variant) runs at t, the
    # residual and its jvp at t + dt (stage c = 1)
    implicit = any(name.startswith("explicit:") for name in prog.outputs)
    c = 1.0 if implicit else 0.0
    parts: dict[str, tuple[list[tuple[str, int]], float]] = {}  # entry -> (writes, stage c)
    for entry in ("explicit", "start"):
        writes = [
            (n.split(":", 1)[1], v) for n, v in prog.outputs.items() if n.startswith(entry + ":")
        ]
        if writes:
            parts[entry] = (writes, 0.0)
    parts["residual"] = ([(residual_buffer(f), prog.outputs[f"res:{f}"]) for f in info.fields], c)
    parts["jvp"] = ([(jvp_buffer(f), prog.outputs[f"jvp:{f}"]) for f in info.fields], c)
    built = {
        entry: stencil_kernel(prog, f"{entry}_kernel", writes, info, scalars)
        for entry, (writes, _) in parts.items()
    }
    adjoint: tuple[str, ...] | None = None  # an adjoint group: the parameters it differentiates
    param_folds: list[Kernel] = []
    if any(name.startswith("vjp:") for name in prog.outputs):
        from .fuse_adjoint import param_vjp_kernel
        from .transpose import adjoint_buffer, adjoint_meta, param_buffer

        kernel, reach, adjoint, param_folds = param_vjp_kernel(prog, info, scalars)
        built["param_vjp"] = (kernel, reach)
        parts["param_vjp"] = ([], c)
    halo = max([1] + [r for _, st in built.values() for r in st.values()])
    theta_adjoint = implicit and any(n.startswith("vjp_explicit:") for n in prog.outputs)
    if theta_adjoint:  # the adjoint's gathers read the state twice a stencil radius aside
        from .transpose import shift_radius

        halo = max(halo, 2 * shift_radius(prog))
    kernels: dict[str, Kernel] = {}
    entries = []
    for entry, (k, st) in built.items():
        stage_c = parts[entry][1]
        launches = halo_launches(prog, st, halo, info, scalars, kernels, stage_c)
        launches.append(Launch(k.name, k.arrays, stage_c))
        kernels[k.name] = k
        if entry == "param_vjp":  # the ghosts' part of the parameters of boundary conditions
            launches += _wrapped_aside(param_folds, grid_of(prog).periodic, kernels, stage_c)
            for fold in param_folds:
                kernels[fold.name] = fold
                launches.append(Launch(fold.name, fold.arrays, stage_c))
        entries.append((entry, tuple(launches)))
    init = initial_kernel(info, ndim, scalars)
    kernels[init.name] = init
    buffers = [*info.fields]
    if implicit:
        buffers += [rhs_buffer(f) for f in info.fields]
    if "start" in parts:
        buffers += [history_buffer(f) for f in info.fields]
    for make in (residual_buffer, direction, jvp_buffer):
        buffers += [make(f) for f in info.fields]
    extra_meta = GroupMeta()
    if theta_adjoint:
        from .fuse_adjoint import theta_adjoint as build_theta_adjoint

        more, extra_buffers, extra_meta = build_theta_adjoint(prog, info, scalars, halo, kernels)
        entries += more
        buffers += extra_buffers
    if adjoint is not None:
        buffers += [adjoint_buffer(f) for f in info.fields] + [param_buffer(p) for p in adjoint]
        extra_meta = adjoint_meta(prog, info)
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
        step=(),
        swaps=(),
        init=Launch("initial", info.fields),
        entries=tuple(entries),
        source_name=ctx.source_name,
        meta={
            "scheme": ctx.scheme if implicit else "newton",
            "order": ctx.order,
            "implicit": implicit,
            "constant_jacobian": constant_jacobian(prog, info.fields, info),
            "stages": 0,
            "periodic": tuple(grid_of(prog).periodic),
            "coupling": _coupling(prog, halo),
            "min_cells": min_cells(prog, halo),
            "robin": robin_faces(prog),
            **extra_meta,
        },
    )
