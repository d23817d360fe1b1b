"""A NumPy reference interpreter for Programs: the meaning of every op, written plainly.

It exists so that rules, passes and backends can be checked against one slow, obvious
definition (finite-difference and dot-product tests, golden comparisons). Map bodies and ghost
weights are evaluated with ``sympy.lambdify``; that is acceptable here only because the
expressions are built by the compiler (never user text) and this module is reference and test
code, not a backend. Shift follows the halo model of ``passes/fuse.py``: pad along the axis with
ghost layers from the Program's boundary rule, then read at the offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
import sympy

from ...dsl.indicator import INDICATORS
from ...dsl.remainder import Remainder
from ..symbolic import GHOST_ALPHA, GHOST_BETA, GHOST_DATA, GHOST_H, ghost_values, interior_symbol
from .adjoint_ops import BroadcastInDim, Embed, ShiftTranspose
from .ops import (
    Broadcast,
    Const,
    Contract,
    Coord,
    Diff,
    Extent,
    Input,
    Map,
    Op,
    Param,
    Reduce,
    Shape,
    Shift,
    Spacing,
    StepSize,
    Take,
    Time,
    placeholder,
)
from .program import FaceRule, Program


@dataclass(frozen=True)
class _Env:
    prog: Program
    params: Mapping[str, float]
    t: float
    dt: float
    lo: tuple[float, ...]
    h: tuple[float, ...]
    dims: dict[str, int]

    def resolve(self, shape: Shape) -> tuple[int, ...]:
        try:
            return tuple(d if isinstance(d, int) else self.dims[d] for d in shape)
        except KeyError as exc:
            raise ValueError(f"dimension {exc} is not bound by an input or grid['n']") from None

    def centres(self, axis: int) -> np.ndarray:
        if self.prog.grid is None:
            raise ValueError("cell centres need a Program with a grid")
        (n,) = self.resolve(self.prog.grid.shape[axis : axis + 1])
        return self.lo[axis] + (np.arange(n) + 0.5) * self.h[axis]


@cache
def _lambdified(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> Callable:
    numpy_forms: dict[str, Callable] = {cls.__name__: cls.numpy for cls in INDICATORS}
    numpy_forms["Remainder"] = Remainder.numpy
    return sympy.lambdify(symbols, expr, modules=[numpy_forms, "numpy"])


def _face_value(expr: sympy.Expr, axis: int, side: str, env: _Env, ndim: int) -> np.ndarray:
    """``expr`` (of axis names, time and params) on a face, laid out like ``moveaxis(x, axis,
    -1)[..., 0]``: the face coordinate for ``axis``, cell centres for the other axes."""
    expr = sympy.sympify(expr)
    if not expr.free_symbols:
        return np.asarray(float(expr))
    grid = env.prog.grid
    names: dict[str, object] = dict(env.params)
    if grid is not None:
        if grid.time:
            names[grid.time] = env.t
        others = [a for a in range(ndim) if a != axis]
        for a, name in enumerate(grid.axes):
            if a == axis:
                n = env.dims[grid.shape[a]]
                names[name] = env.lo[a] + (0 if side == "lo" else n * env.h[a])
            elif a in others:
                layout = [1] * len(others)
                layout[others.index(a)] = -1
                names[name] = env.centres(a).reshape(layout)
    symbols = tuple(sorted(expr.free_symbols, key=str))
    missing = [s.name for s in symbols if s.name not in names]
    if missing:
        raise ValueError(f"boundary expression uses unknown names: {', '.join(missing)}")
    return np.asarray(_lambdified(expr, symbols)(*(names[s.name] for s in symbols)))


def _face(
    env: _Env, key: str, axis: int, side: str
) -> FaceRule | Literal["zero", "periodic"] | None:
    """'zero' for the empty key, 'periodic', or the FaceRule (None: no condition given)."""
    if not key:
        return "zero"
    faces = env.prog.boundaries[key].faces[axis]
    if faces == "periodic":
        return "periodic"
    return faces[0 if side == "lo" else 1]


def _ghost_weights(
    env: _Env, face: FaceRule, axis: int, side: str, layers: int, ndim: int, homogeneous: bool
) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """``(W, c)`` with ghost_j = sum_k W[j][k] * u_k + c[j] (u_k: k-th cell from the face)."""
    subs = {GHOST_ALPHA: face.alpha, GHOST_BETA: face.beta, GHOST_H: env.h[axis]}
    subs[GHOST_DATA] = 0 if homogeneous else face.data
    weights, consts = [], []
    for g in ghost_values(face.degree, layers, side, face.extrapolate):
        g = g.xreplace(subs)
        u = [interior_symbol(k) for k in range(face.degree)]
        weights.append([_face_value(g.diff(s), axis, side, env, ndim) for s in u])
        consts.append(_face_value(g.xreplace(dict.fromkeys(u, 0)), axis, side, env, ndim))
    return weights, consts


def _check_room(face: FaceRule | Literal["zero"], n: int, offset: int) -> None:
    degree = face.degree if isinstance(face, FaceRule) else 0
    if n < max(degree, abs(offset)):
        raise ValueError(f"{n} cells are too few for offset {offset} and degree {degree}")


def _shift(x: np.ndarray, op: Shift, env: _Env) -> np.ndarray:
    xm = np.moveaxis(x, op.axis, -1)
    n, k = xm.shape[-1], op.offset
    if k == 0:
        return x.copy()
    side = "hi" if k > 0 else "lo"
    face = _face(env, op.boundary, op.axis, side)
    if face == "periodic":
        return np.roll(x, -k, axis=op.axis)
    if face is None:
        raise ValueError(f"boundary '{op.boundary}' has no condition on the {side} face")
    _check_room(face, n, k)
    layers = abs(k)
    if face == "zero":
        ghosts = [np.zeros(xm.shape[:-1])] * layers
    else:
        w, c = _ghost_weights(env, face, op.axis, side, layers, x.ndim, homogeneous=False)
        cell = (lambda m: m) if side == "lo" else (lambda m: n - 1 - m)
        ghosts = [
            sum(wj[m] * xm[..., cell(m)] for m in range(face.degree)) + cj
            for wj, cj in zip(w, c, strict=True)
        ]
    stack = [np.broadcast_to(g, xm.shape[:-1])[..., None] for g in ghosts]
    if side == "lo":
        padded = np.concatenate([*reversed(stack), xm], axis=-1)
        out = padded[..., :n]
    else:
        padded = np.concatenate([xm, *stack], axis=-1)
        out = padded[..., k : k + n]
    return np.moveaxis(out, -1, op.axis).copy()


def _shift_transpose(y: np.ndarray, op: ShiftTranspose, env: _Env) -> np.ndarray:
    ym = np.moveaxis(y, op.axis, -1)
    n, k = ym.shape[-1], op.offset
    if k == 0:
        return y.copy()
    side = "hi" if k > 0 else "lo"
    face = _face(env, op.boundary, op.axis, side)
    if face == "periodic":
        return np.roll(y, k, axis=op.axis)
    if face is None:
        raise ValueError(f"boundary '{op.boundary}' has no condition on the {side} face")
    _check_room(face, n, k)
    out = np.zeros_like(ym)
    # reads that stayed inside: y[i] = x[i + k]
    lo, hi = max(0, -k), min(n, n - k)
    out[..., lo + k : hi + k] += ym[..., lo:hi]
    if face != "zero":
        w, _ = _ghost_weights(env, face, op.axis, side, abs(k), y.ndim, homogeneous=True)
        for j in range(1, abs(k) + 1):
            i = n - 1 + j - k if side == "hi" else -k - j  # the point that read ghost j
            for m in range(face.degree):
                cell = m if side == "lo" else n - 1 - m
                out[..., cell] += w[j - 1][m] * ym[..., i]
    return np.moveaxis(out, -1, op.axis)


def _map(op: Map, vals: Sequence[np.ndarray], env: _Env) -> np.ndarray:
    symbols = tuple(placeholder(i) for i in range(len(vals)))
    out = np.asarray(_lambdified(op.body, symbols)(*vals), dtype=float)
    shape = np.broadcast_shapes(*(np.shape(v) for v in vals)) if vals else ()
    return np.broadcast_to(out, shape).copy()


def _coord(op: Coord, env: _Env) -> np.ndarray:
    shape = env.resolve(op.shape)
    layout = [1] * len(shape)
    layout[op.axis] = -1
    return np.broadcast_to(env.centres(op.axis).reshape(layout), shape).copy()


def _reduce(op: Reduce, x: np.ndarray) -> np.ndarray:
    reducers: dict[str, Callable[..., Any]] = {"sum": np.sum, "max": np.max}
    return np.asarray(reducers[op.op](x, axis=op.axes))


def _broadcast_in_dim(op: BroadcastInDim, x: np.ndarray, env: _Env) -> np.ndarray:
    shape = env.resolve(op.shape)
    layout = [1] * len(shape)
    for k, d in enumerate(op.dims):
        layout[d] = x.shape[k]
    return np.broadcast_to(x.reshape(layout), shape).copy()


def _embed(op: Embed, x: np.ndarray, env: _Env) -> np.ndarray:
    out = np.zeros(env.resolve(op.shape), dtype=x.dtype)
    out[(slice(None),) * op.axis + (op.index,)] = x
    return out


# Any: each entry takes the op class of its key.
_EVAL: dict[type[Op], Callable[[Any, list[np.ndarray], _Env], np.ndarray]] = {
    Param: lambda op, v, env: np.asarray(float(env.params[op.name])),
    Const: lambda op, v, env: np.asarray(op.value),
    Coord: lambda op, v, env: _coord(op, env),
    Spacing: lambda op, v, env: np.asarray(env.h[op.axis]),
    Extent: lambda op, v, env: np.asarray(float(np.prod(env.resolve(op.dims)))),
    StepSize: lambda op, v, env: np.asarray(env.dt),
    Time: lambda op, v, env: np.asarray(env.t),
    Map: lambda op, v, env: _map(op, v, env),
    Shift: lambda op, v, env: _shift(v[0], op, env),
    ShiftTranspose: lambda op, v, env: _shift_transpose(v[0], op, env),
    Reduce: lambda op, v, env: _reduce(op, v[0]),
    Contract: lambda op, v, env: np.einsum(op.spec, v[0], v[1]),
    Broadcast: lambda op, v, env: np.broadcast_to(v[0], env.resolve(op.shape)).copy(),
    BroadcastInDim: lambda op, v, env: _broadcast_in_dim(op, v[0], env),
    Take: lambda op, v, env: np.take(v[0], op.index, axis=op.axis),
    Embed: lambda op, v, env: _embed(op, v[0], env),
}


def evaluate(
    prog: Program,
    inputs: Mapping[str, np.ndarray],
    params: Mapping[str, float] | None = None,
    *,
    t: float = 0.0,
    dt: float = 0.0,
    grid: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, np.ndarray]:
    """Evaluate the live ops of ``prog`` in float64 and return its outputs by name.

    Args:
        prog: the Program (no Diff ops: discretise first).
        inputs: an array per Input name; their shapes bind the symbolic dimensions.
        params: a value per Param name (and per parameter used in boundary rules).
        t, dt: values of Time and StepSize.
        grid: ``{"lo": [...], "h": [...]}`` per axis, optionally ``"n"`` (cells per axis) when
            no Input binds the grid's dimensions.
    """
    grid = grid or {}
    dims: dict[str, int] = {}
    ndim = prog.grid.ndim if prog.grid else 0
    if "n" in grid and prog.grid is not None:
        dims.update({d: int(n) for d, n in zip(prog.grid.shape, grid["n"], strict=True)})
    arrays = {k: np.asarray(v, dtype=float) for k, v in inputs.items()}
    for op in prog.ops:
        if isinstance(op, Input) and op.name in arrays:
            for d, size in zip(op.shape, arrays[op.name].shape, strict=True):
                if isinstance(d, str) and dims.setdefault(d, size) != size:
                    raise ValueError(f"input {op.name} gives {d} = {size}, not {dims[d]}")
    env = _Env(
        prog,
        dict(params or {}),
        t,
        dt,
        tuple(grid.get("lo", (0.0,) * ndim)),
        tuple(grid.get("h", (1.0,) * ndim)),
        dims,
    )
    values: dict[int, np.ndarray] = {}
    live = prog.live()
    for i, op in enumerate(prog.ops):
        if i not in live:
            continue
        if isinstance(op, Diff):
            raise ValueError("evaluate() needs a discretised Program (found a Diff op)")
        if isinstance(op, Input):
            if op.name not in arrays:
                raise ValueError(f"no array given for input '{op.name}'")
            values[i] = arrays[op.name]
            continue
        values[i] = _EVAL[type(op)](op, [values[a] for a in op.args], env)
    return {name: np.array(values[v], dtype=float) for name, v in prog.outputs.items()}
