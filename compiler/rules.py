"""Shape, derivative (jvp) and transpose rules of every op class, held as one table of data.

``RULES[type(op)]`` is an ``OpRule``; adding an op class means adding its row here. All rules
follow one calling convention, so that one forward sweep and one reverse sweep serve PDEs,
networks and bilevel programs alike:

- ``op`` is the primal op *already in the builder* ``b``: its ``args`` are ids of ``b``, so a
  rule may build on primal values (the partial derivatives of a Map, the argmax of a max), and
  ``b.add(op)`` returns the op's own id (the builder interns).
- ``shape(op, arg_shapes) -> Shape``: the result shape from the op's attributes and arguments.
- ``jvp(b, op, tangents) -> id | None``: ``tangents[i]`` is the tangent id of ``op.args[i]`` or
  None (zero); returns the tangent of the result, None for zero.
- ``transpose(b, op, ct) -> (id | None, ...)``: the cotangent of each argument for the
  cotangent ``ct`` of the result: the transpose of the op's linearisation at its primal
  arguments (the transpose itself for linear ops, the vjp for Map and max).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import sympy

from .ir.adjoint_ops import BroadcastInDim, Embed, ShiftTranspose
from .ir.ops import (
    LEAVES,
    Broadcast,
    Contract,
    Diff,
    Input,
    Map,
    Op,
    Param,
    Reduce,
    Shape,
    Shift,
    Take,
    placeholder,
)
from .ir.program import AxisFaces, BoundaryRule, Builder, FaceRule, Program, copy_op, rebuild
from .symbolic import partial as symbolic_partial

Tangents = tuple[int | None, ...]


OpT = TypeVar("OpT", bound=Op)


@dataclass(frozen=True)
class OpRule(Generic[OpT]):
    """The three rules of one op class (see the module docstring for their contracts)."""

    shape: Callable[[OpT, tuple[Shape, ...]], Shape]
    jvp: Callable[[Builder, OpT, Tangents], int | None]
    transpose: Callable[[Builder, OpT, int], Tangents]


# -- building blocks --------------------------------------------------------------------------


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting (right-aligned) over symbolic or integer dimensions."""
    rank = max((len(s) for s in shapes), default=0)
    out: list = []
    for k in range(rank):
        dims = {s[k - rank + len(s)] for s in shapes if k - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def make(b: Builder, cls: type[Op], args: tuple[int, ...], **attrs: Any) -> int:
    """Add ``cls(args, **attrs)`` with its shape from the table's shape rule."""
    probe = cls(args=args, dtype=b.ops[args[0]].dtype, **attrs)
    shape = RULES[cls].shape(probe, tuple(b.ops[a].shape for a in args))
    return b.add(replace(probe, shape=shape))


def compact_map(b: Builder, body: sympy.Expr, args: Sequence[int], origin: object = None) -> int:
    """A Map of ``body`` over the arguments it uses, each id once."""
    used: list[int] = []
    subs = {}
    for i, a in enumerate(args):
        if body.has(placeholder(i)):
            if a not in used:
                used.append(a)
            subs[placeholder(i)] = sympy.Symbol(f"_c{used.index(a)}", real=True)
    body = body.xreplace(subs).xreplace(
        {sympy.Symbol(f"_c{k}", real=True): placeholder(k) for k in range(len(used))}
    )
    return b.map(body, used, origin)


def total(b: Builder, ids: Sequence[int]) -> int:
    """The sum of same-shaped values (one Map, so that accumulation fuses)."""
    if len(ids) == 1:
        return ids[0]
    return compact_map(b, sympy.Add(*(placeholder(k) for k in range(len(ids)))), ids)


def to_shape(b: Builder, v: int, shape: Shape) -> int:
    if b.ops[v].shape == shape:
        return v
    return b.add(Broadcast(args=(v,), shape=shape, dtype=b.ops[v].dtype))


def sum_to(b: Builder, ct: int, shape: Shape, dims: Sequence[int] | None = None) -> int:
    """Transpose of broadcasting ``shape`` to ``ct``'s shape, argument axis k at result axis
    ``dims[k]`` (default: right-aligned, as NumPy): sum the new and the repeated axes."""
    big = b.ops[ct].shape
    dims = list(range(len(big) - len(shape), len(big)) if dims is None else dims)
    repeated = [k for k, d in enumerate(dims) if shape[k] == 1 and big[d] != 1]
    axes = sorted({a for a in range(len(big)) if a not in dims} | {dims[k] for k in repeated})
    if not axes:
        return ct
    out = make(b, Reduce, (ct,), op="sum", axes=tuple(axes))
    if repeated:
        kept = tuple(k for k in range(len(shape)) if k not in repeated)
        out = make(b, BroadcastInDim, (out,), shape=shape, dims=kept)
    return out


def homogeneous(b: Builder, key: str) -> str:
    """The key of ``key``'s rule with zero data (registered in ``b`` if it is new)."""
    if not key:
        return key
    rule = b.boundaries[key]
    lin = homogeneous_rule(rule)
    if lin == rule:
        return key
    name = f"{key}:lin"
    if b.boundaries.setdefault(name, replace(lin, field=name)) != replace(lin, field=name):
        raise ValueError(f"boundary key '{name}' is taken by another rule")
    return name


def homogeneous_rule(rule: BoundaryRule) -> BoundaryRule:
    """The derivative of an affine ghost continuation: the same rule with zero data."""

    def zero(face: FaceRule | None) -> FaceRule | None:
        return replace(face, data=sympy.Integer(0)) if isinstance(face, FaceRule) else face

    faces: tuple[AxisFaces, ...] = tuple(
        f if f == "periodic" else (zero(f[0]), zero(f[1])) for f in rule.faces
    )
    return replace(rule, faces=faces)


# -- the rules --------------------------------------------------------------------------------


def _same(op: Op, shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


def _leaf_shape(op: Op, shapes: tuple[Shape, ...]) -> Shape:
    return op.shape


def _no_tangent(b: Builder, op: Op, tangents: Tangents) -> None:
    return None


def _no_args(b: Builder, op: Op, ct: int) -> Tangents:
    return ()


def _unary_tangent(tangents: Tangents) -> int:
    """The tangent of a unary op's argument: jvp rules run only when some argument has one."""
    (t,) = tangents
    assert t is not None
    return t


def _map_jvp(b: Builder, op: Map, tangents: Tangents) -> int | None:
    args, body = list(op.args), sympy.Integer(0)
    for i, t in enumerate(tangents):
        partial = symbolic_partial(op.body, placeholder(i))
        if t is not None and partial != 0:
            body += partial * placeholder(len(args))
            args.append(t)
    return None if body == 0 else to_shape(b, compact_map(b, body, args), op.shape)


def _map_transpose(b: Builder, op: Map, ct: int) -> Tangents:
    out: list[int | None] = []
    for i, a in enumerate(op.args):
        partial = symbolic_partial(op.body, placeholder(i))
        if partial == 0:
            out.append(None)
            continue
        v = compact_map(b, partial * placeholder(len(op.args)), [*op.args, ct])
        out.append(sum_to(b, to_shape(b, v, op.shape), b.ops[a].shape))
    return tuple(out)


def _diff_transpose(b: Builder, op: Diff, ct: int) -> Tangents:
    raise NotImplementedError(
        "the transpose of Diff depends on its stencil and boundary rule: discretise first"
    )


def _shift_jvp(b: Builder, op: Shift, tangents: Tangents) -> int:
    t = _unary_tangent(tangents)
    return make(
        b, Shift, (t,), axis=op.axis, offset=op.offset, boundary=homogeneous(b, op.boundary)
    )


def _shift_transpose(b: Builder, op: Shift, ct: int) -> Tangents:
    key = homogeneous(b, op.boundary)
    if not key or b.boundaries[key].is_periodic(op.axis):
        return (make(b, Shift, (ct,), axis=op.axis, offset=-op.offset, boundary=key),)
    return (make(b, ShiftTranspose, (ct,), axis=op.axis, offset=op.offset, boundary=key),)


def _reduce_shape(op: Reduce, shapes: tuple[Shape, ...]) -> Shape:
    return tuple(d for k, d in enumerate(shapes[0]) if k not in op.axes)


def _is_max(b: Builder, op: Reduce, x: int) -> tuple[sympy.Expr, int]:
    """A Piecewise body picking a1 where a0 attains the max, and the max spread back over x."""
    kept = tuple(k for k in range(len(b.ops[x].shape)) if k not in op.axes)
    spread = make(b, BroadcastInDim, (b.add(op),), shape=b.ops[x].shape, dims=kept)
    a0, a1, a2 = (placeholder(k) for k in range(3))
    return sympy.Piecewise((a1, sympy.Eq(a0, a2)), (0, True)), spread


def _reduce_jvp(b: Builder, op: Reduce, tangents: Tangents) -> int:
    t = _unary_tangent(tangents)
    if op.op == "max":  # the tangent at the argmax (summed over ties, which have measure zero)
        body, spread = _is_max(b, op, op.args[0])
        t = b.map(body, (op.args[0], t, spread))
    return make(b, Reduce, (t,), op="sum", axes=op.axes)


def _reduce_transpose(b: Builder, op: Reduce, ct: int) -> Tangents:
    shape = b.ops[op.args[0]].shape
    kept = tuple(k for k in range(len(shape)) if k not in op.axes)
    spread_ct = make(b, BroadcastInDim, (ct,), shape=shape, dims=kept)
    if op.op == "sum":
        return (spread_ct,)
    body, spread = _is_max(b, op, op.args[0])
    return (b.map(body, (op.args[0], spread_ct, spread)),)


def _broadcast_shape(op: Broadcast, shapes: tuple[Shape, ...]) -> Shape:
    if broadcast_shapes(shapes[0], op.shape) != tuple(op.shape):
        raise ValueError(f"cannot broadcast {shapes[0]} to {op.shape}")
    return op.shape


def _in_dim_shape(op: BroadcastInDim, shapes: tuple[Shape, ...]) -> Shape:
    src = shapes[0]
    ok = len(op.dims) == len(src) and list(op.dims) == sorted(set(op.dims))
    if not ok or any(s not in (1, op.shape[d]) for s, d in zip(src, op.dims, strict=True)):
        raise ValueError(f"cannot broadcast {src} into {op.shape} at {op.dims}")
    return op.shape


def _take_shape(op: Take, shapes: tuple[Shape, ...]) -> Shape:
    src = shapes[0]
    size = src[op.axis] if 0 <= op.axis < len(src) else None
    if size is None or op.index < 0 or (isinstance(size, int) and op.index >= size):
        raise ValueError(f"cannot take index {op.index} of axis {op.axis} of {src}")
    return src[: op.axis] + src[op.axis + 1 :]


def _embed_shape(op: Embed, shapes: tuple[Shape, ...]) -> Shape:
    if op.shape[: op.axis] + op.shape[op.axis + 1 :] != shapes[0]:
        raise ValueError(f"cannot embed {shapes[0]} into {op.shape} at axis {op.axis}")
    return op.shape


def _linear(cls: type[OpT], *names: str) -> Callable[[Builder, OpT, Tangents], int]:
    """The jvp of a linear unary op: the same op applied to the tangent."""

    def jvp(b: Builder, op: OpT, tangents: Tangents) -> int:
        t = _unary_tangent(tangents)
        return make(b, cls, (t,), **{n: getattr(op, n) for n in names})

    return jvp


def contract_terms(spec: str) -> tuple[str, str, str]:
    """The index strings ``(a, b, out)`` of a Contract spec ``"a,b->out"``."""
    lhs, out = spec.split("->")
    a, b = lhs.split(",")
    return a, b, out


def _contract_shape(op: Contract, shapes: tuple[Shape, ...]) -> Shape:
    a, b, out = contract_terms(op.spec)
    sizes: dict[str, Any] = {}
    for term, shape in zip((a, b), shapes, strict=True):
        if len(term) != len(shape) or len(set(term)) != len(term):
            raise ValueError(f"Contract '{op.spec}' does not fit the shapes {shapes}")
        for letter, dim in zip(term, shape, strict=True):
            if sizes.setdefault(letter, dim) != dim:
                raise ValueError(
                    f"Contract '{op.spec}': index {letter} is {sizes[letter]} and {dim}"
                )
    for term, other in ((a, b + out), (b, a + out), (out, a + b)):
        if any(letter not in other for letter in term):
            raise ValueError(f"Contract '{op.spec}': an index appears in one term only")
    return tuple(sizes[letter] for letter in out)


def _contract_jvp(b: Builder, op: Contract, tangents: Tangents) -> int:
    ta, tb = tangents
    parts = []
    if ta is not None:
        parts.append(make(b, Contract, (ta, op.args[1]), spec=op.spec))
    if tb is not None:
        parts.append(make(b, Contract, (op.args[0], tb), spec=op.spec))
    return total(b, parts)


def _contract_transpose(b: Builder, op: Contract, ct: int) -> Tangents:
    a, bb, out = contract_terms(op.spec)
    x, y = op.args
    return (
        make(b, Contract, (ct, y), spec=f"{out},{bb}->{a}"),
        make(b, Contract, (x, ct), spec=f"{a},{out}->{bb}"),
    )


_LEAF = OpRule(_leaf_shape, _no_tangent, _no_args)

# Any: each row's rules take the op class of its key.
RULES: dict[type[Op], OpRule[Any]] = {
    **dict.fromkeys(LEAVES, _LEAF),
    Map: OpRule(lambda op, s: broadcast_shapes(*s), _map_jvp, _map_transpose),
    Diff: OpRule(_same, _linear(Diff, "axis", "order"), _diff_transpose),
    Shift: OpRule(_same, _shift_jvp, _shift_transpose),
    ShiftTranspose: OpRule(
        _same,
        _linear(ShiftTranspose, "axis", "offset", "boundary"),
        lambda b, op, ct: (
            make(b, Shift, (ct,), axis=op.axis, offset=op.offset, boundary=op.boundary),
        ),
    ),
    Reduce: OpRule(_reduce_shape, _reduce_jvp, _reduce_transpose),
    Contract: OpRule(_contract_shape, _contract_jvp, _contract_transpose),
    Broadcast: OpRule(
        _broadcast_shape,
        _linear(Broadcast, "shape"),
        lambda b, op, ct: (sum_to(b, ct, b.ops[op.args[0]].shape),),
    ),
    BroadcastInDim: OpRule(
        _in_dim_shape,
        _linear(BroadcastInDim, "shape", "dims"),
        lambda b, op, ct: (sum_to(b, ct, b.ops[op.args[0]].shape, op.dims),),
    ),
    Take: OpRule(
        _take_shape,
        _linear(Take, "axis", "index"),
        lambda b, op, ct: (
            make(b, Embed, (ct,), shape=b.ops[op.args[0]].shape, axis=op.axis, index=op.index),
        ),
    ),
    Embed: OpRule(
        _embed_shape,
        _linear(Embed, "shape", "axis", "index"),
        lambda b, op, ct: (make(b, Take, (ct,), axis=op.axis, index=op.index),),
    ),
}


# -- the sweeps -------------------------------------------------------------------------------


def _primal(
    prog: Program, wrt: Sequence[str], fixed_ghosts: bool = False
) -> tuple[Builder, dict[int, int], dict[str, int]]:
    """A builder holding a copy of ``prog``'s ops, the id map old -> new, and the leaf ids by
    name; refuses names it cannot differentiate by (see ``vjp_program`` for ``fixed_ghosts``)."""
    seeds = {op.name: i for i, op in enumerate(prog.ops) if isinstance(op, Input | Param)}
    b = Builder(prog.grid)
    unknown = [w for w in wrt if w not in seeds]
    if unknown:
        raise ValueError(f"no Input or Param named {', '.join(unknown)}")
    for name, rule in prog.boundaries.items() if not fixed_ghosts else ():
        faces = [f for pair in rule.faces if pair != "periodic" for f in pair if f is not None]
        symbols = {
            s.name
            for f in faces
            for e in (f.alpha, f.beta, f.data)
            for s in sympy.sympify(e).free_symbols
        }
        if symbols & set(wrt):
            raise NotImplementedError(
                f"differentiating through the boundary rule of '{name}' (it uses "
                f"{', '.join(sorted(symbols & set(wrt)))}) is not supported yet"
            )
    b.boundaries = dict(prog.boundaries)
    new: dict[int, int] = {}
    for i, op in enumerate(prog.ops):
        new[i] = copy_op(b, op, tuple(new[a] for a in op.args))
    return b, new, seeds


def _zeros(b: Builder, v: int) -> int:
    return b.map(sympy.Integer(0), (v,))


def _finish(b: Builder) -> Program:
    return rebuild(b.build(), copy_op)  # drops the primal ops nothing reads


def _with_params(prog: Program, names: Sequence[str]) -> Program:
    """``prog`` with a Param leaf for each name it lacks that a boundary rule uses (a parameter
    only a boundary condition reads: its cotangent is the ghosts' part alone)."""
    have = {op.name for op in prog.ops if isinstance(op, Input | Param)}
    used = {
        s.name
        for rule in prog.boundaries.values()
        for pair in rule.faces
        if pair != "periodic"
        for f in pair
        if f is not None
        for e in (f.alpha, f.beta, f.data)
        for s in sympy.sympify(e).free_symbols
    }
    dtype = prog.ops[0].dtype if prog.ops else "float64"
    extra = tuple(Param(name=n, dtype=dtype) for n in names if n not in have and n in used)
    return replace(prog, ops=prog.ops + extra) if extra else prog


def jvp_program(prog: Program, wrt: Sequence[str]) -> Program:
    """Forward tangents: output ``dot:<out>`` for each output, as a function of the primal
    inputs and the tangent inputs ``dot:<name>`` of the Inputs/Params named in ``wrt``.

    A tangent of a field with a boundary rule gets the homogeneous rule under its own name,
    so the tangent Program can still be discretised."""
    b, new, seeds = _primal(prog, wrt)
    tangent: dict[int, int | None] = {}
    for name in wrt:
        op = prog.ops[seeds[name]]
        tangent[seeds[name]] = b.add(Input(name=f"dot:{name}", shape=op.shape, dtype=op.dtype))
        if name in prog.boundaries:
            lin = homogeneous_rule(prog.boundaries[name])
            b.boundaries[f"dot:{name}"] = replace(lin, field=f"dot:{name}")
    for i in sorted(prog.live()):
        op = prog.ops[i]
        ts = tuple(tangent.get(a) for a in op.args)
        if i not in tangent and any(t is not None for t in ts):
            tangent[i] = RULES[type(op)].jvp(b, b.ops[new[i]], ts)
    for name, v in prog.outputs.items():
        t = tangent.get(v)
        b.output(f"dot:{name}", _zeros(b, new[v]) if t is None else t)
    return _finish(b)


def vjp_program(
    prog: Program, wrt: Sequence[str], keep_outputs: bool = False, fixed_ghosts: bool = False
) -> Program:
    """One reverse sweep: output ``bar:<name>`` for each name in ``wrt``, as a function of the
    primal inputs and a cotangent input ``bar:<out>`` per output that depends on ``wrt``;
    ``keep_outputs`` also keeps the primal outputs (value and gradient in one Program).
    ``fixed_ghosts``: differentiate by parameters that boundary rules use, holding the ghost
    values fixed; the lowering of the transposed stencils adds the ghosts' own part
    (``passes.transpose.fold_kernel``), which the rule table cannot see."""
    if fixed_ghosts:
        prog = _with_params(prog, wrt)
    b, new, seeds = _primal(prog, wrt, fixed_ghosts)
    if keep_outputs:
        for name, v in prog.outputs.items():
            b.output(name, new[v])
    active = {seeds[w] for w in wrt}
    for i in sorted(prog.live()):
        if any(a in active for a in prog.ops[i].args):
            active.add(i)
    cts: dict[int, list[int]] = {}
    for name, v in prog.outputs.items():
        if v in active:
            op = prog.ops[v]
            seed = b.add(Input(name=f"bar:{name}", shape=op.shape, dtype=op.dtype))
            cts.setdefault(v, []).append(seed)
    for i in sorted(active, reverse=True):
        op = prog.ops[i]
        if i not in cts or isinstance(op, LEAVES):
            continue
        args_ct = RULES[type(op)].transpose(b, b.ops[new[i]], total(b, cts.pop(i)))
        for a, c in zip(op.args, args_ct, strict=True):
            if c is not None and a in active:
                cts.setdefault(a, []).append(c)
    for name in wrt:
        got = cts.get(seeds[name])
        b.output(f"bar:{name}", total(b, got) if got else _zeros(b, new[seeds[name]]))
    return _finish(b)
