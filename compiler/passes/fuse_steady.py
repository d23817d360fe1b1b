"""fuse_steady: residual and Jacobian-vector Programs -> the KernelGroup of a steady solve.

Input: the output of ``linearize`` (outputs ``res:<f>`` and ``jvp:<f>``). Output: a KernelGroup
with two entries the runtime's Newton-Krylov solver calls: ``residual`` (fill the fields' halos,
then write R(u) into ``<f>@r``) and ``jvp`` (fill the halos of the fields and the direction
``<f>@v``, then write J(u) v into ``<f>@jv``). No time step, no swaps.
"""

from __future__ import annotations

from ..ir.program import Program
from ..kernels import Kernel, KernelGroup, Launch, grid_scalars
from .fuse import (
    FuseInput,
    grid_of,
    halo_launches,
    initial_kernel,
    min_cells,
    param_symbol,
    stencil_kernel,
)
from .linearize import direction
from .manager import PassContext


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


def fuse_steady(prog: Program, ctx: PassContext, info: FuseInput) -> KernelGroup:
    ndim = grid_of(prog).ndim
    scalars = (*(param_symbol(p).name for p in info.params), "t", "dt", *grid_scalars(ndim))
    res_k, res_st = stencil_kernel(
        prog,
        "residual_kernel",
        [(residual_buffer(f), prog.outputs[f"res:{f}"]) for f in info.fields],
        info,
        scalars,
    )
    jvp_k, jvp_st = stencil_kernel(
        prog,
        "jvp_kernel",
        [(jvp_buffer(f), prog.outputs[f"jvp:{f}"]) for f in info.fields],
        info,
        scalars,
    )
    halo = max([1, *res_st.values(), *jvp_st.values()])
    kernels: dict[str, Kernel] = {}
    residual = halo_launches(prog, res_st, halo, info, scalars, kernels)
    residual.append(Launch(res_k.name, res_k.arrays))
    jvp = halo_launches(prog, jvp_st, halo, info, scalars, kernels)
    jvp.append(Launch(jvp_k.name, jvp_k.arrays))
    kernels[res_k.name] = res_k
    kernels[jvp_k.name] = jvp_k
    init = initial_kernel(info, ndim, scalars)
    kernels[init.name] = init
    buffers = [*info.fields]
    for make in (residual_buffer, direction, jvp_buffer):
        buffers += [make(f) for f in info.fields]
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
        entries=(("residual", tuple(residual)), ("jvp", tuple(jvp))),
        source_name=ctx.source_name,
        meta={
            "scheme": "newton",
            "order": ctx.order,
            "stages": 0,
            "coupling": _coupling(prog, halo),
            "min_cells": min_cells(prog, halo),
        },
    )
