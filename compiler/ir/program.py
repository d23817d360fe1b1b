"""Program: an SSA graph of ops with named outputs, built through an interning builder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

import sympy

from .ops import LEAVES, Const, Map, Op, placeholder


@dataclass(frozen=True, repr=False)
class FaceRule:
    """Ghost rule on one face: ``alpha*u + beta*du/dn_axis = data`` extrapolated at ``degree``.

    ``alpha``, ``beta`` and ``data`` are SymPy expressions of coordinate, time and parameter
    symbols (the names of the Program's axes, time and params). ``degree`` is also how many
    interior cells the ghosts read. ``extrapolate``: the face has no condition (an outflow face
    of a hyperbolic field); the ghosts continue the interior alone, alpha = beta = data = 0.
    """

    alpha: sympy.Expr
    beta: sympy.Expr
    data: sympy.Expr
    degree: int
    extrapolate: bool = False

    def __repr__(self) -> str:
        if self.extrapolate:
            return f"FaceRule.outflow({self.degree})"
        return (
            f"FaceRule(alpha={self.alpha}, beta={self.beta}, data={self.data}, "
            f"degree={self.degree})"
        )

    @staticmethod
    def outflow(degree: int) -> FaceRule:
        zero = sympy.Integer(0)
        return FaceRule(alpha=zero, beta=zero, data=zero, degree=degree, extrapolate=True)


# The faces of one axis: "periodic", or the (lo, hi) FaceRules (None: no condition given).
FacePair = tuple[FaceRule | None, FaceRule | None]
AxisFaces = Literal["periodic"] | FacePair


@dataclass(frozen=True)
class BoundaryRule:
    """How a field is continued outside the grid along each axis: ``faces[axis]`` is
    ``"periodic"`` or a pair ``(lo, hi)`` of FaceRules."""

    field: str
    faces: tuple[AxisFaces, ...]

    def is_periodic(self, axis: int) -> bool:
        return self.faces[axis] == "periodic"


@dataclass(frozen=True)
class Grid:
    """Axis names, periodicity and symbolic extents of the grid a PDE program lives on."""

    axes: tuple[str, ...]
    periodic: tuple[bool, ...]
    time: str | None = None

    @property
    def shape(self) -> tuple[str, ...]:
        return tuple(f"n_{a}" for a in self.axes)

    @property
    def ndim(self) -> int:
        return len(self.axes)


@dataclass(frozen=True)
class Program:
    """An SSA op graph: ``ops[i]`` defines value i; ``outputs`` names some values."""

    ops: tuple[Op, ...]
    outputs: dict[str, int]
    grid: Grid | None = None
    boundaries: dict[str, BoundaryRule] = field(default_factory=dict)
    origins: dict[str, object] = field(default_factory=dict, compare=False)

    def users(self) -> dict[int, list[int]]:
        """For each value id, the ids of the ops that read it."""
        out: dict[int, list[int]] = {i: [] for i in range(len(self.ops))}
        for i, op in enumerate(self.ops):
            for a in op.args:
                out[a].append(i)
        return out

    def live(self) -> set[int]:
        """Ids reachable from the outputs."""
        seen: set[int] = set()
        stack = list(self.outputs.values())
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            stack.extend(self.ops[i].args)
        return seen

    def leaves(self, cls: type[Op]) -> list[tuple[int, Op]]:
        return [(i, op) for i, op in enumerate(self.ops) if isinstance(op, cls)]


class Builder:
    """Builds a Program, interning structurally equal ops (free common-subexpression merging)."""

    def __init__(self, grid: Grid | None = None) -> None:
        self.ops: list[Op] = []
        self.index: dict[Op, int] = {}
        self.outputs: dict[str, int] = {}
        self.grid = grid
        self.boundaries: dict[str, BoundaryRule] = {}

    def add(self, op: Op) -> int:
        for a in op.args:
            if not 0 <= a < len(self.ops):
                raise ValueError(f"argument {a} of {op.kind} is not defined yet")
        found = self.index.get(op)
        if found is not None:
            return found
        self.ops.append(op)
        self.index[op] = len(self.ops) - 1
        return len(self.ops) - 1

    def const(self, value: float, dtype: str = "float64") -> int:
        return self.add(Const(value=float(value), dtype=dtype))

    def map(self, body: sympy.Expr, args: Iterable[int], origin: object = None) -> int:
        """A Map over ``args``; the body uses placeholder(i) for args[i]."""
        args = tuple(args)
        shapes = [self.ops[a].shape for a in args]
        rank = max((len(s) for s in shapes), default=0)
        shape = tuple(  # NumPy broadcasting: right-aligned, size-1 axes repeat
            next(
                (
                    s[k - rank + len(s)]
                    for s in shapes
                    if k - rank + len(s) >= 0 and s[k - rank + len(s)] != 1
                ),
                1,
            )
            for k in range(rank)
        )
        dtype = self.ops[args[0]].dtype if args else "float64"
        return self.add(Map(args=args, shape=shape, dtype=dtype, body=body, origin=origin))

    def output(self, name: str, value: int) -> None:
        self.outputs[name] = value

    def build(self) -> Program:
        return Program(tuple(self.ops), dict(self.outputs), self.grid, dict(self.boundaries))


def rebuild(prog: Program, rewrite: Callable[[Builder, Op, tuple[int, ...]], int]) -> Program:
    """Copy ``prog`` op by op through ``rewrite(builder, op, new_args) -> new id``; only live ops
    are visited, in order. The pure-pass workhorse: passes return new Programs."""
    b = Builder(prog.grid)
    b.boundaries = dict(prog.boundaries)
    live = prog.live()
    new_id: dict[int, int] = {}
    for i, op in enumerate(prog.ops):
        if i not in live:
            continue
        args = tuple(new_id[a] for a in op.args)
        new_id[i] = rewrite(b, op, args)
    for name, v in prog.outputs.items():
        b.output(name, new_id[v])
    return replace(b.build(), origins=dict(prog.origins))


def copy_op(b: Builder, op: Op, args: tuple[int, ...]) -> int:
    """The identity rewrite: the same op over the new argument ids."""
    if isinstance(op, LEAVES):
        return b.add(op)
    return b.add(replace(op, args=args))


__all__ = ["BoundaryRule", "Builder", "FaceRule", "Grid", "Program", "copy_op", "placeholder"]
