"""Temporal blocking for the Numba backend: several time steps per pass over memory.

The grid is cut into tiles along its first two axes. Each thread copies a tile plus an overlap
of ``kb * stages * halo`` cells into small local buffers that stay in cache, runs ``kb`` whole
steps on them with serial twins of the stage kernels (``<stage>_tile``), and writes the tile's
interior back. The overlap is exactly what the stencils eat into per stage, so the written cells
are the same numbers, bit for bit, as those of the plain loop: same kernels, same operation order
(face data of a periodic coordinate agree to rounding: past the seam a tile wraps the coordinate
by a remainder, where the plain loop has the cell's own).
Ghost kernels run on a tile only where it touches a face of the domain; periodic tiled axes are
loaded modulo the grid instead of wrapped. The runtime times both loops on the first long
``advance`` and keeps the faster (blocking pays for memory-bound stencils, not for heavy ones).

Only generated when the tiled axes' coordinates are not used on a periodic tiled axis (a value
computed in the overlap past a periodic seam would see the coordinate beyond the domain).
"""

from __future__ import annotations

from dataclasses import replace

from ..kernels import KernelGroup, Launch
from ..passes.fuse import ident

INDENT = "    "
TILED = 2  # the first two axes are tiled; a third stays whole


def tiling_applies(g: KernelGroup) -> bool:
    """Blocking needs 2 or 3 axes and no periodic tiled axis whose coordinate a stage reads."""
    if g.ndim < 2 or not g.step:
        return False
    periodic = g.meta.get("periodic", (False,) * g.ndim)
    for launch in g.step:
        k = g.kernel(launch.kernel)
        if k.kind == "stencil" and any(periodic[a] for _, a in k.coords if a < TILED):
            return False
    return True


def tiling_functions(g: KernelGroup, stencil_printer, launch_scalars) -> list[str]:
    """Source of the ``*_tile`` kernels, ``step_tile`` and ``advance_tiled``; the emitter lends
    its stencil printer and its launch-argument printer, so tiles print exactly like the plain
    loop."""
    out: list[str] = []
    for name in dict.fromkeys(launch.kernel for launch in g.step):
        k = g.kernel(name)
        if k.kind == "stencil":
            out += ["", "", *stencil_printer(replace(k, name=f"{k.name}_tile"), parallel=False)]
    out += ["", "", *_step_tile(g, launch_scalars), "", "", *_advance_tiled(g)]
    return out


def _flags() -> list[str]:
    return [f"at_{side}{a}" for a in range(TILED) for side in ("lo", "hi")]


def _tile_launch(g: KernelGroup, launch: Launch, launch_scalars) -> list[str]:
    k = g.kernel(launch.kernel)
    arrays = [ident(b) for b in launch.arrays]
    if k.kind == "wrap":
        return [] if k.axis < TILED else [f"{k.name}({', '.join(arrays)})"]
    call_name = f"{k.name}_tile" if k.kind == "stencil" else k.name
    call = f"{call_name}({', '.join(arrays + launch_scalars(k, launch))})"
    if k.kind == "ghost" and k.axis < TILED:
        return [f"if at_{k.side}{k.axis}:", INDENT + call]
    return [call]


def _step_tile(g: KernelGroup, launch_scalars) -> list[str]:
    bufs = [ident(b) for b in g.buffers]
    scalars = list(g.kernel("initial").scalars)
    out = [
        "@numba.njit(cache=True)",
        f"def step_tile({', '.join(bufs + scalars + _flags())}):",
        INDENT + "# one step on a tile's local buffers: ghosts only on the domain's faces",
    ]
    for launch in g.step:
        out += [INDENT + line for line in _tile_launch(g, launch, launch_scalars)]
    return out


