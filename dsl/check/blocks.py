"""Name checks of network, train and bilevel blocks (they stay in raw AST form for now)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sympy
from sympy.core.function import AppliedUndef

from .. import ast as A
from ..build import ELEMENTARY
from ..diagnostics import DiagnosticSink, did_you_mean
from ..numeric import shown
from ..resolve import ModuleEnv, fold_number, ref_span
from ..source import Span
from .common import (
    BILEVEL_METHODS,
    OPTIMIZERS,
    TRAIN_SETTINGS,
    Names,
    check_options,
    check_solves,
    repeat_limit,
    rho_beyond,
    shadows_builtin,
    shadows_top_level,
    unroll_beyond,
    uses_later_param,
)
from .widths import check_instance, check_network_widths

NET_OPS = ("dense", "bias", "sum", "mean", "index", "matmul")
TENSOR_OPS = ("sum", "mean", "index", "matmul")
# every optimizer's options (their defaults and meaning: runtime/optimizers.py)
OPTIMIZER_OPTIONS: dict[str, tuple[str, ...]] = {
    "adam": ("lr", "beta1", "beta2", "eps", "weight_decay"),
    "sgd": ("lr", "momentum", "weight_decay"),
    "lbfgs": ("history", "tol"),
}

# Ranges beyond "a non-negative number", as PyTorch checks them: Adam's bias correction
# 1 - beta^t changes sign past beta = 1, and L-BFGS keeps at least one correction pair.
OPTIMIZER_RANGES: dict[str, tuple[Any, str]] = {
    "beta1": (lambda v: v < 1, "a number in [0, 1)"),
    "beta2": (lambda v: v < 1, "a number in [0, 1)"),
    "history": (lambda v: v >= 1 and v == int(v), "a whole number of at least 1"),
}


def optimizer_option_problem(name: str, value: float) -> str | None:
    """What is wrong with a non-negative ``value`` of optimizer option ``name``, or None."""
    in_range, describe = OPTIMIZER_RANGES.get(name, (lambda v: True, ""))
    return None if in_range(value) else f"optimizer option '{name}' must be {describe}"


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
    # input sizes are numbers in the body too (dense(h, n) maps back to an input's size)
    known = {t.name for t in net.inputs} | options | sizes
    calls = {*NET_OPS, *env.networks, *options}
    # a function may be passed by name as an option of a sub-network (act = tanh)
    functions = {*env.fns, *ELEMENTARY, *env.networks}
    returned = _check_body(net.body, known, calls, env, sink, functions)
    check_network_widths(net, env, sink)
    cycle = _network_cycle(net, env)
    if cycle is not None:
        sink.error(
            "R205",
            f"recursive network: {' -> '.join(cycle)}",
            net.span,
            "a network's layers are made when it is applied, so it cannot call itself",
        )
    if not returned:
        sink.error(
            "R330",
            f"network '{net.name}' has no return statement",
            net.span,
            "end the body with 'return EXPR'",
        )


def _called_networks(body: tuple[A.Stmt, ...], env: ModuleEnv) -> list[str]:
    """The networks (of ``env``) that statements of ``body`` call, in order."""
    out: list[str] = []
    for stmt in body:
        if isinstance(stmt, A.Repeat):
            out += _called_networks(stmt.body, env)
            continue
        calls = sorted(stmt.value.value.atoms(AppliedUndef), key=str)
        out += [c.func.__name__ for c in calls if c.func.__name__ in env.networks]
    return list(dict.fromkeys(out))


def _network_cycle(net: A.Network, env: ModuleEnv) -> list[str] | None:
    """A chain of calls from ``net`` back to itself (``a -> b -> a``), or None."""
    seen: set[int] = set()

    def walk(node: A.Network, node_env: ModuleEnv, chain: list[str]) -> list[str] | None:
        for callee in _called_networks(node.body, node_env):
            target = node_env.networks[callee]
            if target is net:
                return [*chain, callee]
            if id(target) in seen:
                continue
            seen.add(id(target))
            found = walk(target, node_env.network_envs[callee], [*chain, callee])
            if found is not None:
                return found
        return None

    return walk(net, env, [net.name])


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
            check_indices(stmt.value, env, sink)
            _check_target(stmt, env, sink)
            known.add(stmt.target)
        elif isinstance(stmt, A.Repeat):
            check_names(stmt.count, known, (), env, sink)
            consts = {sympy.Symbol(k): v for k, v in env.consts.items()}
            too_many = repeat_limit(stmt.count.value.xreplace(consts), stmt.count.span)
            if too_many is not None:
                sink.add(too_many)
            if _check_body(stmt.body, known, calls, env, sink, functions):
                sink.error("R330", "return inside repeat", stmt.span, "return after the loop")
        else:
            check_names(stmt.value, known | functions, calls, env, sink)
            check_indices(stmt.value, env, sink)
            returned = True
    return returned


def check_indices(expr: A.Expression, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """R352 for an index written as a number that is not a whole one (``x[0.5]``): no axis
    has such a position, whatever its size (the range is checked where sizes are known)."""
    consts = {sympy.Symbol(k): v for k, v in env.consts.items()}
    for call in sorted(expr.value.atoms(AppliedUndef), key=str):
        if call.func.__name__ != "index":
            continue
        for arg in call.args[1:]:
            number = arg.xreplace(consts)
            if number.is_number and not (number.is_real and number == int(number)):
                sink.error(
                    "R352",
                    f"index {shown(number)} is not a whole number",
                    ref_span(expr, str(call)),
                    "indices are constant whole numbers from 0 to size - 1 (negative ones "
                    "count from the end)",
                )


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
        if isinstance(n.value, A.Call):
            check_instance(n.value, env, sink)
    sizes: set[str] = set()
    for d in train.data:
        names.declare(d.name, d.span, "data")
        for dim in d.shape:
            sizes |= {s.name for s in dim.value.free_symbols}
    # a misspelt loss line (`los ...`) reads as a setting: R206 says so, with 'loss' as a hint
    misspelt = any(
        kw.name not in TRAIN_SETTINGS and did_you_mean(kw.name, ["loss"]) for kw in train.settings
    )
    if train.loss is None and not misspelt:
        sink.error(
            "R331",
            f"train block '{train.name}' has no loss line",
            train.span,
            "add e.g. 'loss mean((f(x) - y)^2)'",
        )
    elif train.loss is not None:
        symbols = {d.name for d in train.data} | sizes
        nets = {n.name for n in train.nets}
        for s in sorted(train.loss.value.free_symbols, key=str):
            if "." in s.name and s.name.split(".")[0] in nets:  # f.h.W: a weight by name
                sink.error(
                    "R201",
                    f"'{s.name}' is a weight: a loss reads the nets' outputs, not their weights",
                    ref_span(train.loss, s.name),
                    "for L2 weight decay give the optimizer weight_decay, e.g. "
                    "optimizer adam(lr = 1e-3, weight_decay = 1e-4)",
                )
                symbols.add(s.name)
        check_names(train.loss, symbols, {*TENSOR_OPS, *(n.name for n in train.nets)}, env, sink)
        check_indices(train.loss, env, sink)
        applied = {type(f).__name__ for f in train.loss.value.atoms(AppliedUndef)}
        for n in train.nets:
            if n.name not in applied:  # it would have no input shape and nothing to learn
                sink.error(
                    "R331",
                    f"net '{n.name}' is declared but the loss does not use it",
                    n.span,
                    f"apply it in the loss (e.g. {n.name}(x)), or remove it; a term "
                    "multiplied by 0 counts as not written",
                )
    values, spans = check_options(
        train.settings, TRAIN_SETTINGS, env, sink, "a train block", ("net", "data", "loss")
    )
    check_optimizer(values.get("optimizer"), spans.get("optimizer"), env, sink)
    if not train.nets:  # nothing has weights: every step would leave the loss as it is
        sink.error(
            "R331",
            f"train block '{train.name}' has no net, so it has nothing to train",
            train.span,
            "add e.g. 'net f = nn.mlp(width = 32)' and use f in the loss",
        )
    opt = values.get("optimizer")
    if opt is not None and _name(opt) == "lbfgs" and "batch" in values:
        sink.error(
            "R537",
            "lbfgs takes the whole data at every step: a batch does not apply to it",
            spans.get("batch"),
            "remove batch, or use adam or sgd for mini-batches",
        )


def check_optimizer(opt: Any, span: Span | None, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """An optimizer setting (a train block's, or a pinn line's option): a known name (R206),
    with options it takes (R537)."""
    if isinstance(opt, A.Call | str) and _name(opt) not in OPTIMIZERS:
        sink.error(
            "R206",
            f"unknown optimizer '{_name(opt)}'",
            opt.span if isinstance(opt, A.Call) and opt.span is not None else span,
            did_you_mean(_name(opt), OPTIMIZERS) or f"use one of {', '.join(OPTIMIZERS)}",
        )
    elif isinstance(opt, A.Call):
        check_optimizer_options(opt, env, sink)


def _name(opt: A.Call | str) -> str:
    return opt.name if isinstance(opt, A.Call) else opt


def check_optimizer_options(opt: A.Call, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """The options of a known optimizer ``opt`` (``adam(lr = 1e-3)``): keywords it takes, each
    a non-negative constant number (R537, as the run-time check of options given from Python)."""
    allowed = OPTIMIZER_OPTIONS[opt.name]
    if opt.args:
        sink.error(
            "R537",
            f"optimizer '{opt.name}' takes its options as keywords",
            opt.span,
            f"e.g. {opt.name}({allowed[0]} = ...)",
        )
    consts = {sympy.Symbol(k): v for k, v in env.consts.items()}
    for kw in opt.kwargs:
        if kw.name not in allowed:
            sink.error(
                "R537",
                f"'{kw.name}' is not an option of {opt.name}",
                kw.span,
                did_you_mean(kw.name, allowed) or f"{opt.name} takes {', '.join(allowed)}",
            )
            continue
        value = None if isinstance(kw.value, A.Call) else kw.value.value.xreplace(consts)
        where = kw.value.span if kw.value.span is not None else kw.span
        if value is None or not (value.is_number and value.is_real and value >= 0):
            sink.error(
                "R537", f"optimizer option '{kw.name}' must be a non-negative number", where, None
            )
        elif (problem := optimizer_option_problem(kw.name, float(value))) is not None:
            sink.error("R537", f"{problem}, got {float(value):g}", where, None)


def keyword_expression(value: A.OptValue) -> A.Expression:
    """A keyword's value as one Expression: the parser keeps a value that is a call of a
    non-elementary function (``nu = pos(s)``, ``amp = sum(c)``) as a Call node; this is the
    same call as the expression ``pos(s)`` would hold inside a larger expression."""
    if isinstance(value, A.Expression):
        return value
    args = [keyword_expression(a) for a in value.args]
    kwargs = [keyword_expression(k.value) for k in value.kwargs]
    call_args = [a.value for a in args]
    call_args += [A.kwarg(k.name, v.value) for k, v in zip(value.kwargs, kwargs, strict=True)]
    refs: tuple[A.NameRef, ...] = (A.NameRef(value.name, value.span),)
    for a in (*args, *kwargs):
        refs += a.refs
    return A.Expression(sympy.Function(value.name)(*call_args), value.span, refs)


def _check_lower_solution(
    ls: A.LowerSolution,
    pde: A.Pde,
    symbols: set[str],
    lower: set[str],
    env: ModuleEnv,
    sink: DiagnosticSink,
) -> None:
    """The call of a PDE lower level: keywords name params of the pde block, their values use
    upper variables, params, data and consts (not the lower level), and ``at`` names its time."""
    params = [p.name for p in pde.params]
    for arg in ls.problem.args:
        sink.error(
            "R301",
            f"the parameters of '{pde.name}' are given by name",
            arg.span,
            f"e.g. '{pde.name}({params[0] if params else 'nu'} = ...)'",
        )
    for kw in ls.problem.kwargs:
        if kw.name not in params:
            sink.error(
                "R206",
                f"pde '{pde.name}' has no param '{kw.name}'",
                kw.span,
                did_you_mean(kw.name, params)
                or (f"params: {', '.join(params)}" if params else f"'{pde.name}' has no params"),
            )
        expr = keyword_expression(kw.value)
        below = sorted(s.name for s in expr.value.free_symbols if s.name in lower)
        if below:
            sink.error(
                "R350",
                f"the value of '{kw.name}' reads the lower level ('{below[0]}'): the PDE's "
                "parameters are functions of the upper variables, params and data",
                ref_span(expr, below[0]),
                None,
            )
            continue
        check_names(expr, symbols, TENSOR_OPS, env, sink)
    time = pde.times[0].name if pde.times else None
    for kw in ls.at:
        if time is None:
            sink.error(
                "R350",
                f"pde '{pde.name}' is steady: its solution has no time to observe "
                f"'at {kw.name} = ...'",
                kw.span,
                f"remove 'at {kw.name} = ...': the lower solution is the steady field",
            )
        elif kw.name != time:
            sink.error(
                "R416",
                f"'at {kw.name} = ...' is not compiled yet: a PDE lower level is observed at "
                "a time",
                kw.span,
                f"use 'at {time} = VALUE'",
            )
        if isinstance(kw.value, A.Expression):
            check_names(kw.value, (), (), env, sink)
            if time is not None and kw.name == time:
                _check_observed_time(kw, pde, env, sink)


def _check_observed_time(kw: A.Keyword, pde: A.Pde, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """``at t = T`` must be a number after the pde's start time (the solve runs up to T)."""
    assert isinstance(kw.value, A.Expression)
    quiet = DiagnosticSink()  # names are reported by check_names; the start time by the pde
    at = fold_number(kw.value, env.consts, quiet, "the time", env)
    t0 = fold_number(pde.times[0].t0, env.consts, quiet, "the start time", env)
    if at is not None and t0 is not None and not at > t0:
        sink.error(
            "R350",
            f"'at {kw.name} = {float(at):g}' is not after the start time {float(t0):g} of pde "
            f"'{pde.name}'",
            kw.value.span,
            "observe the solution at a time after the start of its time interval",
        )


