"""The kernel plan: the second and last IR, consumed by every backend printer.

A KernelGroup holds kernels (loop nests over a padded grid, bodies in SymPy), the buffers they
work on, and the schedule of one time step (which kernels run, on which buffers, at which stage
time, and which buffers swap afterwards). Backends print it; the runtime drives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import sympy


@dataclass(frozen=True)
class Read:
    """``symbol = array[point + offsets]`` (offsets in cells along each axis)."""

    symbol: sympy.Symbol
    array: str
    offsets: tuple[int, ...]


@dataclass(frozen=True)
class Write:
    """``array[point + offsets] = value``; ``total``: ``value`` is summed over the kernel's
    points instead, each backend keeping partial sums (per row on the CPU, per thread on the
    GPU) and adding them into ``array`` at interior points of its choice, so only the sum of
    the array's interior is defined (how parameter cotangents are accumulated)."""

    array: str
    value: sympy.Expr
    offsets: tuple[int, ...] = ()
    total: bool = False


@dataclass(frozen=True)
class Kernel:
    """One loop nest.

    kinds:
      ``stencil``  every interior point: reads, statements, writes (offsets all 0 in writes);
      ``ghost``    the ghost layers beyond face ``side`` of ``axis``: reads are relative to the
                   boundary cell (offsets along ``axis`` point inward), writes at offsets
                   -1, -2, ... (outward) along ``axis``;
      ``wrap``     periodic halo along ``axis`` for ``arrays`` (copies, no body);
      ``fold``     like ``ghost`` (reads relative to the boundary cell), but writes inside the
                   grid at inward offsets, looping over the interior of the other axes (an
                   adjoint folding ghost reads back onto the cells they extrapolate);
      ``init``     every interior point: writes only (initial conditions).
    ``coords`` lists the coordinate symbols the body uses, with their axis; ``scalars`` the
    scalar arguments in order.
    """

    name: str
    kind: str
    arrays: tuple[str, ...]
    scalars: tuple[str, ...]
    reads: tuple[Read, ...] = ()
    statements: tuple[tuple[sympy.Symbol, sympy.Expr], ...] = ()
    writes: tuple[Write, ...] = ()
    coords: tuple[tuple[sympy.Symbol, int], ...] = ()
    axis: int = -1
    side: str = ""
    comments: tuple[str, ...] = ()
    invariant: int = 0  # the first `invariant` statements use scalars only (hoistable)


@dataclass(frozen=True)
class Launch:
    """Run ``kernel`` with its array parameters bound to buffers; ``time`` is the stage time as
    ``t + c * dt`` (c given)."""

    kernel: str
    arrays: tuple[str, ...]
    stage_c: float = 0.0


class GroupMeta(TypedDict, total=False):
    """Facts about a KernelGroup that backends print and the runtime reads."""

    scheme: str  # the integrator's name (explicit or implicit), or "newton" for a steady problem
    order: int
    stages: int
    periodic: tuple[bool, ...]  # per axis
    coupling: int  # Newton solves: how far apart two coupled unknowns can be, in cells
    min_cells: tuple[int, ...]  # per axis
    implicit: bool  # cn, imex: entries explicit (and start), residual, jvp
    constant_jacobian: bool  # Newton solves: J v depends on neither the state nor the time
    robin: tuple[tuple[str, int, str, int], ...]  # (field, axis, side, degree) checked at run time
    adjoint_params: tuple[str, ...]  # adjoint groups: the parameters with cotangent buffers
    # explicit adjoint groups: after adjoint_step, (lambda, lambda') exchange roles
    adjoint_swaps: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class KernelGroup:
    """Everything a backend prints for one problem and one method."""

    name: str
    ndim: int
    halo: int
    dtype: str
    axes: tuple[str, ...]
    fields: tuple[str, ...]
    buffers: tuple[str, ...]  # every padded grid array: fields first, then stage buffers
    params: tuple[str, ...]  # user parameters (scalar arguments, in order)
    kernels: tuple[Kernel, ...]
    step: tuple[Launch, ...]  # one time step
    swaps: tuple[tuple[str, str], ...]  # after a step: (field, buffer) exchange roles
    init: Launch | None = None
    entries: tuple[tuple[str, tuple[Launch, ...]], ...] = ()  # named launch lists (steady solves)
    source_name: str = ""
    source_hash: str = ""
    meta: GroupMeta = field(default_factory=lambda: GroupMeta())

    def kernel(self, name: str) -> Kernel:
        for k in self.kernels:
            if k.name == name:
                return k
        raise KeyError(name)


# Scalar arguments every kernel may take, besides user parameters: the current (stage) time,
# the step, and per axis the lower bound and spacing of the grid.
def grid_scalars(ndim: int) -> tuple[str, ...]:
    return tuple(f"lo{i}" for i in range(ndim)) + tuple(f"h{i}" for i in range(ndim))


def describe(group: KernelGroup) -> str:
    """A short text form of a kernel plan: kernels, buffers and the step schedule."""
    lines = [
        f"kernel group {group.name}: {group.ndim}-D, halo {group.halo}, {group.dtype}",
        f"  buffers: {', '.join(group.buffers)}",
    ]
    for k in group.kernels:
        extra = f" axis {k.axis} {k.side}".rstrip() if k.kind in ("ghost", "wrap", "fold") else ""
        lines.append(
            f"  kernel {k.name} ({k.kind}{extra}): arrays {', '.join(k.arrays)}; "
            f"{len(k.reads)} reads, {len(k.statements)} temporaries, "
            f"{len(k.writes)} writes"
        )
    if group.step:
        lines.append("  step:")
    for launch in group.step:
        when = f" at t + {launch.stage_c:g} dt" if launch.stage_c else ""
        lines.append(f"    {launch.kernel}({', '.join(launch.arrays)}){when}")
    if group.step:
        swaps = ", ".join(f"{a} <-> {b}" for a, b in group.swaps)
        lines.append(f"  then swap {swaps}")
    for name, launches in group.entries:
        lines.append(f"  entry {name}:")
        for launch in launches:
            when = f" at t + {launch.stage_c:g} dt" if launch.stage_c else ""
            lines.append(f"    {launch.kernel}({', '.join(launch.arrays)}){when}")
    return "\n".join(lines) + "\n"