def _advance_tiled(g: KernelGroup) -> list[str]:
    h, nd = g.halo, g.ndim
    stages = int(g.meta.get("stages", 1))
    periodic = g.meta.get("periodic", (False,) * nd)
    bufs = [ident(b) for b in g.buffers]
    fields = [ident(f) for f in g.fields]
    finals = {ident(f): ident(q) for f, q in g.swaps}
    scalars = list(g.kernel("initial").scalars)
    adv_scalars = [s if s != "t" else "t0" for s in scalars]
    first = bufs[0]
    local_scalars = [{"t": "t", "lo0": "llo0", "lo1": "llo1"}.get(s, s) for s in scalars]
    whole = ", :" if nd == 3 else ""
    I1, I2, I3, I4 = (INDENT * n for n in (1, 2, 3, 4))
    out = [
        "@numba.njit(cache=True, parallel=True)",
        f"def advance_tiled({', '.join(bufs + adv_scalars)}, nsteps, tr, tc, kb):",
        I1 + "# nsteps steps in blocks of kb per pass over memory, on tr x tc tiles",
        I1 + f"w = kb * {stages * h}",
        I1 + f"n0 = {first}.shape[0] - {2 * h}",
        I1 + f"n1 = {first}.shape[1] - {2 * h}",
        I1 + "nt0 = (n0 + tr - 1) // tr",
        I1 + "nt1 = (n1 + tc - 1) // tc",
        I1 + "nblocks = nsteps // kb",
        I1 + "for blk in range(nblocks):",
        I2 + "tb = t0 + blk * kb * dt",
        I2 + "for tile in numba.prange(nt0 * nt1):",
        I3 + "a0 = (tile // nt1) * tr",
        I3 + "b0 = min(n0, a0 + tr)",
        I3 + "a1 = (tile % nt1) * tc",
        I3 + "b1 = min(n1, a1 + tc)",
    ]
    for a in range(TILED):
        if periodic[a]:
            out += [I3 + f"s{a} = a{a} - w", I3 + f"e{a} = b{a} + w"]
            out += [I3 + f"at_lo{a} = False", I3 + f"at_hi{a} = False"]
        else:
            out += [I3 + f"s{a} = max(0, a{a} - w)", I3 + f"e{a} = min(n{a}, b{a} + w)"]
            out += [I3 + f"at_lo{a} = s{a} == 0", I3 + f"at_hi{a} = e{a} == n{a}"]
    shape = f"(e0 - s0 + {2 * h}, e1 - s1 + {2 * h}" + (f", {first}.shape[2])" if nd == 3 else ")")
    for b in bufs:
        out.append(I3 + f"L_{b} = np.empty({shape}, dtype={first}.dtype)")
    out += [I3 + "for i in range(e0 - s0):"]
    gi = "(s0 + i) % n0" if periodic[0] else "s0 + i"
    gj = "(s1 + j) % n1" if periodic[1] else "s1 + j"
    out += [I4 + "for j in range(e1 - s1):"]
    for f in fields:
        out.append(
            I4 + INDENT + f"L_{f}[{h} + i, {h} + j{whole}] = {f}[{h} + {gi}, {h} + {gj}{whole}]"
        )
    out += [I3 + "llo0 = lo0 + s0 * h0", I3 + "llo1 = lo1 + s1 * h1"]
    local = [f"L_{b}" for b in bufs]
    out += [
        I3 + "for s in range(kb):",
        I4 + "t = tb + s * dt",
        I4 + f"step_tile({', '.join(local + local_scalars + _flags())})",
    ]
    for f, q in finals.items():
        out.append(I4 + f"L_{f}, L_{q} = L_{q}, L_{f}")
    out += [I3 + "for i in range(a0, b0):", I4 + "for j in range(a1, b1):"]
    for f, q in finals.items():
        out.append(
            I4 + INDENT + f"{q}[{h} + i, {h} + j{whole}] = L_{f}[{h} + i - s0, {h} + j - s1{whole}]"
        )
    for f, q in finals.items():
        out.append(I2 + f"{f}, {q} = {q}, {f}")
    rest_scalars = [s if s != "t0" else "t0 + nblocks * kb * dt" for s in adv_scalars]
    out += [
        I1 + "# the steps that do not fill a block run the plain loop",
        I1 + f"return advance({', '.join(bufs + rest_scalars)}, nsteps - nblocks * kb)",
    ]
    return out