def _over_span(ob: A.Objective) -> Span | None:
    """The span of the name after 'over', which ends the objective's statement (else the whole
    statement)."""
    span, name = ob.span, ob.over or ""
    if span is None or span.source is None:
        return span
    start = span.end_col - len(name)
    if span.source.line_text(span.end_line)[start - 1 : span.end_col - 1] != name:
        return span
    return Span(span.file, span.end_line, start, span.end_line, span.end_col, span.source)


def _check_bilevel_method(bl: A.Bilevel, sink: DiagnosticSink) -> None:
    """The methods that do not apply to this kind of lower level (R416, as at run time)."""
    followers = sum(1 for ob in bl.objectives if ob.level == "lower")
    for solve in bl.solves:
        if solve.method not in BILEVEL_METHODS:
            continue
        if bl.lower_solutions and solve.method != "adjoint":
            sink.error(
                "R416",
                f"bilevel method '{solve.method}' is not compiled for a PDE lower level yet "
                f"('{bl.name}')",
                solve.span,
                "use 'solve adjoint(...)' (the PDE's discrete adjoint)",
            )
        elif not bl.lower_solutions and solve.method == "adjoint":
            sink.error(
                "R416",
                f"bilevel method 'adjoint' is for a PDE lower level ('{bl.name}' has lower "
                "objectives)",
                solve.span,
                "use 'solve implicit(...)', 'unroll(k = ...)' or 'penalty(rho = ...)'",
            )
        elif solve.method == "penalty" and followers > 1:
            sink.error(
                "R416",
                f"the penalty method needs one lower objective; '{bl.name}' is a game of "
                f"{followers} followers",
                solve.span,
                "use 'solve implicit(...)' or 'unroll(k = ...)' for an equilibrium of followers",
            )


