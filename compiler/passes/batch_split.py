"""Split a gridless tensor Program into a per-chunk part and a finish, along its batch axes.

A network's loss, its gradient and its forward pass are per-sample computations followed by
sums over the samples (``mean``, the weight gradients ``X^T dY``). Such a Program can run on row
chunks of its data independently: each chunk computes its per-sample values and its partial
sums, the partial sums of all chunks are added (or maxed), and a small finish computes the
outputs from the totals. The chunks run in parallel with serial code inside, on arrays small
enough to stay in cache; and a chunk function compiles in a fraction of the time Numba takes
to analyse one function with hundreds of parallel loops.

A batch axis is the symbolic leading size of an Input (``pts:interior`` is ``[n_interior, 2]``).
The split exists when nothing computed from a sum over a batch axis flows back into per-sample
values (a loss like ``(mean(f - y))^2`` has it in its gradient; such Programs stay whole), and
no value has two different batch axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..ir.adjoint_ops import BroadcastInDim, Embed
from ..ir.ops import LEAVES, Broadcast, Contract, Input, Map, Op, Reduce, Take, placeholder
from ..ir.program import Builder, Program, copy_op, rebuild
from ..rules import contract_terms


@dataclass(frozen=True)
class Part:
    """A value summed (or maxed) over a batch axis: computed per chunk, combined, then read by
    the finish as the Input ``name``."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    combine: str  # "sum" | "max"


@dataclass(frozen=True)
class BatchSplit:
    """``chunk`` maps row chunks of the batched Inputs to the parts (outputs named by
    ``Part.name``) and the batched outputs (their own names); ``finish`` maps the combined
    parts and the whole Inputs to the other outputs."""

    chunk: Program
    finish: Program
    batch: tuple[str, ...]  # the batch axes (symbolic sizes), in order of first use
    parts: tuple[Part, ...]
    rows: tuple[str, ...]  # outputs with a batch axis first: written row chunk by row chunk
    whole: tuple[str, ...]  # outputs the finish computes


def batch_axes(prog: Program) -> tuple[str, ...] | None:
    """The symbolic leading sizes of the live Inputs; None when one of them also appears as
    another axis of an Input (then rows cannot be chunked independently)."""
    live = prog.live()
    leading: list[str] = []
    inner: set[str] = set()
    for i, op in enumerate(prog.ops):
        if i in live and isinstance(op, Input) and op.shape:
            first = op.shape[0]
            if isinstance(first, str) and first not in leading:
                leading.append(first)
            inner.update(d for d in op.shape[1:] if isinstance(d, str))
    if inner & set(leading):
        return None
    return tuple(leading)


def _reduces_batch(op: Op, prog: Program, batch: set[str]) -> str | None:
    """How a value that sums (or maxes) a batch axis away combines across chunks, else None."""
    if isinstance(op, Reduce) and op.op in ("sum", "max"):
        return op.op
    if isinstance(op, Contract):
        ta, tb, out = contract_terms(op.spec)
        for term, a in zip((ta, tb), op.args, strict=True):
            shape = prog.ops[a].shape
            if any(c not in out and shape[k] in batch for k, c in enumerate(term)):
                return "sum"
    return None


def _sums_linearly(op: Op, summed: list[int], state: dict[int, str]) -> bool:
    """Whether ``op`` of chunk sums (``summed``) and batch-free values is a linear function of
    the sums with no constant term: then the sum over chunks of ``op`` is ``op`` of the sums."""
    if not summed or any(state[a] not in ("inv", "cut") for a in op.args):
        return False
    if any(state[a] == "cut" and a not in summed for a in op.args):
        return False  # a max
    if isinstance(op, Broadcast | BroadcastInDim | Take | Embed):
        return True
    if isinstance(op, Reduce) and op.op == "sum":
        return True
    if isinstance(op, Contract):
        return len([a for a in op.args if a in summed]) == 1
    if isinstance(op, Map):
        marks = [placeholder(k) for k, a in enumerate(op.args) if a in summed]
        zero = op.body.xreplace({m: sympy.Integer(0) for m in marks})
        return zero == 0 and all(not sympy.diff(op.body, m).has(*marks) for m in marks)
    return False


def split_batch(prog: Program) -> BatchSplit | None:
    """The chunk/finish split of ``prog``, or None where it does not exist (see the module)."""
    axes = batch_axes(prog)
    if not axes:
        return None
    batch = set(axes)
    live = prog.live()
    state: dict[int, str] = {}  # "inv" (no batch axis, no sum), "batch", "cut", "part"
    combine: dict[int, str] = {}
    for i, op in enumerate(prog.ops):
        if i not in live:
            continue
        dims = {d for d in op.shape if d in batch}
        if len(dims) > 1:
            return None
        if isinstance(op, LEAVES):
            state[i] = "batch" if dims else "inv"
            continue
        args = {state[a] for a in op.args}
        if _sums_linearly(op, [a for a in op.args if combine.get(a) == "sum"], state):
            state[i], combine[i] = "cut", "sum"  # a sum of chunk sums: add it up in the chunks
        elif args & {"cut", "part"}:
            if "batch" in args or dims:
                return None  # a sum over the batch flows back into per-sample values
            state[i] = "part"
        elif dims:
            state[i] = "batch"
        elif "batch" in args:
            how = _reduces_batch(op, prog, batch)
            if how is None:
                return None
            state[i], combine[i] = "cut", how
        else:
            state[i] = "inv"
    rows: list[str] = []
    for name, v in prog.outputs.items():
        if state[v] == "batch":
            if prog.ops[v].shape[0] not in batch:
                return None
            rows.append(name)
    users = prog.users()
    outputs = set(prog.outputs.values())
    cuts = [  # the chunk sums the finish reads
        i
        for i in sorted(state)
        if state[i] == "cut" and (i in outputs or any(state.get(u) == "part" for u in users[i]))
    ]
    parts = tuple(
        Part(f"part:{k}", prog.ops[i].shape, prog.ops[i].dtype, combine[i])
        for k, i in enumerate(cuts)
    )
    chunk_outputs = {p.name: i for p, i in zip(parts, cuts, strict=True)}
    chunk_outputs.update({name: prog.outputs[name] for name in rows})
    chunk = rebuild(Program(prog.ops, chunk_outputs, prog.grid), copy_op)

    b = Builder(prog.grid)
    new: dict[int, int] = {}
    part_of = {i: p for p, i in zip(parts, cuts, strict=True)}
    for i, op in enumerate(prog.ops):
        if i not in live or state[i] == "batch":
            continue
        if state[i] == "cut":
            if i in part_of:  # else only other chunk sums read it
                p = part_of[i]
                new[i] = b.add(Input(name=p.name, shape=p.shape, dtype=p.dtype))
            continue
        new[i] = copy_op(b, op, tuple(new[a] for a in op.args))
    whole = tuple(n for n in prog.outputs if n not in rows)
    for name in whole:
        b.output(name, new[prog.outputs[name]])
    finish = rebuild(b.build(), copy_op)
    return BatchSplit(chunk, finish, axes, parts, tuple(rows), whole)


__all__ = ["BatchSplit", "Part", "batch_axes", "split_batch"]
