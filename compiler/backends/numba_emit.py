"""KernelGroup -> one Python module of @numba.njit(cache=True) functions.

The module holds every kernel, a ``step`` function running one time step's launches, an
``advance`` loop compiled around it (the runtime returns to Python only between outputs), the
``initial`` kernel and ``PLAN``, a literal description of buffers and arguments, so the module runs
without ritz: ``allocate`` and ``solve`` at its end are plain NumPy.
"""

from __future__ import annotations

import sympy

from ..kernels import Kernel, KernelGroup, Launch
from ..passes.fuse import ident
from .base import comment_safe, header_lines
from .numba_printer import NumbaPrinter
from .numba_tiling import tiling_applies, tiling_functions

INDENT = "    "


def _index(ndim: int, offsets: tuple[int, ...], base: list[str]) -> str:
    parts = []
    for a in range(ndim):
        o = offsets[a] if offsets else 0
        parts.append(base[a] if o == 0 else f"{base[a]} {'+' if o > 0 else '-'} {abs(o)}")
    return ", ".join(parts)


class NumbaEmitter:
    """Prints a KernelGroup as Python source for Numba."""

    def __init__(self, group: KernelGroup, version: str) -> None:
        self.g = group
        self.version = version
        self.printer = NumbaPrinter(group.dtype)

    # -- helpers ------------------------------------------------------------------------------
    def expr(self, e: sympy.Expr) -> str:
        return self.printer.doprint(e)

    def _signature(self, k: Kernel) -> str:
        arrays = [ident(a) if k.kind != "wrap" else a for a in k.arrays]
        return ", ".join(arrays + list(k.scalars))

    def _sizes(self, first_array: str) -> list[str]:
        h = self.g.halo
        return [f"n{a} = {first_array}.shape[{a}] - {2 * h}" for a in range(self.g.ndim)]

    def _coord_lines(self, k: Kernel, index: list[str]) -> list[str]:
        h = self.g.halo
        return [f"{sym} = lo{a} + ({index[a]} - {h - 0.5!r}) * h{a}" for sym, a in k.coords]

    def _body(self, k: Kernel, index: list[str], hoisted: bool = False) -> list[str]:
        lines = self._coord_lines(k, index)
        for r in k.reads:
            lines.append(f"{r.symbol} = {ident(r.array)}[{_index(self.g.ndim, r.offsets, index)}]")
        for sym, e in k.statements[k.invariant if hoisted else 0 :]:
            lines.append(f"{sym} = {self.expr(e)}")
        for j, w in enumerate(k.writes):
            if w.total:  # a partial sum, added into the array once per row (see stencil)
                lines.append(f"total{j} += {self.expr(w.value)}")
                continue
            lines.append(
                f"{ident(w.array)}[{_index(self.g.ndim, w.offsets, index)}] = {self.expr(w.value)}"
            )
        return lines

    # -- kernels ------------------------------------------------------------------------------
    def stencil(self, k: Kernel, parallel: bool = True) -> list[str]:
        nd, h = self.g.ndim, self.g.halo
        index = [f"i{a}" for a in range(nd)]
        first = ident(k.arrays[0])
        # partial sums: let LLVM reassociate them, or the running sum serialises (and stops
        # the vectorisation of) the whole loop body
        fast = ", fastmath={'reassoc'}" if any(w.total for w in k.writes) else ""
        out = [
            f"@numba.njit(cache=True{', parallel=True' if parallel else ''}{fast})",
            f"def {k.name}({self._signature(k)}):",
        ]
        out += [INDENT + f"# {comment_safe(c)}" for c in k.comments]
        out += [INDENT + line for line in self._sizes(first)]
        out += [INDENT + f"{sym} = {self.expr(e)}" for sym, e in k.statements[: k.invariant]]
        totals = [j for j, w in enumerate(k.writes) if w.total]
        depth = 1
        if nd == 1:  # one loop: Numba's prange reduction of the partial sums
            out += [INDENT + f"total{j} = 0.0" for j in totals]
        for a in range(nd):
            # count from zero and offset inside: LLVM vectorises `range(n)`, but a loop
            # `range(h, n + h)` with h >= 2 runs several times slower (measured 5x at h = 2)
            rng = "numba.prange" if (a == 0 and parallel) else "range"
            out.append(INDENT * depth + f"for j{a} in {rng}(n{a}):")
            out.append(INDENT * (depth + 1) + f"i{a} = j{a} + {h}")
            if a == 0 and nd > 1:  # one partial sum per row
                out += [INDENT * (depth + 1) + f"total{j} = 0.0" for j in totals]
            depth += 1
        out += [INDENT * depth + line for line in self._body(k, index, hoisted=True)]
        for j in totals:
            w = k.writes[j]
            if nd == 1:
                out.append(INDENT + f"{ident(w.array)}[{h}] += total{j}")
            else:
                at = ", ".join(["i0", *([str(h)] * (nd - 1))])
                out.append(INDENT * 2 + f"{ident(w.array)}[{at}] += total{j}")
        return out

    def _face_loops(self, k: Kernel, out: list[str]) -> tuple[int, list[str]]:
        """Loops over the axes other than ``k.axis``: lower axes over their whole padded range
        (their halos are already filled, which fills edges and corners), higher ones inside;
        a fold kernel (which writes inside the grid) runs inside on every axis."""
        nd, h = self.g.ndim, self.g.halo
        index = []
        depth = 1
        for a in range(nd):
            if a == k.axis:
                cell = f"{h}" if k.side in ("lo", "") else f"n{a} + {h - 1}"
                index.append(cell)
                continue
            padded = a < k.axis and k.kind != "fold"
            rng = f"range(0, n{a} + {2 * h})" if padded else f"range({h}, n{a} + {h})"
            out.append(INDENT * depth + f"for i{a} in {rng}:")
            index.append(f"i{a}")
            depth += 1
        return depth, index

    def ghost(self, k: Kernel) -> list[str]:
        out = ["@numba.njit(cache=True)", f"def {k.name}({self._signature(k)}):"]
        out += [INDENT + f"# {comment_safe(c)}" for c in k.comments]
        out += [INDENT + line for line in self._sizes(ident(k.arrays[0]))]
        depth, index = self._face_loops(k, out)
        out += [INDENT * depth + line for line in self._body(k, index)]
        return out

    def wrap(self, k: Kernel) -> list[str]:
        a, h = k.axis, self.g.halo
        out = [
            "@numba.njit(cache=True)",
            f"def {k.name}(a):",
            INDENT + f"# periodic halo along axis {a}",
        ]
        out += [INDENT + line for line in self._sizes("a")]
        depth, index = self._face_loops(k, out)
        out.append(INDENT * depth + f"for k in range({h}):")
        depth += 1

        def at(expr: str) -> str:
            return ", ".join(expr if b == a else index[b] for b in range(self.g.ndim))

        out.append(INDENT * depth + f"a[{at('k')}] = a[{at(f'n{a} + k')}]")
        out.append(INDENT * depth + f"a[{at(f'n{a} + {h} + k')}] = a[{at(f'{h} + k')}]")
        return out

    # -- drivers ------------------------------------------------------------------------------
    def _launch(self, launch: Launch) -> str:
        k = self.g.kernel(launch.kernel)
        arrays = [ident(b) for b in launch.arrays]
        if k.kind == "wrap":
            return f"{k.name}({', '.join(arrays)})"
        return f"{k.name}({', '.join(arrays + launch_scalars(k, launch))})"

    def entries(self) -> list[str]:
        """One function per named launch list (the steady solver's residual and jvp)."""
        g = self.g
        sig = ", ".join([ident(b) for b in g.buffers] + list(g.kernel("initial").scalars))
        out: list[str] = []
        for name, launches in g.entries:
            out += ["", "", "@numba.njit(cache=True)", f"def {name}({sig}):"]
            out += [INDENT + self._launch(launch) for launch in launches]
            if not launches:  # an entry with nothing to do (imex with no linear part)
                out.append(INDENT + "return None")
        return out

    def drivers(self) -> list[str]:
        g = self.g
        if not g.step:
            return self.entries()[2:]
        bufs = [ident(b) for b in g.buffers]
        scalars = list(g.kernel("initial").scalars)
        sig = ", ".join(bufs + scalars)
        out = [
            "@numba.njit(cache=True)",
            f"def step({sig}):",
            INDENT + f"# one {g.meta.get('scheme')} step",
        ]
        out += [INDENT + self._launch(launch) for launch in g.step]
        adv_scalars = ", ".join(s if s != "t" else "t0" for s in scalars)
        out += [
            "",
            "",
            "@numba.njit(cache=True)",
            f"def advance({', '.join(bufs)}, {adv_scalars}, nsteps):",
            INDENT + "# nsteps time steps from t0, state buffers exchanged after each",
            INDENT + "for n in range(nsteps):",
            INDENT * 2 + "t = t0 + n * dt",
            INDENT * 2 + f"step({sig})",
        ]
        for f, q in g.swaps:
            out.append(INDENT * 2 + f"{ident(f)}, {ident(q)} = {ident(q)}, {ident(f)}")
        out.append(INDENT + f"return ({', '.join(bufs)},)")
        out += self.entries()
        if any(name == "adjoint_step" for name, _ in g.entries):
            out += self.reverse_segment(bufs, sig, adv_scalars)
        return out

    def reverse_segment(self, bufs: list[str], sig: str, adv_scalars: str) -> list[str]:
        """A compiled segment of the adjoint sweep: ``nsteps`` steps forward, keeping each
        step's state and stage states in ``kept``, then their adjoints, last first (the
        runtime's loop for many small steps, where a Python call per step would dominate)."""
        g = self.g
        new_states = {q for _, q in g.swaps}
        kept = [b for b in g.buffers if b in g.fields or ("@q" in b and b not in new_states)]
        out = [
            "",
            "",
            f"REVERSE_KEPT = {tuple(kept)!r}",
            "",
            "",
            "@numba.njit(cache=True)",
            f"def reverse_segment({', '.join(bufs)}, {adv_scalars}, nsteps, kept):",
            INDENT + f"# kept[n, k]: buffer k of {tuple(kept)!r} as step n left it",
            INDENT + "for n in range(nsteps):",
            INDENT * 2 + "t = t0 + n * dt",
            INDENT * 2 + f"step({sig})",
        ]
        out += [INDENT * 2 + f"kept[n, {k}] = {ident(b)}" for k, b in enumerate(kept)]
        for f, q in g.swaps:
            out.append(INDENT * 2 + f"{ident(f)}, {ident(q)} = {ident(q)}, {ident(f)}")
        out += [INDENT + "for n in range(nsteps - 1, -1, -1):", INDENT * 2 + "t = t0 + n * dt"]
        out += [INDENT * 2 + f"{ident(b)}[...] = kept[n, {k}]" for k, b in enumerate(kept)]
        out.append(INDENT * 2 + f"adjoint_step({sig})")
        for lam, nxt in g.meta.get("adjoint_swaps", ()):
            out.append(INDENT * 2 + f"{ident(lam)}, {ident(nxt)} = {ident(nxt)}, {ident(lam)}")
        out.append(INDENT + f"return ({', '.join(bufs)},)")
        return out

    def plan_literal(self) -> list[str]:
        g = self.g
        return [
            "PLAN = {",
            f"    'problem': {g.name!r},",
            f"    'ndim': {g.ndim}, 'halo': {g.halo}, 'dtype': {g.dtype!r},",
            f"    'axes': {g.axes!r},",
            f"    'fields': {g.fields!r},",
            f"    'buffers': {g.buffers!r},",
            f"    'params': {g.params!r},",
            f"    'scalars': {tuple(g.kernel('initial').scalars)!r},",
            f"    'meta': {dict(g.meta)!r},",
            "}",
            "",
            f"KERNELS = {tuple(k.name for k in g.kernels)!r}",
        ]

    def module(self) -> str:
        g = self.g
        lines = [
            '"""' + "\n".join(header_lines(g, self.version, "numba")),
            "",
            CACHE_NOTE,
            '"""',
            "",
            "import math  # noqa: F401",
            "",
            "import numba",
            "import numpy as np",
            "",
        ]
        lines += self.plan_literal()
        for k in g.kernels:
            lines += ["", ""]
            if k.kind == "stencil" or k.kind == "init":
                lines += self.stencil(k)
            elif k.kind in ("ghost", "fold"):
                lines += self.ghost(k)
            elif k.kind == "wrap":
                lines += self.wrap(k)
            else:
                raise ValueError(f"unknown kernel kind {k.kind}")
        lines += ["", "", *self.drivers()]
        if tiling_applies(g):
            lines += tiling_functions(g, self.stencil, launch_scalars)
        standalone = STANDALONE.split("\n\n\ndef solve(")[0] if not g.step else STANDALONE
        lines += ["", "", *standalone.splitlines()]
        return "\n".join(lines) + "\n"


