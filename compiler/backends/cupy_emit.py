"""KernelGroup -> CUDA C kernels and a Python module that drives them with CuPy.

``cuda_source`` prints one translation unit: an ``extern "C" __global__`` kernel per Kernel of
the plan (the same plan the Numba emitter prints), typed ``double`` or ``float`` by the group's
dtype, plus two one-thread kernels that keep the simulation clock on the device. ``emit_cupy``
wraps it in a module with the Numba module's interface (``PLAN``, ``KERNELS``, ``initial``,
``advance``, ``allocate``/``scalars``/``solve``) whose time loop replays CUDA graphs; the runtime
part of that module is the fixed text in ``cupy_runtime.py``.
"""

from __future__ import annotations

import sympy

from ..kernels import Kernel, KernelGroup
from ..passes.fuse import T, ident
from .base import NameRegistry, comment_safe, header_lines
from .cuda_printer import CudaPrinter
from .cupy_runtime import RUNTIME
from .numba_emit import NumbaEmitter

INDENT = "    "


def _c_comment(text: str) -> str:
    """A one-line ``//`` comment: printable, and no backslash to splice the next line in."""
    return "// " + comment_safe(text).replace("\\", "/")


def _used_symbols(k: Kernel) -> set[sympy.Symbol]:
    """Symbols the writes need, through the statements (nvcc warns on unused locals)."""
    need: set[sympy.Symbol] = set()
    for w in k.writes:
        need |= w.value.free_symbols
    for sym, e in reversed(k.statements):
        if sym in need:
            need |= e.free_symbols
    return need


