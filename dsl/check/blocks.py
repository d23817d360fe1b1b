"""Name checks of network, train and bilevel blocks (they stay in raw AST form for now)."""

from __future__ import annotations

from collections.abc import Iterable

import sympy
from sympy.core.function import AppliedUndef

from .. import ast as A
from ..build import ELEMENTARY
from ..diagnostics import DiagnosticSink, did_you_mean
from ..resolve import ModuleEnv, ref_span
from .common import (
    BILEVEL_METHODS,
    OPTIMIZERS,
    TRAIN_SETTINGS,
    Names,
    check_options,
    check_solves,
    shadows_builtin,
    shadows_top_level,
)

NET_OPS = ("dense", "bias", "sum", "mean", "index", "matmul")
TENSOR_OPS = ("sum", "mean", "index", "matmul")


def check_names(
    expr: A.Expression,
    symbols: Iterable[str],
    calls: Iterable[str],
    env: ModuleEnv,
    sink: DiagnosticSink,
) -> None:
    """Report names and called functions of ``expr`` that are not visible here."""
    symbols = {*symbols, *env.consts}
    calls = {*calls, *env.fns, *env.fn_table}
    for s in sorted(expr.value.free_symbols, key=str):
        if s.name.startswith("kw="):
            continue
        if s.name not in symbols:
            sink.error(
                "R201",
                f"unknown name '{s.name}'",
                ref_span(expr, s.name),
                did_you_mean(s.name, symbols),
            )
    for c in sorted({a.func.__name__ for a in expr.value.atoms(AppliedUndef)}):
        if c not in calls:
            sink.error(
                "R202",
                f"unknown function '{c}'",
                ref_span(expr, c),
                did_you_mean(c, [*calls, *ELEMENTARY]),
            )


def check_network(net: A.Network, env: ModuleEnv, sink: DiagnosticSink) -> None:
    names = Names(sink, env)
    sizes: set[str] = set()
    for t in net.inputs:
        names.declare(t.name, t.span, "input")
        for d in t.shape:
            sizes |= {s.name for s in d.value.free_symbols}
    options = {kw.name for kw in net.options}
    for kw in net.options:
        # A default may name a function that only exists where the network is used
        # (e.g. act = relu), so names in defaults are resolved at instantiation.
        names.declare(kw.name, kw.span, "option")
    for d in net.output_shape:
        check_names(d, sizes | options, (), env, sink)
    known = {t.name for t in net.inputs} | options
    calls = {*NET_OPS, *env.networks, *options}
    # a function may be passed by name as an option of a sub-network (act = tanh)
    functions = {*env.fns, *ELEMENTARY, *env.networks}
    returned = _check_body(net.body, known, calls, env, sink, functions)
    if not returned:
        sink.error(
            "R330",
            f"network '{net.name}' has no return statement",
            net.span,
            "end the body with 'return EXPR'",
        )


def _check_body(
    body: tuple[A.Stmt, ...],
    known: set[str],
    calls: set[str],
    env: ModuleEnv,
    sink: DiagnosticSink,
    functions: set[str],
) -> bool:
    returned = False
    for stmt in body:
        if returned:
            sink.error("R330", "statement after return", stmt.span, "'return' must come last")
            break
        if isinstance(stmt, A.Assign):
            check_names(stmt.value, known | functions, calls, env, sink)
            _check_target(stmt, env, sink)
            known.add(stmt.target)
        elif isinstance(stmt, A.Repeat):
            check_names(stmt.count, known, (), env, sink)
            if _check_body(stmt.body, known, calls, env, sink, functions):
                sink.error("R330", "return inside repeat", stmt.span, "return after the loop")
        else:
            check_names(stmt.value, known | functions, calls, env, sink)
            returned = True
    return returned


