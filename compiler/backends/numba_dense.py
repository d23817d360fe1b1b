"""Gridless tensor Programs (networks, losses, their gradients) -> one Numba function each.

Every live op becomes a few lines of one ``@numba.njit`` function: a ``Map`` is a loop nest
(parallel over its leading axis) that reads its arguments with NumPy broadcasting and looks
through ``Broadcast`` ops instead of materialising them; a ``Contract`` that is a matrix or
matrix-vector product is ``np.dot`` on (transposed) views, which Numba hands to BLAS; other
contractions and ``Reduce`` ops are loop nests. Symbolic sizes are read off the inputs' shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from ...dsl.source import Span
from ..ir.adjoint_ops import BroadcastInDim, Embed
from ..ir.ops import (
    Broadcast,
    Const,
    Contract,
    Extent,
    Input,
    Map,
    Op,
    Reduce,
    Shape,
    Take,
    placeholder,
)
from ..ir.program import Program
from ..rules import contract_terms
from .base import NameRegistry, comment_safe, safe_name
from .numba_printer import NumbaPrinter


class DenseFunction:
    """Prints one Program as a function ``name(*inputs) -> tuple(outputs)``."""

    def __init__(
        self,
        prog: Program,
        name: str,
        inputs: dict[str, str],
        dtype: str,
        names: NameRegistry,
        given: dict[str, str] | None = None,
        counts: dict[str, str] | None = None,
    ) -> None:
        self.prog = prog
        self.name = name
        self.inputs = inputs  # Input name -> identifier (chosen by the module printer)
        self.dtype = dtype
        self.names = names
        # sizes passed as parameters: ``given`` for loops (where no input has the size),
        # ``counts`` for Extents (a chunk's mean divides by the whole batch, not the chunk)
        self.given = dict(given or {})
        self.counts = dict(counts or {})
        # float32: tanh as the module's vectorisable rational function, not a scalar libm call
        self.printer = NumbaPrinter(dtype, fast_tanh=dtype == "float32")
        self.users = prog.users()
        self.live = prog.live()
        self.var: dict[int, str] = {}
        self.dims: dict[str, str] = {}
        self.lines: list[str] = []
        self.parallel = True

    # -- helpers -------------------------------------------------------------------------------
    @property
    def np_dtype(self) -> str:
        return f"np.{self.dtype}"

    def dim(self, d: int | str) -> str:
        return str(d) if isinstance(d, int) else self.dims.get(d) or self.given[d]

    def shape_text(self, shape: Shape) -> str:
        return "(" + "".join(f"{self.dim(d)}, " for d in shape) + ")"

    def inline(self, i: int) -> bool:
        """A Broadcast or a Take read only by Maps is never materialised: the Maps index its
        source."""
        op = self.prog.ops[i]
        return (
            isinstance(op, Broadcast | BroadcastInDim | Take)
            and i not in self.prog.outputs.values()
            and all(isinstance(self.prog.ops[u], Map) for u in self.users[i] if u in self.live)
        )

    def access(self, i: int, shape: Shape, idx: Sequence[str]) -> str:
        """The element of value ``i`` that a loop over ``shape`` at indices ``idx`` reads."""
        op = self.prog.ops[i]
        mine = op.shape
        offset = len(shape) - len(mine)
        own = [
            "0" if mine[k] == 1 and shape[offset + k] != 1 else idx[offset + k]
            for k in range(len(mine))
        ]
        if self.inline(i):
            return self.through(op, own)
        if not mine:
            return self.var[i]
        return f"{self.var[i]}[{', '.join(own)}]"

    def through(self, op: Op, own: Sequence[str]) -> str:
        """The source element a Broadcast(InDim) or a Take reads at its own indices ``own``."""
        if isinstance(op, Take):
            sub = [*own[: op.axis], str(op.index), *own[op.axis :]]
            return self.access(op.args[0], self.prog.ops[op.args[0]].shape, sub)
        if isinstance(op, BroadcastInDim):
            sub = [own[d] for d in op.dims]
            return self.access(op.args[0], tuple(op.shape[d] for d in op.dims), sub)
        return self.access(op.args[0], op.shape, own)

    def loops(
        self, shape: Shape, indent: str, parallel: bool = True, axes: Sequence[int] | None = None
    ) -> tuple[list[str], str]:
        """Loop heads over ``shape`` (index ``i{axes[k]}`` for axis k), outermost parallel."""
        axes = list(range(len(shape))) if axes is None else list(axes)
        out = []
        for k, d in enumerate(shape):
            rng = "numba.prange" if k == 0 and parallel and self.parallel else "range"
            out.append(f"{indent}for i{axes[k]} in {rng}({self.dim(d)}):")
            indent += "    "
        return out, indent

    # -- ops -----------------------------------------------------------------------------------
    def emit_map(self, i: int, op: Op, body: sympy.Expr) -> None:
        """A loop nest over ``op``'s shape; a Broadcast is printed as the Map ``a0`` reading
        its source through its own index map."""
        v = self.var[i]
        idx = [f"i{k}" for k in range(len(op.shape))]
        if isinstance(op, Broadcast | BroadcastInDim | Take):
            reads = [f"a0 = {self.through(op, idx)}"]
        else:
            reads = [f"a{k} = {self.access(a, op.shape, idx)}" for k, a in enumerate(op.args)]
        expr = self.printer.doprint(body)
        if not op.shape:
            self.lines += [f"    {r}" for r in reads]
            self.lines.append(f"    {v} = {self.np_dtype}({expr})")
            return
        self.lines.append(f"    {v} = np.empty({self.shape_text(op.shape)}, dtype={self.np_dtype})")
        head, ind = self.loops(op.shape, "    ")
        self.lines += head
        self.lines += [ind + r for r in reads]
        self.lines.append(f"{ind}{v}[{', '.join(idx)}] = {expr}")

    def emit_embed(self, i: int, op: Embed) -> None:
        """Zeros, then the argument written into its slice."""
        v = self.var[i]
        src = self.prog.ops[op.args[0]].shape
        self.lines.append(f"    {v} = np.zeros({self.shape_text(op.shape)}, dtype={self.np_dtype})")
        idx = [f"i{k}" for k in range(len(src))]
        head, ind = self.loops(src, "    ")
        self.lines += head
        at = [*idx[: op.axis], str(op.index), *idx[op.axis :]]
        self.lines.append(f"{ind}{v}[{', '.join(at)}] = {self.access(op.args[0], src, idx)}")

    def emit_reduce(self, i: int, op: Reduce) -> None:
        v, x = self.var[i], self.var[op.args[0]]
        shape = self.prog.ops[op.args[0]].shape
        kept = [k for k in range(len(shape)) if k not in op.axes]
        start = "-np.inf" if op.op == "max" else "0.0"
        # float32 sums over many rows accumulate in float64: a sequential float32 sum of N
        # terms errs by about N eps (a bias gradient off by 4e-3 at N = 4e6), PyTorch's
        # pairwise one by log N eps; the float64 accumulator is below both
        wide = op.op != "max" and self.np_dtype == "np.float32"
        if not kept:
            fn = "np.max" if op.op == "max" else "np.sum"
            total = f"{fn}({x}, dtype=np.float64)" if wide else f"{fn}({x})"
            self.lines.append(f"    {v} = {self.np_dtype}({total})")
            return
        combine = (
            (lambda acc, e: f"max({acc}, {e})")
            if op.op == "max"
            else (lambda acc, e: f"{acc} + {e}")
        )
        idx = ", ".join(f"i{k}" for k in range(len(shape)))
        kept_idx = ", ".join(f"i{k}" for k in kept)
        out_shape = self.shape_text(tuple(shape[k] for k in kept))
        if list(op.axes) == list(range(len(op.axes))):  # leading axes: accumulate rows in order
            into = f"{v}_acc" if wide else v
            dtype = "np.float64" if wide else self.np_dtype
            self.lines.append(f"    {into} = np.full({out_shape}, {start}, dtype={dtype})")
            head, ind = self.loops(shape, "    ", parallel=False)
            self.lines += head
            self.lines.append(
                f"{ind}{into}[{kept_idx}] = {combine(f'{into}[{kept_idx}]', f'{x}[{idx}]')}"
            )
            if wide:
                self.lines.append(f"    {v} = {into}.astype({self.np_dtype})")
            return
        self.lines.append(f"    {v} = np.empty({out_shape}, dtype={self.np_dtype})")
        head, ind = self.loops(tuple(shape[k] for k in kept), "    ", axes=kept)
        self.lines += head
        self.lines.append(f"{ind}acc = {start}")
        inner = ind
        for k in op.axes:
            self.lines.append(f"{inner}for i{k} in range({self.dim(shape[k])}):")
            inner += "    "
        self.lines.append(f"{inner}acc = {combine('acc', f'{x}[{idx}]')}")
        self.lines.append(f"{ind}{v}[{kept_idx}] = acc")

    def emit_contract(self, i: int, op: Contract) -> None:
        v = self.var[i]
        ta, tb, out = contract_terms(op.spec)
        x, y = (self.var[a] for a in op.args)
        summed = [c for c in ta if c in tb and c not in out]
        free_a = "".join(c for c in ta if c not in tb)
        free_b = "".join(c for c in tb if c not in ta)
        shared = [c for c in ta if c in tb and c in out]
        if not shared and len(summed) == 1 and len(ta) <= 2 and len(tb) <= 2:
            (s,) = summed
            a_view = x if ta == free_a + s else f"{x}.T"
            b_view = y if tb == s + free_b else f"{y}.T"
            if out == free_a + free_b:
                self.lines.append(f"    {v} = np.dot({a_view}, {b_view})")
                return
            if out == free_b + free_a and len(out) == 2:
                self.lines.append(f"    {v} = np.dot({_t(b_view)}, {_t(a_view)})")
                return
        sizes: dict[str, int | str] = {}
        for term, a in zip((ta, tb), op.args, strict=True):
            sizes.update(zip(term, self.prog.ops[a].shape, strict=True))
        idx = {c: f"i{k}" for k, c in enumerate(out)}
        idx.update({c: f"s{k}" for k, c in enumerate(summed)})
        if out:
            shape = self.shape_text(op.shape)
            self.lines.append(f"    {v} = np.empty({shape}, dtype={self.np_dtype})")
        head, ind = self.loops(op.shape, "    ")
        self.lines += head
        self.lines.append(f"{ind}acc = 0.0")
        inner = ind
        for c in summed:
            self.lines.append(f"{inner}for {idx[c]} in range({self.dim(sizes[c])}):")
            inner += "    "

        def read(var: str, term: str) -> str:  # a scalar argument (an empty term) is read bare
            return f"{var}[{', '.join(idx[c] for c in term)}]" if term else var

        self.lines.append(f"{inner}acc += {read(x, ta)} * {read(y, tb)}")
        if out:
            self.lines.append(f"{ind}{v}[{', '.join(idx[c] for c in out)}] = acc")
        else:
            self.lines.append(f"    {v} = {self.np_dtype}(acc)")

    # -- the function --------------------------------------------------------------------------
    def bind_dims(self) -> None:
        for op in self.prog.ops:
            if isinstance(op, Input) and op.name in self.inputs:
                for k, d in enumerate(op.shape):
                    if isinstance(d, str) and d not in self.dims:
                        self.dims[d] = self.names.fresh(f"n_{_ident(d)}")
                        self.lines.append(f"    {self.dims[d]} = {self.inputs[op.name]}.shape[{k}]")

    @property
    def size_params(self) -> list[str]:
        """The size parameters that follow the inputs in the signature, in order."""
        return list(dict.fromkeys([*self.given.values(), *self.counts.values()]))

    def emit(self, outputs: Sequence[str], parallel: bool = True, nogil: bool = False) -> list[str]:
        """The function's lines; ``parallel`` False prints serial loops only, ``nogil`` releases
        the GIL (for functions that Python threads run side by side)."""
        self.parallel = parallel
        params = ", ".join([*self.inputs.values(), *self.size_params])
        flags = "".join([", parallel=True" if parallel else "", ", nogil=True" if nogil else ""])
        # IEEE division, as NumPy and PyTorch: 1/0 is inf and the loss's non-finite check
        # (R540) reports it; Python's error model raised ZeroDivisionError from the kernel
        flags += ", error_model='numpy'"
        self.lines = [f"@numba.njit(cache=True{flags})", f"def {self.name}({params}):"]
        self.bind_dims()
        last_origin = None
        for i, op in enumerate(self.prog.ops):
            if i not in self.live:
                continue
            if isinstance(op, Input):
                self.var[i] = self.inputs[op.name]
                continue
            self.var[i] = f"v{i}"
            origin = getattr(op, "origin", None)
            if isinstance(origin, Span) and origin != last_origin:
                where = safe_name(str(origin.file))
                self.lines.append(f"    # {where}:{origin.line}: {comment_safe(origin.text())}")
                last_origin = origin
            if isinstance(op, Const):
                self.lines.append(
                    f"    {self.var[i]} = {self.printer.doprint(sympy.Float(op.value))}"
                )
            elif isinstance(op, Extent):
                count = " * ".join(self.counts.get(str(d)) or self.dim(d) for d in op.dims)
                count = count or "1"
                self.lines.append(f"    {self.var[i]} = {self.np_dtype}({count})")
            elif isinstance(op, Map):
                self.emit_map(i, op, op.body)
            elif isinstance(op, Broadcast | BroadcastInDim | Take):
                if not self.inline(i):
                    self.emit_map(i, op, placeholder(0))
            elif isinstance(op, Embed):
                self.emit_embed(i, op)
            elif isinstance(op, Reduce):
                self.emit_reduce(i, op)
            elif isinstance(op, Contract):
                self.emit_contract(i, op)
            else:
                raise NotImplementedError(f"the dense printer has no rule for {op.kind}")
        results = [self.var[self.prog.outputs[name]] for name in outputs]
        self.lines.append(f"    return ({''.join(r + ', ' for r in results)})")
        return self.lines


def _t(view: str) -> str:
    return view[:-2] if view.endswith(".T") else f"{view}.T"


def _ident(name: str) -> str:
    """A DSL-derived name as an identifier stem: dots and colons become underscores."""
    out = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    return out if out and not out[0].isdigit() else f"_{out}"


def identifiers(names: NameRegistry, weights: Sequence[str], data: Sequence[str]) -> dict[str, str]:
    """Fresh, checked identifiers for the weight and data names of a program: ``w_h_W``,
    ``d_x`` (the prefixes keep them apart from the printer's own locals)."""
    out = {w: names.fresh("w_" + _ident(w)) for w in weights}
    out.update({d: names.fresh("d_" + _ident(d)) for d in data})
    return out


__all__ = ["DenseFunction", "identifiers"]