class CudaEmitter:
    """Prints a KernelGroup as CUDA C for ``cupy.RawModule``."""

    def __init__(self, group: KernelGroup, version: str) -> None:
        self.g = group
        self.version = version
        self.p = CudaPrinter(group.dtype)
        self.real = self.p.real
        names = NameRegistry()
        for k in group.kernels:
            names.used.add(names.checked(k.name))
        self.clock_set = names.fresh("clock_set")
        self.clock_tick = names.fresh("clock_tick")

    # -- pieces --------------------------------------------------------------------------------
    def _params(self, k: Kernel) -> str:
        real, nd = self.real, self.g.ndim
        written = {w.array for w in k.writes}
        out = []
        if k.kind == "wrap":
            out.append(f"{real}* __restrict__ a")
        else:
            for arr in k.arrays:
                const = "" if arr in written else "const "
                out.append(f"{const}{real}* __restrict__ {self.p.name(ident(arr))}")
        for s in k.scalars:
            if s == "t":  # the time lives on the device (see the module docstring)
                out += ["const double* __restrict__ clock", "const double tc"]
            else:
                out.append(f"const {real} {self.p.name(s)}")
        out += [f"const int n{a}" for a in range(nd)]
        return ", ".join(out)

    def _strides(self) -> list[str]:
        nd, h = self.g.ndim, self.g.halo
        if nd == 2:
            return [f"const long long s0 = (long long)n1 + {2 * h};"]
        if nd == 3:
            return [
                f"const long long s1 = (long long)n2 + {2 * h};",
                f"const long long s0 = s1 * ((long long)n1 + {2 * h});",
            ]
        return []

    def _stride(self, a: int) -> str:
        return "1" if a == self.g.ndim - 1 else f"s{a}"

    def _linear(self, index: list[str]) -> str:
        nd = self.g.ndim
        terms = [
            f"(long long)({index[a]})" + ("" if a == nd - 1 else f" * s{a}") for a in range(nd)
        ]
        return " + ".join(terms)

    def _at(self, offsets: tuple[int, ...]) -> str:
        out = "idx"
        for a, o in enumerate(offsets or ()):
            if o == 0:
                continue
            step = self._stride(a)
            amount = str(abs(o)) if step == "1" else (step if abs(o) == 1 else f"{abs(o)} * {step}")
            out += f" {'+' if o > 0 else '-'} {amount}"
        return out

    def _body(self, k: Kernel, index: list[str]) -> list[str]:
        real, p, h = self.real, self.p, self.g.halo
        used = _used_symbols(k)
        lines = [f"const long long idx = {self._linear(index)};"]
        for sym, a in k.coords:
            if sym in used:
                lines.append(
                    f"const {real} {p.name(sym.name)} = lo{a} + (({real})({index[a]}) - "
                    f"{p.literal(h - 0.5)}) * h{a};"
                )
        if T in used:
            lines.append(self._time_line())
        for r in k.reads:
            if r.symbol in used:
                lines.append(
                    f"const {real} {p.name(r.symbol.name)} = "
                    f"{p.name(ident(r.array))}[{self._at(r.offsets)}];"
                )
        for sym, e in k.statements:
            if sym in used:
                lines.append(f"const {real} {p.name(sym.name)} = {p.doprint(e)};")
        for j, w in enumerate(k.writes):
            if w.total:  # a partial sum per thread, added into the array after its loop
                lines.append(f"total{j} += {p.doprint(w.value)};")
                continue
            lines.append(f"{p.name(ident(w.array))}[{self._at(w.offsets)}] = {p.doprint(w.value)};")
        return lines

    def _time_line(self) -> str:
        # as the Numba loop: t = t0 + n * dt, then the stage time t + c * dt (in double)
        if self.real == "double":
            return "const double t = (clock[0] + clock[1] * dt) + tc * dt;"
        return "const float t = (float)((clock[0] + clock[1] * (double)dt) + tc * (double)dt);"

    # -- kernels -------------------------------------------------------------------------------
    def _open(self, k: Kernel, what: str) -> list[str]:
        out = [_c_comment(f"{k.name}: {what}")]
        out += [_c_comment(c) for c in k.comments]
        out.append(f'extern "C" __global__ void {k.name}({self._params(k)})')
        out.append("{")
        return out

    def stencil(self, k: Kernel) -> list[str]:
        """Interior points; threadIdx.x runs along the last (contiguous) axis, and each thread
        strides over the first axis (several points per thread when the grid is capped)."""
        nd, h = self.g.ndim, self.g.halo
        out = self._open(k, "every interior point" if k.kind == "stencil" else "initial values")
        pre = self._strides()
        dims = ("x", "y", "z")
        for j, a in enumerate(range(nd - 1, 0, -1)):  # inner axes: one point per thread
            d = dims[j]
            pre.append(
                f"const int i{a} = (int)(blockIdx.{d} * blockDim.{d} + threadIdx.{d}) + {h};"
            )
            pre.append(f"if (i{a} >= n{a} + {h}) return;")
        d = dims[nd - 1]
        totals = [j for j, w in enumerate(k.writes) if w.total]
        pre += [f"{self.real} total{j} = 0;" for j in totals]
        first = f"(int)(blockIdx.{d} * blockDim.{d} + threadIdx.{d}) + {h}"
        pre.append(
            f"for (int i0 = {first}; i0 < n0 + {h}; i0 += (int)(gridDim.{d} * blockDim.{d})) {{"
        )
        out += [INDENT + line for line in pre]
        out += [INDENT * 2 + line for line in self._body(k, [f"i{a}" for a in range(nd)])]
        out.append(INDENT + "}")
        if totals:  # each thread owns the first point of its column: no two threads share it
            out.append(INDENT + f"const int f0 = {first};")
            out.append(INDENT + f"if (f0 < n0 + {h}) {{")
            at = self._linear(["f0", *(f"i{a}" for a in range(1, nd))])
            for j in totals:
                name = self.p.name(ident(k.writes[j].array))
                out.append(INDENT * 2 + f"{name}[{at}] += total{j};")
            out.append(INDENT + "}")
        out.append("}")
        return out

    def _face(self, k: Kernel) -> tuple[list[str], list[str]]:
        """A grid-stride loop over the points of a face of ``k.axis``: lower axes over their
        padded range (their halos are filled already: edges and corners), higher ones inside."""
        nd, h, ax = self.g.ndim, self.g.halo, k.axis
        others = [b for b in range(nd) if b != ax]
        padded = {b: b < ax and k.kind != "fold" for b in others}  # a fold writes inside
        extent = {b: (f"(n{b} + {2 * h})" if padded[b] else f"n{b}") for b in others}
        first = {b: (0 if padded[b] else h) for b in others}
        count = " * ".join(f"(long long){extent[b]}" for b in others) or "1LL"
        pre = [
            *self._strides(),
            f"const long long count = {count};",
            "for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < count; "
            "p += (long long)gridDim.x * blockDim.x) {",
        ]
        inner = []
        if len(others) > 1:
            inner.append("long long r = p;")
        for j, b in enumerate(reversed(others)):
            src = "p" if len(others) == 1 else "r"
            inner.append(f"const int i{b} = (int)({src} % {extent[b]}) + {first[b]};")
            if len(others) > 1 and j < len(others) - 1:
                inner.append(f"r /= {extent[b]};")
        index = [f"i{b}" for b in range(nd)]
        index[ax] = str(h) if k.side in ("lo", "") else f"n{ax} + {h - 1}"
        return [INDENT + line for line in pre] + [INDENT * 2 + line for line in inner], index

    def ghost(self, k: Kernel) -> list[str]:
        what = "ghost layers beyond" if k.kind == "ghost" else "cells folded onto inside"
        out = self._open(k, f"{what} the {k.side} face of axis {k.axis}")
        loops, index = self._face(k)
        out += loops
        out += [INDENT * 2 + line for line in self._body(k, index)]
        out += [INDENT + "}", "}"]
        return out

    def wrap(self, k: Kernel) -> list[str]:
        a, h, nd = k.axis, self.g.halo, self.g.ndim
        out = self._open(k, f"periodic halo along axis {a}")
        loops, _ = self._face(k)
        out += loops
        others = [b for b in range(nd) if b != a]
        base = " + ".join(f"(long long)i{b}" + ("" if b == nd - 1 else f" * s{b}") for b in others)
        sa = self._stride(a)

        def at(cell: str) -> str:
            return f"base + (long long)({cell})" + ("" if sa == "1" else f" * {sa}")

        out += [
            INDENT * 2 + f"const long long base = {base or '0'};",
            INDENT * 2 + f"for (int g = 0; g < {h}; ++g) {{",
            INDENT * 3 + f"a[{at('g')}] = a[{at(f'n{a} + g')}];",
            INDENT * 3 + f"a[{at(f'n{a} + {h} + g')}] = a[{at(f'{h} + g')}];",
            INDENT * 2 + "}",
            INDENT + "}",
            "}",
        ]
        return out

    def clock_kernels(self) -> list[str]:
        return [
            _c_comment(f"{self.clock_set}: clock = [t0, 0] (start time, steps taken)"),
            f'extern "C" __global__ void {self.clock_set}(double* clock, const double t0)',
            "{",
            INDENT + "clock[0] = t0;",
            INDENT + "clock[1] = 0.0;",
            "}",
            "",
            _c_comment(f"{self.clock_tick}: one step taken (the last launch of every step)"),
            f'extern "C" __global__ void {self.clock_tick}(double* clock)',
            "{",
            INDENT + "clock[1] += 1.0;",
            "}",
        ]

    def source(self) -> str:
        g = self.g
        lines = [_c_comment(line) for line in header_lines(g, self.version, "cupy")]
        lines += [
            _c_comment(
                f"Arrays are C-ordered padded grids with {g.halo} ghost layer(s) per face; "
                "n0, n1, ... count interior cells."
            ),
            "",
        ]
        for k in g.kernels:
            if k.kind in ("stencil", "init"):
                lines += self.stencil(k)
            elif k.kind in ("ghost", "fold"):
                lines += self.ghost(k)
            elif k.kind == "wrap":
                lines += self.wrap(k)
            else:
                raise ValueError(f"unknown kernel kind {k.kind}")
            lines.append("")
        lines += self.clock_kernels()
        return "\n".join(lines) + "\n"

    # -- the Python module ---------------------------------------------------------------------
    def tables(self) -> list[str]:
        g = self.g
        index = {b: i for i, b in enumerate(g.buffers)}
        sig = {k.name: (k.kind, k.axis, tuple(k.scalars)) for k in g.kernels}
        initial = g.init.kernel if g.init is not None else "initial"
        lines = [
            f"CLOCK_SET, CLOCK_TICK = {self.clock_set!r}, {self.clock_tick!r}",
            f"INITIAL = {initial!r}",
            "",
        ]
        lines.append("# kernel -> (kind, axis, scalar arguments in order; 't' is the clock)")
        lines.append("SIGNATURES = {")
        lines += [f"    {name!r}: {value!r}," for name, value in sig.items()]
        lines.append("}")
        lines += ["", "# one time step: (kernel, indices into PLAN['buffers'], stage c)"]
        lines.append("STEP = (")
        for launch in g.step:
            idx = tuple(index[b] for b in launch.arrays)
            lines.append(f"    ({launch.kernel!r}, {idx!r}, {float(launch.stage_c)!r}),")
        lines.append(")")
        swaps = tuple((index[f], index[q]) for f, q in g.swaps)
        lines += ["", "# after each step these buffers exchange roles", f"SWAPS = {swaps!r}"]
        lines += ["", "# named launch lists (a steady solve's residual and jvp)", "ENTRIES = {"]
        for name, launches in g.entries:
            calls = tuple(
                (launch.kernel, tuple(index[b] for b in launch.arrays), float(launch.stage_c))
                for launch in launches
            )
            lines.append(f"    {name!r}: {calls!r},")
        lines.append("}")
        return lines

    def entry_functions(self) -> list[str]:
        names = NameRegistry()
        lines = []
        for name, _ in self.g.entries:
            lines += [
                "",
                "",
                f"def {names.checked(name)}(*args):",
                f'    """Run the {name} launch list on device buffers (buffers, then scalars)."""',
                f"    _run_entry({name!r}, args)",
            ]
        return lines

    def module(self) -> str:
        g = self.g
        source = self.source()
        # comments are sanitised, so the raw triple-quoted form always fits; repr() if not
        safe = '"""' not in source and "\\" not in source
        literal = 'r"""' + source + '"""' if safe else repr(source)
        lines = [
            '"""' + "\n".join(header_lines(g, self.version, "cupy")),
            "",
            RUNTIME_DOC,
            '"""',
            "",
            "import collections",
            "import hashlib",
            "import os",
            "import pathlib",
            "",
            "import cupy",
            "import numpy as np",
            "",
            f"CUDA_SOURCE = {literal}",
            "",
        ]
        lines += NumbaEmitter(g, self.version).plan_literal()
        lines += ["", *self.tables(), "", *RUNTIME.splitlines(), *self.entry_functions()]
        return "\n".join(lines) + "\n"