STANDALONE = '''def allocate(cells):
    """Zeroed padded buffers for a grid of ``cells`` (one int per axis), keyed by buffer name."""
    shape = tuple(int(n) + 2 * PLAN["halo"] for n in cells)
    return {b: np.zeros(shape, dtype=PLAN["dtype"]) for b in PLAN["buffers"]}


def scalars(params, bounds, cells, t, dt):
    """The scalar arguments of every kernel, in order."""
    values = {"p_" + k: v for k, v in params.items()}
    values.update(t=t, dt=dt)
    for a, ((lo, hi), n) in enumerate(zip(bounds, cells)):
        values[f"lo{a}"] = lo
        values[f"h{a}"] = (hi - lo) / n
    # in the module's dtype: a float32 kernel given Python floats would compute in float64
    real = np.dtype(PLAN["dtype"]).type
    return tuple(real(values[s]) for s in PLAN["scalars"])


def solve(params, bounds, cells, t0, t1, dt):
    """Initialise and integrate from t0 to t1 with steps of at most dt; returns the fields."""
    bufs = allocate(cells)
    nsteps = max(1, int(np.ceil((t1 - t0) / dt - 1e-9)))
    dt = (t1 - t0) / nsteps
    arrays = [bufs[b] for b in PLAN["buffers"]]
    initial(*[bufs[f] for f in PLAN["fields"]], *scalars(params, bounds, cells, t0, dt))
    # a small grid on one thread: waking the others costs more than its sweep
    threads = numba.get_num_threads()
    if int(np.prod(cells)) < 8192:
        numba.set_num_threads(1)
    try:
        arrays = advance(*arrays, *scalars(params, bounds, cells, t0, dt), nsteps)
    finally:
        numba.set_num_threads(threads)
    h = PLAN["halo"]
    inner = tuple(slice(h, -h) for _ in cells)
    return {f: arrays[i][inner].copy() for i, f in enumerate(PLAN["fields"])}'''


def launch_scalars(k: Kernel, launch: Launch) -> list[str]:
    """The scalar arguments of a launch, the time taken at the launch's stage: t + c * dt."""
    stage_t = f"t + {launch.stage_c!r} * dt" if launch.stage_c else "t"
    return [stage_t if s == "t" else s for s in k.scalars]


# the cached module's note; ``ritz build`` replaces it in the copies it writes (BUILT_NOTE)
CACHE_NOTE = "Edit and rerun at will: this file is regenerated only when its source changes."
BUILT_NOTE = (
    "Written by `ritz build`: nothing regenerates it. Import it as a module (its directory on\n"
    "sys.path, `import NAME`): Numba caches its kernels under the module's name."
)


def emit_numba(group: KernelGroup, version: str) -> str:
    """The Numba module source of a KernelGroup."""
    return NumbaEmitter(group, version).module()
