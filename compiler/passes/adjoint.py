"""adjoint: right-hand sides -> right-hand sides plus their vector-Jacobian products.

Input: a discretised, simplified Program with outputs ``rhs:<field>``. Output: the same outputs
plus, from one reverse sweep of the rule table, ``vjp:<field>`` = (df/du)^T w and
``vjp:<param>`` = (df/dp)^T w for the cotangent inputs ``bar:rhs:<field>`` (w). The transposed
stencils are ShiftTranspose ops (the ghost rule folded back onto the cells it reads) and the
parameter cotangents are sums over the grid (Reduce). Parameters that enter a boundary
condition are not differentiated (the rule table does not transpose ghost data); the group
records which parameters are, and the runtime refuses a gradient for the others.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..ir.ops import Param
from ..ir.program import Program
from ..rules import vjp_program
from .linearize import _merge
from .manager import PassContext


def cotangent(field: str, steady: bool = False) -> str:
    """The Input holding the cotangent of ``field``'s right-hand side (or residual)."""
    return f"bar:{'res' if steady else 'rhs'}:{field}"


def boundary_params(prog: Program) -> set[str]:
    """Names of the parameters any boundary rule of ``prog`` uses."""
    names: set[str] = set()
    for rule in prog.boundaries.values():
        for faces in rule.faces:
            if faces == "periodic":
                continue
            for face in faces:
                if face is not None:
                    for e in (face.alpha, face.beta, face.data):
                        names |= {s.name for s in sympy.sympify(e).free_symbols}
    return names


def differentiable_params(prog: Program) -> list[str]:
    """The parameters the right-hand sides use, less those a boundary condition uses."""
    skip = boundary_params(prog)
    live = prog.live()
    used = {op.name for i, op in enumerate(prog.ops) if isinstance(op, Param) and i in live}
    return sorted(used - skip)


def adjoint(prog: Program, ctx: PassContext) -> Program:
    """Time-dependent: vjps of the right-hand sides for the fields and parameters. Steady
    (outputs ``res:<f>``): vjps of the residuals for the parameters only, as the runtime solves
    with the transposed Jacobian it assembles anyway; the cotangent inputs are
    ``bar:res:<f>``."""
    steady = any(name.startswith("res:") for name in prog.outputs)
    prefix = "res:" if steady else "rhs:"
    fields = [name.split(":", 1)[1] for name in prog.outputs if name.startswith(prefix)]
    rhs = {k: v for k, v in prog.outputs.items() if k.startswith(prefix)}
    params = differentiable_params(replace(prog, outputs=rhs))
    back = vjp_program(replace(prog, outputs=rhs), [*([] if steady else fields), *params])
    merged = _merge(prog, back)
    outputs = {}
    for name, v in merged.outputs.items():
        if name.startswith("bar:"):
            outputs[f"vjp:{name[4:]}"] = v
        else:
            outputs[name] = v
    return replace(merged, outputs=outputs)
