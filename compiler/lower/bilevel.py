"""Bilevel blocks -> the tensor Programs that implicit differentiation needs.

The lower level is the point where every follower's objective is stationary in its own
variables: the residual ``R(x, y) = (d f_i / d x_i)_i`` (lower variables x, upper y). From the
objectives' IR the rule table derives everything the runtime solves with, matrix-free:

- ``residual``: R (and the first lower objective's value, for line searches);
- ``residual_jvp``: J v with J = dR/dx (Newton-Krylov steps of the lower level);
- ``residual_vjp``: J^T u (the adjoint system of the implicit function theorem) in the lower
  part, and (dR/dy)^T u (the mixed term of the hypergradient) in the upper part;
- ``upper``: the upper objective F and its gradient in x and y;
- ``lower_objective`` (one lower objective only): its value and gradient in x and y (the
  first-order penalty method's value gap and its derivative in y).

Maximised objectives are negated here, so every Program minimises. All variables share one
flat vector (lower variables first), with the layout of ``WeightSpec``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import sympy

from ...dsl import ast as A
from ...dsl.check.blocks import keyword_expression
from ...dsl.diagnostics import DslTypeError, shape_text
from ...dsl.resolve import ModuleEnv
from ..ir.ops import Input, Shape, placeholder
from ..ir.program import Builder, Program, copy_op, rebuild
from ..rules import jvp_program, vjp_program
from .network import Scope, TensorLowering, Value, WeightSpec
from .train import _dims


@dataclass(frozen=True)
class VarInfo:
    """A variable of a bilevel block: level, shape, initial value and bounds (numbers)."""

    name: str
    level: str
    shape: tuple[int, ...]
    init: float
    bounds: tuple[float, float] | None


@dataclass(frozen=True)
class LoweredBilevel:
    variables: dict[str, VarInfo]  # lower variables first
    specs: dict[str, WeightSpec]  # the flat layout of the variables
    lower: tuple[str, ...]
    upper: tuple[str, ...]
    inputs: tuple[str, ...]  # data arrays, then params (scalars)
    params: dict[str, float]
    programs: dict[str, Program]
    upper_sense: str  # "minimize" or "maximize", as written
    symmetric: bool  # one lower objective: J is a Hessian (CG); several: a Nash game (GMRES)
    dtype: str


def _number(
    e: A.Expression,
    env: ModuleEnv,
    what: str,
    known: Mapping[sympy.Basic, sympy.Basic] | None = None,
) -> float:
    consts = {sympy.Symbol(k): v for k, v in env.consts.items()}
    value = e.value.xreplace({**consts, **(known or {})})
    if value.free_symbols or not value.is_number:
        raise DslTypeError(f"{what} must be a constant number", e.span, None, "R343")
    return float(value)


def _merge(programs: list[Program]) -> Program:
    """One Program computing every output of ``programs`` (shared leaves merge by interning)."""
    b = Builder()
    for prog in programs:
        new: dict[int, int] = {}
        for i, op in enumerate(prog.ops):
            new[i] = copy_op(b, op, tuple(new[a] for a in op.args))
        for name, v in prog.outputs.items():
            b.output(name, new[v])
    return rebuild(b.build(), copy_op)


def _only(prog: Program, names: list[str]) -> Program:
    return rebuild(replace(prog, outputs={n: prog.outputs[n] for n in names}), copy_op)


def _wrt(prog: Program, names: tuple[str, ...]) -> list[str]:
    present = {op.name for op in prog.ops if isinstance(op, Input)}
    return [n for n in names if n in present]


def param_defaults(bl: A.Bilevel, env: ModuleEnv) -> dict[str, float]:
    """The params' declared values, stored as floats: a default may use consts and earlier
    params (``param a = 1, b = 2 * a``), the rule of a pde block's params."""
    values: dict[str, float] = {}
    for p in bl.params:
        known = {sympy.Symbol(k): sympy.Float(v) for k, v in values.items()}
        values[p.name] = _number(p.value, env, f"param '{p.name}'", known)
    return values