def _flat_size(bl: A.Bilevel, env: ModuleEnv) -> int | None:
    """How many numbers the variables of a block with lower objectives take (the flat vector
    the methods iterate on), or None where a size is a size of the data, known at run time."""
    consts = {sympy.Symbol(k): v for k, v in env.consts.items()}
    total = 0
    for v in bl.variables:
        count = 1
        for dim in v.shape or ():
            value = dim.value.xreplace(consts)
            if not (value.is_Integer and value >= 0):
                return None
            count *= int(value)
        total += count
    return total


def _check_bilevel_limits(
    bl: A.Bilevel, solves: list[A.SolveSpec], env: ModuleEnv, sink: DiagnosticSink
) -> None:
    """R538 for the limits of the machine and the dtype that the file alone decides, reported
    as a run would report them (the same functions make the text): a ``penalty(rho = ...)``
    beyond what the dtype resolves, and an ``unroll(k = ...)`` whose stored steps would take
    more than half of this machine's memory (where the variables' sizes are numbers)."""
    if bl.lower_solutions:  # only adjoint applies (R416 otherwise)
        return
    for spec in solves:
        rho, k = spec.options.get("rho"), spec.options.get("k")
        beyond = None
        if spec.method == "penalty" and isinstance(rho, int | float):
            beyond = rho_beyond(float(rho), str(spec.options.get("dtype", "float64")))
        if spec.method == "unroll" and isinstance(k, int):
            size = _flat_size(bl, env)
            beyond = unroll_beyond(k, size) if size else None
        if beyond is not None:
            where = spec.option_spans.get("rho" if spec.method == "penalty" else "k")
            sink.error("R538", beyond[0], where or spec.span, beyond[1])


