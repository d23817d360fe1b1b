"""Ops that only transposes produce: the adjoint of a boundary-aware Shift, a Broadcast that
says which result axes its argument fills (the transpose of a Reduce over any axes), and the
zero array holding one slice (the transpose of a Take).

They are ordinary IR ops (frozen dataclasses over earlier value ids), so the interpreter, the
verifier, the dump and later the backends treat them like the ops of ``ops.py``; their rules sit
in the same table in ``compiler/rules.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ops import Op


@dataclass(frozen=True, kw_only=True)
class ShiftTranspose(Op):
    """The adjoint of ``Shift(axis, offset, boundary)`` under the rule's *homogeneous* part.

    ``Shift`` pads its argument with ghost layers (each ghost a linear combination of the cells
    next to the face, plus boundary data) and reads at ``offset``. Its transpose scatters every
    value to ``-offset``: reads that landed inside the grid go back to the cell they came from,
    and reads that landed on ghost ``j`` are folded back onto the interior cells with the
    transposed ghost weights. Boundary data never enter (the adjoint of an affine map is the
    adjoint of its linear part). On a periodic axis this is the opposite Shift, and with the
    empty key (zero ghosts) it is the opposite Shift with zero ghosts.
    """

    axis: int
    offset: int
    boundary: str


@dataclass(frozen=True, kw_only=True)
class BroadcastInDim(Op):
    """Broadcast to ``shape``: argument axis k becomes result axis ``dims[k]`` (size-1 argument
    axes are repeated), every other result axis is new. The transpose of a sum over any axes."""

    dims: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class Embed(Op):
    """Zeros of ``shape`` with the argument as the slice at ``index`` along ``axis``: the
    transpose of ``Take(axis, index)``."""

    axis: int
    index: int


ADJOINT_OPS = (ShiftTranspose, BroadcastInDim, Embed)
