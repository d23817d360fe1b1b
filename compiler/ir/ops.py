"""Ops of the tensor graph IR: SSA values with shape and dtype, referring to their inputs by id.

An op is a frozen dataclass whose ``args`` are the ids of earlier values of the same Program.
``origin`` (the DSL span an op came from) is left out of equality so that interning and CSE
still merge ops from different lines. Shapes are tuples of ints or symbolic dimension names
(``"n_x"``); ``()`` is a scalar. Scalar mathematics lives in ``Map.body``, a SymPy expression in
the placeholder symbols ``a0, a1, ...`` that stand for the args in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy

Dim = int | str
Shape = tuple[Dim, ...]


@dataclass(frozen=True, kw_only=True)
class Op:
    """Base of all ops: ids of the arguments, result shape and dtype, source origin."""

    args: tuple[int, ...] = ()
    shape: Shape = ()
    dtype: str = "float64"
    origin: Any = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return type(self).__name__


def placeholder(i: int) -> sympy.Symbol:
    """The symbol that stands for a Map's i-th argument inside its body."""
    return sympy.Symbol(f"a{i}", real=True)


# -- leaves -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Input(Op):
    """A named array given to the program (a field, a stage buffer, a data array)."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Param(Op):
    """A named scalar parameter (overridable at run time, differentiable by the adjoint)."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Const(Op):
    """A scalar constant."""

    value: float


@dataclass(frozen=True, kw_only=True)
class Coord(Op):
    """The coordinate of grid axis ``axis`` at every grid point (cell centres)."""

    axis: int
    name: str


@dataclass(frozen=True, kw_only=True)
class Spacing(Op):
    """The grid spacing h of axis ``axis`` (a scalar known at run time)."""

    axis: int


@dataclass(frozen=True, kw_only=True)
class StepSize(Op):
    """The time step of the integrator (a scalar set by the runtime)."""


@dataclass(frozen=True, kw_only=True)
class Time(Op):
    """The current time (a scalar)."""

    name: str = "t"


@dataclass(frozen=True, kw_only=True)
class Extent(Op):
    """The number of elements of a shape whose sizes may be symbolic (``mean`` divides by it);
    a scalar known at run time from the shapes of the inputs."""

    dims: tuple[Dim, ...]


# -- computation ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Map(Op):
    """Elementwise ``body(a0, a1, ...)`` over broadcast arguments."""

    body: sympy.Expr


@dataclass(frozen=True, kw_only=True)
class Diff(Op):
    """Spatial derivative d^order/d(axis)^order of a grid value; removed by ``discretise``."""

    axis: int
    order: int


@dataclass(frozen=True, kw_only=True)
class Shift(Op):
    """Neighbour value ``x[i + offset]`` along ``axis``; outside the grid the field's boundary
    rule supplies ghost values (periodic wrap, or extrapolation solved from the condition)."""

    axis: int
    offset: int
    boundary: str  # key into Program.boundaries ("" = zero ghosts, used by tests and adjoints)


@dataclass(frozen=True, kw_only=True)
class Reduce(Op):
    """Sum (or max) over ``axes``; the reduced axes are dropped from the shape."""

    op: str = "sum"
    axes: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Broadcast(Op):
    """Broadcast a value to ``shape`` as NumPy does (right-aligned: scalars, missing leading
    axes and size-1 axes repeat); other placements: adjoint_ops.BroadcastInDim."""


@dataclass(frozen=True, kw_only=True)
class Contract(Op):
    """A tensor contraction of two arguments in einsum notation, e.g. ``"bi,ij->bj"`` (a dense
    layer), ``"ij,j->i"`` (a matrix-vector product). Every index of an argument appears in the
    other argument or in the result, and none repeats within one term, so the transpose with
    respect to either argument is again a Contract (``"bj,ij->bi"``, ``"bi,bj->ij"``)."""

    spec: str


@dataclass(frozen=True, kw_only=True)
class Take(Op):
    """The slice at position ``index`` along ``axis`` (``x[..., index, ...]``); the axis is
    dropped from the shape. Its transpose is ``adjoint_ops.Embed``."""

    axis: int
    index: int


LEAVES = (Input, Param, Const, Coord, Spacing, StepSize, Time, Extent)