def _check_params(bl: A.Bilevel, env: ModuleEnv, sink: DiagnosticSink, names: Names) -> None:
    """Params: their defaults may use consts and earlier params, and must be finite numbers
    (R317) -- the value a run would use unless it is given one."""
    values: dict[str, sympy.Basic] = {}
    variables = {v.name for v in bl.variables} | {d.name for d in bl.data}
    for index, p in enumerate(bl.params):
        names.declare(p.name, p.span, "param")
        if uses_later_param(p, list(bl.params), index, sink):
            values[p.name] = sympy.Integer(1)  # reported; a stand-in keeps later params quiet
            continue
        used = sorted(s.name for s in p.value.value.free_symbols if s.name in variables)
        if used:
            sink.error(
                "R317",
                f"the value of param '{p.name}' must be a constant; '{used[0]}' is a variable "
                "or data of the block, which a param cannot follow",
                ref_span(p.value, used[0]),
                f"write {used[0]} where '{p.name}' is used, or make '{p.name}' an upper variable",
            )
            values[p.name] = sympy.Integer(1)  # reported; a stand-in keeps later params quiet
            continue
        before = len(sink.items)
        check_names(p.value, values, (), env, sink)
        if len(sink.items) == before:
            folded = fold_number(p.value, {**env.consts, **values}, sink, f"param '{p.name}'", env)
            values[p.name] = sympy.Float(folded) if folded is not None else sympy.Integer(1)
        else:
            values[p.name] = sympy.Integer(1)  # reported; a stand-in keeps later params quiet