def _scope(
    bl: A.Bilevel, env: ModuleEnv, dtype: str, sizes: Mapping[str, int], levels: tuple[str, ...]
) -> tuple[TensorLowering, Scope, list[str], dict[str, float], dict[str, VarInfo]]:
    """The lowering and its scope: data arrays and params as inputs, then the variables of
    ``levels`` (lower first) with their shapes, initial values and bounds."""
    low = TensorLowering(dtype)
    scope = Scope(env, "")
    inputs = []
    for decl in bl.data:
        shape = _dims(decl, env, sizes)
        scope.values[decl.name] = Value(low.input(decl.name, shape), False)
        inputs.append(decl.name)
    params = param_defaults(bl, env)
    for p in bl.params:
        scope.values[p.name] = Value(low.input(p.name, ()), False)
        inputs.append(p.name)
    variables: dict[str, VarInfo] = {}
    for level in levels:
        for v in bl.variables:
            if v.level != level:
                continue
            var_shape: Shape = (
                _dims(A.TensorDecl(v.name, v.shape, v.span), env, sizes) if v.shape else ()
            )
            if any(isinstance(d, str) for d in var_shape):
                raise DslTypeError(
                    f"the size of '{v.name}' is not known from the data",
                    v.span,
                    "name a size of a data array, e.g. 'lower w: [p]' with 'data X: [n, p]'",
                    "R349",
                )
            bounds = None
            if v.bounds is not None:
                bounds = (
                    _number(v.bounds[0], env, "a bound"),
                    _number(v.bounds[1], env, "a bound"),
                )
                if not bounds[0] <= bounds[1]:
                    raise DslTypeError(
                        f"the bounds of '{v.name}' are reversed: [{bounds[0]:g}, {bounds[1]:g}]",
                        v.bounds[0].span,
                        "write the lower bound first",
                        "R350",
                    )
            init = _number(v.init, env, f"the initial value of '{v.name}'")
            if bounds is not None and not bounds[0] <= init <= bounds[1]:
                raise DslTypeError(
                    f"the initial value of '{v.name}', {init:g}, is outside its bounds "
                    f"[{bounds[0]:g}, {bounds[1]:g}]",
                    v.init.span,
                    None,
                    "R350",
                )
            info = VarInfo(v.name, level, tuple(int(d) for d in var_shape), init, bounds)
            variables[v.name] = info
            scope.values[v.name] = Value(low.input(v.name, info.shape), False)
    return low, scope, inputs, params, variables


def lower_pde_keywords(
    bl: A.Bilevel, env: ModuleEnv, dtype: str, sizes: Mapping[str, int]
) -> tuple[LoweredBilevel, tuple[str, ...]]:
    """The parameters a PDE lower level is solved with (``heat(nu = pos(s), amp = sum(c))``)
    as functions of the upper variables, lowered like objectives (fns, data, params, ``sum``,
    ``@``: whatever an upper objective may use). One Program, ``loss = sum_k c_k p_k(y)`` with
    the selectors ``c_k`` as scalar inputs (their names are returned, in keyword order): called
    with ``c = e_k`` its ``upper`` entry gives p_k and dp_k/dy, so one module serves every
    keyword."""
    from ..tensor_driver import gradient_program

    low, scope, inputs, params, variables = _scope(bl, env, dtype, sizes, ("upper",))
    call = bl.lower_solutions[0].problem
    taken = set(scope.values) | set(env.consts)
    selectors: list[str] = []
    total = None
    for kw in call.kwargs:
        k = len(selectors)
        name = f"sel{k}"
        while name in taken:
            name = "_" + name
        taken.add(name)
        selectors.append(name)
        expr = keyword_expression(kw.value)
        value = low.lower(expr.value, scope, expr)
        if low.shape(value):
            raise DslTypeError(
                f"the value of '{kw.name}' must be a number, but this one has shape "
                f"{shape_text(low.shape(value))}",
                kw.span,
                "reduce it, e.g. sum(...)",
                "R348",
            )
        sel = Value(low.input(name, ()), False)
        term = low.map(placeholder(0) * placeholder(1), [sel, value], kw.span)
        total = (
            term
            if total is None
            else low.map(placeholder(0) + placeholder(1), [total, term], kw.span)
        )
    if total is None:  # no keywords: the PDE is solved with its own defaults
        total = low.const(0.0)
    low.b.output("loss", total.id)
    prog = low.b.build()
    upper = tuple(variables)
    programs = {"upper": gradient_program(prog, _wrt(prog, upper))}
    return (
        LoweredBilevel(
            variables,
            {n: WeightSpec(n, v.shape, 1, 1, "bias") for n, v in variables.items()},
            (),
            upper,
            (*inputs, *selectors),
            params,
            programs,
            "minimize",
            True,
            dtype,
        ),
        tuple(selectors),
    )


