"""linearize: residuals -> residuals plus their exact directional derivatives (for Newton).

Input: a discretised Program with outputs ``res:<field>`` (others pass through). Output: the same
outputs plus
``jvp:<field>`` = J(u) v, the Jacobian of the residuals at the Inputs (the fields) applied to a
direction whose components are the Inputs ``<field>@v``. The derivative comes from the rule
table (one forward sweep); a direction is continued past the faces by the homogeneous
boundary rule of its field, registered under its own buffer name.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir.ops import Input, Op, Shift
from ..ir.program import Builder, Program, copy_op, rebuild
from ..rules import jvp_program
from .manager import PassContext


def direction(field: str) -> str:
    """The buffer holding the Newton direction of ``field``."""
    return f"{field}@v"


def _merge(first: Program, second: Program) -> Program:
    """One Program computing the outputs of both (shared ops are interned once)."""
    b = Builder(first.grid)
    b.boundaries = {**first.boundaries, **second.boundaries}
    for prog in (first, second):
        ids: dict[int, int] = {}
        for i, op in enumerate(prog.ops):
            ids[i] = copy_op(b, op, tuple(ids[a] for a in op.args))
        for name, v in prog.outputs.items():
            b.output(name, ids[v])
    return b.build()


def linearize(prog: Program, ctx: PassContext) -> Program:
    fields = [name.split(":", 1)[1] for name in prog.outputs if name.startswith("res:")]
    residuals = {k: v for k, v in prog.outputs.items() if k.startswith("res:")}
    lin = jvp_program(replace(prog, outputs=residuals), fields)
    renames = {f"dot:{f}": direction(f) for f in fields}
    # tangent Shifts name the homogeneous rule "<field>:lin" or "dot:<field>": both continue the
    # direction past the faces, under the direction buffer's name
    linear = {f"{f}:lin": direction(f) for f in fields} | renames

    def rewrite(b: Builder, op: Op, args: tuple[int, ...]) -> int:
        if isinstance(op, Input) and op.name in renames:
            return b.add(replace(op, name=renames[op.name]))
        if isinstance(op, Shift) and op.boundary in linear:
            return b.add(replace(op, args=args, boundary=linear[op.boundary]))
        return copy_op(b, op, args)

    out = rebuild(_merge(prog, lin), rewrite)
    boundaries = {}
    for key, rule in out.boundaries.items():
        if key in renames:
            boundaries[renames[key]] = replace(rule, field=renames[key])
        elif not key.startswith("dot:") and not key.endswith(":lin"):
            boundaries[key] = rule
    outputs = {}
    for name, v in out.outputs.items():
        if name.startswith("dot:res:"):
            outputs[f"jvp:{name[len('dot:res:') :]}"] = v
        elif not name.startswith("dot:"):  # the residuals, and any other outputs as they were
            outputs[name] = v
    return replace(out, outputs=outputs, boundaries=boundaries)