def _check_size(
    dim: A.Expression, var: str, sizes: set[str], env: ModuleEnv, sink: DiagnosticSink
) -> None:
    """A size of a variable's shape: a size name of the data (R349) or a whole number >= 0."""
    value = dim.value.xreplace({sympy.Symbol(k): v for k, v in env.consts.items()})
    if isinstance(value, sympy.Symbol):
        if value.name not in sizes:
            sink.error(
                "R349",
                f"the size '{value.name}' of '{var}' is not a size of the data",
                dim.span,
                did_you_mean(value.name, sizes)
                or "name a size of a data array, e.g. 'lower w: [p]' with 'data X: [n, p]'",
            )
    elif not (value.is_Integer and value >= 0):
        sink.error(
            "R343", f"size '{dim.value}' of '{var}' must be a whole number or a name", dim.span
        )


def _check_variable_bounds(v: A.VarDecl, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """R350 for reversed bounds and for an initial value outside them, for every variable at
    once (the lowering refuses them too, one at a time). Values that are not constant numbers
    are reported elsewhere (names) or when the block is compiled."""
    if v.bounds is None:
        return
    quiet = DiagnosticSink()
    lo, hi = (fold_number(b, env.consts, quiet, "a bound", env) for b in v.bounds)
    if lo is None or hi is None or not (lo.is_number and hi.is_number):
        return
    if not lo <= hi:
        sink.error(
            "R350",
            f"the bounds of '{v.name}' are reversed: [{shown(lo)}, {shown(hi)}]",
            v.bounds[0].span,
            "write the lower bound first",
        )
        return
    init = fold_number(v.init, env.consts, quiet, "an initial value", env)
    if init is not None and init.is_number and not lo <= init <= hi:
        sink.error(
            "R350",
            f"the initial value of '{v.name}', {shown(init)}, is outside its bounds "
            f"[{shown(lo)}, {shown(hi)}]",
            v.init.span,
        )


def check_bilevel(bl: A.Bilevel, env: ModuleEnv, sink: DiagnosticSink) -> None:
    names = Names(sink, env)
    sizes: set[str] = set()
    for d in bl.data:
        names.declare(d.name, d.span, "data")
        for dim in d.shape:
            sizes |= {s.name for s in dim.value.free_symbols}
    _check_params(bl, env, sink, names)
    lower_vars = set()
    for v in bl.variables:
        names.declare(v.name, v.span, f"{v.level} variable")
        if v.level == "lower":
            lower_vars.add(v.name)
        for dim in v.shape or ():
            _check_size(dim, v.name, sizes, env, sink)
        if v.shape and v.level == "upper" and bl.lower_solutions:
            sink.error(
                "R416",
                f"upper variable '{v.name}' has a shape: with a PDE lower level only scalar "
                "upper variables are compiled yet",
                v.span,
                "declare one scalar upper variable per PDE parameter",
            )
    for k, ls in enumerate(bl.lower_solutions):
        if k == 1:
            sink.error(
                "R416",
                "a bilevel block with several PDE lower solutions is not compiled yet",
                ls.span,
                "use one 'lower NAME = P(...).field' line",
            )
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
    # the PDE's parameters are functions of the upper level: not of the lower level
    below = lower_vars | {ls.name for ls in bl.lower_solutions}
    for ls in bl.lower_solutions:
        pde = env.blocks.get(ls.problem.name)
        if isinstance(pde, A.Pde):
            _check_lower_solution(ls, pde, symbols - below, below, env, sink)
    for v in bl.variables:
        check_names(v.init, symbols, TENSOR_OPS, env, sink)
        _check_variable_bounds(v, env, sink)
    for ob in bl.objectives:
        check_names(ob.expr, symbols, TENSOR_OPS, env, sink)
        if ob.over is not None and ob.over not in lower_vars:
            sink.error(
                "R209",
                f"'over {ob.over}': not a lower variable",
                _over_span(ob),
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
    solves = check_solves(bl.solves, BILEVEL_METHODS, env, sink, f"bilevel '{bl.name}'")
    _check_bilevel_method(bl, sink)
    _check_bilevel_limits(bl, solves, env, sink)