RUNTIME_DOC = """\
CUDA C kernels (CUDA_SOURCE) driven through CuPy, with the interface of the Numba module:
initial(*fields, *scalars) and advance(*buffers, *scalars, nsteps) on device arrays, and
allocate/scalars/solve for use without ritz.

The time loop never waits for the host. advance() replays CUDA graphs, each captured once by
stream capture, and launches kernels back to back on the current stream only where capture
fails. A graph bakes in its kernel arguments, so:
  * the time is no argument: a device array clock = [t0, n] (start time, steps taken) is read
    by every kernel, which computes its stage time as (t0 + n*dt) + c*dt like the Numba loop;
    the last launch of each step adds one to n, and advance() resets the clock (one tiny
    launch) before it replays anything;
  * a graph holds an even number of steps (2, 4, ..., 64), so the buffer exchanges after each
    step (SWAPS) bring every buffer back to its role; an odd last step runs as plain launches,
    and advance() returns the buffers in their new roles, as the Numba module does;
  * graphs are cached by buffer and clock addresses, scalar values, grid and step count.
Kernels compile on first use, per GPU architecture, with NVRTC to a cubin beside this file
(named for the source, the options and the architecture), so a warm start only loads it;
where that fails (load_status says why) CuPy compiles them and caches the binary itself."""


def cuda_source(group: KernelGroup, version: str) -> str:
    """The CUDA C source (one translation unit) of a KernelGroup."""
    return CudaEmitter(group, version).source()


def emit_cupy(group: KernelGroup, version: str) -> str:
    """The Python module (CuPy and NumPy only) that embeds and drives the CUDA source."""
    return CudaEmitter(group, version).module()
