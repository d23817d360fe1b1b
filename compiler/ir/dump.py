"""A stable text form of a Program, for ``ritz show --ir`` and golden files."""

from __future__ import annotations

from dataclasses import fields

import sympy

from .ops import Map, Op
from .program import Program

_BASE_FIELDS = {"args", "shape", "dtype", "origin"}


def _attrs(op: Op) -> str:
    parts = []
    for f in fields(op):
        if f.name in _BASE_FIELDS:
            continue
        value = getattr(op, f.name)
        if isinstance(value, sympy.Basic):
            value = sympy.sstr(value, order="lex")
        parts.append(f"{f.name}={value}")
    return ", ".join(parts)


def dump_program(prog: Program) -> str:
    """One line per live op: ``%id = Kind[attrs](args) : shape dtype``, then the outputs."""
    live = prog.live()
    lines = []
    if prog.grid is not None:
        g = prog.grid
        axes = ", ".join(
            f"{a}{' periodic' if p else ''}" for a, p in zip(g.axes, g.periodic, strict=False)
        )
        lines.append(f"grid({axes}) time={g.time}")
    for i, op in enumerate(prog.ops):
        if i not in live:
            continue
        args = ", ".join(f"%{a}" for a in op.args)
        attrs = _attrs(op)
        shape = "x".join(str(d) for d in op.shape) or "scalar"
        head = f"%{i} = {op.kind}"
        if attrs and not isinstance(op, Map):
            head += f"[{attrs}]"
        if isinstance(op, Map):
            head += f"[{sympy.sstr(op.body, order='lex')}]"
        lines.append(f"{head}({args}) : {shape} {op.dtype}")
    for name, v in prog.outputs.items():
        lines.append(f"output {name} = %{v}")
    for name, rule in sorted(prog.boundaries.items()):
        lines.append(f"boundary {name}: {rule.faces}")
    return "\n".join(lines) + "\n"
