"""Invariants every Program must keep between passes: SSA order, shapes, closed Map bodies."""

from __future__ import annotations

from .adjoint_ops import ShiftTranspose
from .ops import Map, Shift, placeholder
from .program import Program


class IRVerificationError(Exception):
    """A pass produced an ill-formed Program (a compiler bug, never a user error)."""


def verify_program(prog: Program) -> None:
    for i, op in enumerate(prog.ops):
        for a in op.args:
            if not 0 <= a < i:
                raise IRVerificationError(f"%{i} ({op.kind}) uses %{a} before its definition")
        if isinstance(op, Map):
            allowed = {placeholder(j) for j in range(len(op.args))}
            free = op.body.free_symbols - allowed
            if free:
                names = ", ".join(sorted(str(s) for s in free))
                raise IRVerificationError(f"%{i} Map body has free symbols: {names}")
            for a in op.args:
                if prog.ops[a].shape and op.shape and len(prog.ops[a].shape) > len(op.shape):
                    raise IRVerificationError(f"%{i} Map shape is smaller than an argument's")
        if isinstance(op, Shift | ShiftTranspose):
            if len(op.args) != 1:
                raise IRVerificationError(f"%{i} {op.kind} needs exactly one argument")
            if not 0 <= op.axis < len(op.shape):
                raise IRVerificationError(f"%{i} Shift axis {op.axis} out of range")
            if op.boundary and op.boundary not in prog.boundaries:
                raise IRVerificationError(f"%{i} Shift names unknown boundary '{op.boundary}'")
    for name, v in prog.outputs.items():
        if not 0 <= v < len(prog.ops):
            raise IRVerificationError(f"output {name} refers to undefined %{v}")