def _check_target(stmt: A.Assign, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """A value may be reassigned (``h = tanh(dense(h, 8))``), but not named after a built-in
    or a top-level const or fn, whose meaning its uses would silently keep."""
    if not shadows_builtin(sink, stmt.target, stmt.span, "value"):
        shadows_top_level(sink, env, stmt.target, stmt.span, "value")


def _check_net_value(value: A.OptValue, env: ModuleEnv, sink: DiagnosticSink) -> None:
    if isinstance(value, A.Call):
        if value.name not in env.networks:
            sink.error(
                "R202",
                f"unknown network '{value.name}'",
                value.span,
                did_you_mean(value.name, env.networks),
            )
    elif isinstance(value.value, sympy.Symbol) and value.value.name not in env.networks:
        sink.error(
            "R202",
            f"unknown network '{value.value.name}'",
            value.span,
            did_you_mean(value.value.name, env.networks),
        )


def check_train(train: A.Train, env: ModuleEnv, sink: DiagnosticSink) -> None:
    names = Names(sink, env)
    for n in train.nets:
        names.declare(n.name, n.span, "net")
        _check_net_value(n.value, env, sink)
    sizes: set[str] = set()
    for d in train.data:
        names.declare(d.name, d.span, "data")
        for dim in d.shape:
            sizes |= {s.name for s in dim.value.free_symbols}
    if train.loss is None:
        sink.error(
            "R331",
            f"train block '{train.name}' has no loss line",
            train.span,
            "add e.g. 'loss mean((f(x) - y)^2)'",
        )
    else:
        symbols = {d.name for d in train.data} | sizes
        check_names(train.loss, symbols, {*TENSOR_OPS, *(n.name for n in train.nets)}, env, sink)
    values, _ = check_options(train.settings, TRAIN_SETTINGS, env, sink, "a train block")
    opt = values.get("optimizer")
    if isinstance(opt, A.Call) and opt.name not in OPTIMIZERS:
        sink.error(
            "R206",
            f"unknown optimizer '{opt.name}'",
            opt.span,
            did_you_mean(opt.name, OPTIMIZERS) or f"use one of {', '.join(OPTIMIZERS)}",
        )


def check_bilevel(bl: A.Bilevel, env: ModuleEnv, sink: DiagnosticSink) -> None:
    names = Names(sink, env)
    sizes: set[str] = set()
    for d in bl.data:
        names.declare(d.name, d.span, "data")
        for dim in d.shape:
            sizes |= {s.name for s in dim.value.free_symbols}
    for p in bl.params:
        names.declare(p.name, p.span, "param")
        check_names(p.value, (), (), env, sink)
    lower_vars = set()
    for v in bl.variables:
        names.declare(v.name, v.span, f"{v.level} variable")
        if v.level == "lower":
            lower_vars.add(v.name)
        for dim in v.shape or ():
            sizes |= {s.name for s in dim.value.free_symbols}
    for ls in bl.lower_solutions:
        names.declare(ls.name, ls.span, "lower solution")
        pde = env.blocks.get(ls.problem.name)
        if not isinstance(pde, A.Pde):
            pdes = [k for k, b in env.blocks.items() if isinstance(b, A.Pde)]
            sink.error(
                "R202",
                f"'{ls.problem.name}' is not a pde block of this file",
                ls.problem.span,
                did_you_mean(ls.problem.name, pdes),
            )
        elif ls.field not in {f.name for f in pde.fields}:
            sink.error(
                "R208",
                f"pde '{pde.name}' has no field '{ls.field}'",
                ls.span,
                did_you_mean(ls.field, [f.name for f in pde.fields]),
            )
    symbols = set(names.spans) | sizes
    for v in bl.variables:
        check_names(v.init, symbols, TENSOR_OPS, env, sink)
    for ob in bl.objectives:
        check_names(ob.expr, symbols, TENSOR_OPS, env, sink)
        if ob.over is not None and ob.over not in lower_vars:
            sink.error(
                "R209",
                f"'over {ob.over}': not a lower variable",
                ob.span,
                did_you_mean(ob.over, lower_vars) or "name a 'lower' variable",
            )
    levels = {ob.level for ob in bl.objectives} | ({"lower"} if bl.lower_solutions else set())
    for level in ("upper", "lower"):
        if level not in levels:
            sink.error(
                "R332",
                f"bilevel '{bl.name}' has no {level}-level objective",
                bl.span,
                f"add '{level} minimize ...' or '{level} maximize ...'",
            )
    check_solves(bl.solves, BILEVEL_METHODS, env, sink, f"bilevel '{bl.name}'")