def lower_bilevel(
    bl: A.Bilevel,
    env: ModuleEnv,
    dtype: str,
    sizes: Mapping[str, int],
    solution_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> LoweredBilevel:
    """The Programs of a bilevel block whose lower level is an optimisation or a game; or,
    for a PDE lower level (``lower u = P(...).u``, shapes in ``solution_shapes``), the upper
    objective's gradient only (the runtime differentiates the solve by its adjoint)."""
    from ..tensor_driver import gradient_program

    low, scope, inputs, params, variables = _scope(bl, env, dtype, sizes, ("lower", "upper"))
    for ls in bl.lower_solutions:
        sol_shape = tuple(int(d) for d in (solution_shapes or {})[ls.name])
        variables = {ls.name: VarInfo(ls.name, "lower", sol_shape, 0.0, None), **variables}
        scope.values[ls.name] = Value(low.input(ls.name, sol_shape), False)
    lower = tuple(n for n, v in variables.items() if v.level == "lower")
    upper = tuple(n for n, v in variables.items() if v.level == "upper")
    for k, ob in enumerate(bl.objectives):
        value = low.lower(ob.expr.value, scope, ob.expr)
        if low.shape(value):
            raise DslTypeError(
                "an objective must be a number, but this one has shape "
                f"{shape_text(low.shape(value))}",
                ob.expr.span,
                "reduce it, e.g. sum(...)",
                "R348",
            )
        if ob.sense == "maximize":
            value = low.map(-placeholder(0), [value], ob.expr.span)
        low.b.output(f"objective{k}", value.id)
    every = low.b.build()

    def objective(ob: A.Objective) -> Program:
        """One objective as a Program with the output ``loss`` (what gradient_program seeds)."""
        k = bl.objectives.index(ob)
        return rebuild(replace(every, outputs={"loss": every.outputs[f"objective{k}"]}), copy_op)

    lowers = [ob for ob in bl.objectives if ob.level == "lower"]
    uppers = [ob for ob in bl.objectives if ob.level == "upper"]
    if len(uppers) != 1:
        raise DslTypeError(
            f"bilevel '{bl.name}' needs exactly one upper objective, got {len(uppers)}",
            bl.span,
            None,
            "R350",
        )
    if bl.lower_solutions:
        if lowers:
            raise DslTypeError(
                "a lower level is either a PDE solution or objectives, not both",
                lowers[0].span,
                None,
                "R350",
            )
        upper_obj = objective(uppers[0])
        return LoweredBilevel(
            variables,
            {n: WeightSpec(n, v.shape, 1, 1, "bias") for n, v in variables.items()},
            lower,
            upper,
            tuple(inputs),
            params,
            {"upper": gradient_program(upper_obj, _wrt(upper_obj, lower + upper))},
            uppers[0].sense,
            True,
            dtype,
        )
    owned: dict[str, A.Objective] = {}
    grads = []
    for ob in lowers:
        over = (ob.over,) if ob.over else lower
        if len(lowers) > 1 and ob.over is None:
            raise DslTypeError(
                "with several lower objectives each one names its variable with 'over NAME'",
                ob.span,
                "e.g. 'lower maximize ... over q1'",
                "R350",
            )
        for name in over:
            if name in owned:
                raise DslTypeError(
                    f"lower variable '{name}' is claimed by two objectives",
                    ob.span,
                    f"the other is at {owned[name].span}",
                    "R350",
                )
            owned[name] = ob
        ob_prog = objective(ob)
        read = _wrt(ob_prog, over)
        ignored = [n for n in over if n not in read]
        if ignored:
            raise DslTypeError(
                f"this lower objective does not depend on its variable '{ignored[0]}'",
                ob.span,
                "a follower chooses its own variable: the objective must contain it",
                "R350",
            )
        grads.append(gradient_program(ob_prog, list(over)))
    orphans = [n for n in lower if n not in owned]
    if orphans:
        raise DslTypeError(f"no lower objective is over '{orphans[0]}'", bl.span, None, "R350")
    residual = _merge(
        [_only(g, [o for o in g.outputs if o != "loss"]) for g in grads]
        + [_only(grads[0], ["loss"])]
    )
    bare = _only(residual, [f"bar:{n}" for n in lower])
    upper_obj = objective(uppers[0])
    upper_prog = gradient_program(upper_obj, _wrt(upper_obj, lower + upper))
    own = _wrt(bare, lower)  # a linear objective's gradient does not read its variable
    programs = {
        "residual": residual,
        "residual_jvp": jvp_program(bare, own),
        # one sweep gives both J^T u (the lower part) and (dR/dy)^T u (the upper part)
        "residual_vjp": vjp_program(bare, own + _wrt(bare, upper)),
        "upper": upper_prog,
    }
    if len(lowers) == 1:
        lower_obj = objective(lowers[0])
        programs["lower_objective"] = gradient_program(lower_obj, _wrt(lower_obj, lower + upper))
    specs = {n: WeightSpec(n, v.shape, 1, 1, "bias") for n, v in variables.items()}
    return LoweredBilevel(
        variables,
        specs,
        lower,
        upper,
        tuple(inputs),
        params,
        programs,
        uppers[0].sense,
        len(lowers) == 1,
        dtype,
    )


__all__ = [
    "LoweredBilevel",
    "VarInfo",
    "lower_bilevel",
    "lower_pde_keywords",
    "param_defaults",
]
