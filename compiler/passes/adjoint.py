"""adjoint: right-hand sides -> right-hand sides plus their vector-Jacobian products.

Input: a discretised, simplified Program with outputs ``rhs:<field>``. Output: the same outputs
plus, from one reverse sweep of the rule table, ``vjp:<field>`` = (df/du)^T w and
``vjp:<param>`` = (df/dp)^T w for the cotangent inputs ``bar:rhs:<field>`` (w). The transposed
stencils are ShiftTranspose ops (the ghost rule folded back onto the cells it reads) and the
parameter cotangents are sums over the grid (Reduce). A parameter that enters a boundary
condition is differentiated with the ghosts held fixed here; the lowering of the folds adds
the ghosts' part, (dG/dp)^T of the cotangent each ghost read received (``transpose``). For
that, steady residuals and implicit residuals are transposed for the fields too when a
boundary condition uses a parameter: their folds carry the ghosts' cotangents.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..ir.adjoint_ops import ShiftTranspose
from ..ir.ops import Input, Op, Param, Shift
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
    grid = prog.grid
    not_params = {*grid.axes, grid.time} if grid is not None else set()
    for rule in prog.boundaries.values():
        for faces in rule.faces:
            if faces == "periodic":
                continue
            for face in faces:
                if face is not None:
                    for e in (face.alpha, face.beta, face.data):
                        names |= {s.name for s in sympy.sympify(e).free_symbols}
    return names - not_params


def differentiable_params(prog: Program) -> list[str]:
    """The parameters the right-hand sides or the boundary conditions use."""
    live = prog.live()
    used = {op.name for i, op in enumerate(prog.ops) if isinstance(op, Param) and i in live}
    return sorted(used | boundary_params(prog))


def adjoint(prog: Program, ctx: PassContext) -> Program:
    """Time-dependent: vjps of the right-hand sides for the fields and parameters. Steady
    (outputs ``res:<f>``): vjps of the residuals for the parameters only, as the runtime solves
    with the transposed Jacobian it assembles anyway; the cotangent inputs are
    ``bar:res:<f>``."""
    if any(name.startswith("explicit:") for name in prog.outputs):
        return _adjoint_theta(prog)
    steady = any(name.startswith("res:") for name in prog.outputs)
    prefix = "res:" if steady else "rhs:"
    fields = [name.split(":", 1)[1] for name in prog.outputs if name.startswith(prefix)]
    rhs = {k: v for k, v in prog.outputs.items() if k.startswith(prefix)}
    if not steady:
        prog = _with_inputs(prog, fields)
    params = differentiable_params(replace(prog, outputs=rhs))
    # a steady residual's fields are transposed only for the folds of boundary parameters
    wrt = fields if not steady or boundary_params(prog) else []
    back = vjp_program(replace(prog, outputs=rhs), [*wrt, *params], fixed_ghosts=True)
    if steady:  # linearize, which runs next, claims ``:lin`` for the Newton direction
        back = _own_homogeneous_rules(back)
    merged = _merge(prog, back)
    outputs = {}
    for name, v in merged.outputs.items():
        if name.startswith("bar:"):
            outputs[f"vjp:{name[4:]}"] = v
        else:
            outputs[name] = v
    return replace(merged, outputs=outputs)


def _adjoint_theta(prog: Program) -> Program:
    """An implicit step (outputs of ``theta``): the vjps of the explicit half (``explicit:`` and
    ``start:`` outputs, for the fields, the imex history and the parameters) and of the
    residual (for the parameters; the state's part is the transposed Newton solve), as
    ``vjp_explicit:<name>``, ``vjp_start:<name>`` and ``vjp_res:<param>``."""
    from .theta import history_buffer

    fields = [name.split(":", 1)[1] for name in prog.outputs if name.startswith("res:")]
    prog = _with_inputs(prog, fields)
    explicit = {k: v for k, v in prog.outputs.items() if k.startswith("explicit:")}
    read = replace(prog, outputs=explicit).live()
    histories = [  # imex reads N of the previous step; cn has no history
        history_buffer(f)
        for f in fields
        if any(
            isinstance(op, Input) and op.name == history_buffer(f) and i in read
            for i, op in enumerate(prog.ops)
        )
    ]
    params = differentiable_params(prog)
    merged = prog
    # the residual's fields are transposed only for the folds of boundary parameters
    res = fields if boundary_params(prog) else []
    for kind, wrt in (("explicit", [*fields, *histories]), ("start", fields), ("res", res)):
        outs = {k: v for k, v in prog.outputs.items() if k.startswith(kind + ":")}
        if not outs or not (wrt or params):
            continue
        back = vjp_program(replace(prog, outputs=outs), [*wrt, *params], fixed_ghosts=True)
        back = _own_homogeneous_rules(back)
        back = replace(back, outputs={f"vjp_{kind}:{k[4:]}": v for k, v in back.outputs.items()})
        merged = _merge(merged, back)
    return merged


def _with_inputs(prog: Program, fields: list[str]) -> Program:
    """``prog`` with an Input for every field, also one that no right-hand side reads
    (``dt(v) = u``, a time integral): its vjp is then zero instead of a missing name."""
    have = {op.name for op in prog.ops if isinstance(op, Input)}
    out = next(iter(prog.outputs.values()))
    shape, dtype = prog.ops[out].shape, prog.ops[out].dtype
    extra = tuple(Input(name=f, shape=shape, dtype=dtype) for f in fields if f not in have)
    return replace(prog, ops=prog.ops + extra) if extra else prog


def _own_homogeneous_rules(prog: Program) -> Program:
    """Rename the homogeneous ghost rules (``<f>:lin``) that transposes name to ``<f>:adj``:
    ``linearize``, which runs next, claims ``:lin`` for the Newton direction's rules."""
    from ..ir.program import Builder, copy_op, rebuild

    renames = {k: k[: -len(":lin")] + ":adj" for k in prog.boundaries if k.endswith(":lin")}
    if not renames:
        return prog

    def rewrite(b: Builder, op: Op, args: tuple[int, ...]) -> int:
        if isinstance(op, Shift | ShiftTranspose) and op.boundary in renames:
            return b.add(replace(op, args=args, boundary=renames[op.boundary]))
        return copy_op(b, op, args)

    out = rebuild(prog, rewrite)
    boundaries = {
        renames.get(k, k): replace(r, field=renames.get(k, k)) for k, r in out.boundaries.items()
    }
    return replace(out, boundaries=boundaries)
