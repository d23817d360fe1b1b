"""Module scope: const folding, fn bodies with their names bound, and the names a block can see.

Imported names are visible as ``alias.name``. Each fn gets a global key (its file and name);
inside resolved fn bodies calls to other fns use those keys, so a body means the same thing
wherever it is inlined.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy
from sympy.core.function import AppliedUndef

from . import ast as A
from .build import CONSTANTS, ELEMENTARY
from .diagnostics import DiagnosticSink, DslTypeError, did_you_mean
from .numeric import DBL_MAX, RANGE_HINT, NumberRangeError, substitute
from .source import Span

# Calls that block checkers give a meaning to; a fn body may use them freely.
OPERATORS = frozenset(
    {"diff", "lap", "grad", "div", "dt", "sum", "mean", "dense", "bias", "index", "matmul"}
)
RESERVED = frozenset(CONSTANTS) | frozenset(ELEMENTARY) | OPERATORS

# Operators spelt as words: a const, fn or fn parameter of that name could never be used (the
# operator wins), so declaring one is R204 everywhere. Other keywords stay usable as top-level
# names (``network net``, ``fn loss``): the contextual lexer reads them as names there.
OPERATOR_WORDS = frozenset({"and", "or", "not"})

# Words that start statements somewhere; declaring them as names would make lines ambiguous.
KEYWORDS = frozenset(
    {
        "import",
        "as",
        "const",
        "fn",
        "pde",
        "network",
        "train",
        "bilevel",
        "space",
        "in",
        "periodic",
        "time",
        "field",
        "param",
        "boundary",
        "at",
        "all",
        "initial",
        "solve",
        "repeat",
        "return",
        "net",
        "data",
        "loss",
        "upper",
        "lower",
        "minimize",
        "maximize",
        "over",
        "and",
        "or",
        "not",
    }
)


@dataclass(frozen=True)
class FnInfo:
    key: str
    name: str
    params: tuple[str, ...]
    body: sympy.Basic
    span: Span | None = field(compare=False)


@dataclass
class ModuleEnv:
    """What one file defines (``local_*``) and what its blocks can see (local + imported)."""

    name: str
    consts: dict[str, sympy.Basic] = field(default_factory=dict)
    fns: dict[str, str] = field(default_factory=dict)  # visible name -> global key
    fn_table: dict[str, FnInfo] = field(default_factory=dict)  # global key -> fn
    networks: dict[str, A.Network] = field(default_factory=dict)
    # visible network name -> the env of the file that defines it (its body's names live there)
    network_envs: dict[str, ModuleEnv] = field(default_factory=dict, repr=False)
    blocks: dict[str, A.Block] = field(default_factory=dict)
    local_consts: dict[str, sympy.Basic] = field(default_factory=dict)
    local_fns: dict[str, str] = field(default_factory=dict)
    local_networks: dict[str, A.Network] = field(default_factory=dict)
    # this file's fns by name, as declared: a const may call one before fns are resolved
    pending_fns: dict[str, A.FnDef] = field(default_factory=dict, repr=False)


def import_alias(imp: A.Import) -> str:
    """The name an import is visible under: its alias, else the last dotted component."""
    return imp.alias or imp.module.rsplit(".", 1)[-1]


def ref_span(expr: A.Expression, name: str) -> Span | None:
    """The span of the first mention of ``name`` in ``expr`` (else the whole expression)."""
    for ref in expr.refs:
        if ref.name == name:
            return ref.span
    return expr.span


def written(name: str | None) -> str:
    """How the user wrote a call the parser made of an operator: ``a @ b`` is ``matmul(a, b)``
    and ``x[i]`` is ``index(x, i)`` inside; messages name what was written."""
    return {"matmul": "'@'", "index": "indexing '[...]'"}.get(name or "", f"'{name}(...)'")


def call_name(e: sympy.Basic) -> str | None:
    """The name of an applied undefined function (a call the checker interprets), else None."""
    return e.func.__name__ if isinstance(e, AppliedUndef) else None


def rebuild(e: sympy.Basic, leaf: Callable[[sympy.Basic], sympy.Basic | None]) -> sympy.Basic:
    """Rebuild ``e`` bottom-up; ``leaf`` may replace any node (returning None keeps it)."""
    new = leaf(e)
    if new is not None:
        return new
    if not e.args:
        return e
    return e.func(*(rebuild(a, leaf) for a in e.args))


def fold_number(
    expr: A.Expression,
    consts: dict[str, sympy.Basic],
    sink: DiagnosticSink,
    what: str,
    env: ModuleEnv | None = None,
) -> sympy.Basic | None:
    """Evaluate a constant expression to a SymPy number, or report why it is not constant;
    with ``env``, calls of its fns are inlined first."""
    keyword_call = _keyword_call(expr)
    if keyword_call is not None:
        sink.error(
            "R301",
            f"keyword arguments are only allowed in calls of networks ('{keyword_call}' is "
            "called with one)",
            ref_span(expr, keyword_call),
            f"pass the arguments of '{keyword_call}' by position",
        )
        return None
    value = expr.value if env is None else inline_calls(env, expr.value)
    try:
        value = substitute(value, {sympy.Symbol(k): v for k, v in consts.items()})
    except NumberRangeError as exc:
        sink.error("R317", f"{what}: {exc}", expr.span, RANGE_HINT)
        return None
    for s in sorted(value.free_symbols, key=str):
        sink.error(
            "R317",
            f"{what} must be a constant expression, but '{s}' is not a known constant",
            ref_span(expr, str(s)),
            did_you_mean(str(s), consts) or "use numbers, consts, pi, e and elementary functions",
        )
        return None
    calls = value.atoms(AppliedUndef)
    if calls:
        _report_call(sorted(calls, key=str)[0], expr, what, sink, env)
        return None
    if value.is_Integer and abs(value) <= DBL_MAX:
        return value
    try:
        number = sympy.Float(value.evalf())
    except (TypeError, ValueError):
        sink.error("R317", f"{what} is not a finite real number ({value})", expr.span, RANGE_HINT)
        return None
    if not math.isfinite(float(number)):
        sink.error("R317", f"{what} is {float(number)} in double precision", expr.span, RANGE_HINT)
        return None
    return number


def _keyword_call(expr: A.Expression) -> str | None:
    """The name of a call in ``expr`` given keyword arguments (only networks take them)."""
    for call in sorted(expr.value.atoms(AppliedUndef), key=str):
        if A.call_parts(call)[2]:
            return call.func.__name__
    return None


def _report_call(
    call: sympy.Basic, expr: A.Expression, what: str, sink: DiagnosticSink, env: ModuleEnv | None
) -> None:
    """Why a call left in a constant expression is not allowed: a fn with the wrong number of
    arguments (R301), a name that is no function at all (R202, as in equations), or an
    operator that has no constant value (R317)."""
    name = call_name(call) or ""
    info = fn_info(env, name) if env is not None else None
    shown = name.rsplit(".", 1)[-1]
    if info is not None and len(call.args) != len(info.params):
        sink.error(
            "R301",
            f"fn '{shown}' takes {len(info.params)} argument(s), got {len(call.args)}",
            ref_span(expr, name),
            f"it is defined as {shown}({', '.join(info.params)})",
        )
    elif info is None and name not in OPERATORS and (env is None or name not in env.networks):
        known = [*(env.fns if env is not None else ()), *ELEMENTARY]
        sink.error(
            "R202",
            f"unknown function '{name}'",
            ref_span(expr, name),
            did_you_mean(name, known)
            or "constant expressions may call elementary functions (sin, exp, ...) and fns",
        )
    else:
        sink.error(
            "R317",
            f"{what} must be a constant expression; {written(name)} is not allowed here",
            ref_span(expr, name),
        )


def fn_info(env: ModuleEnv, name: str) -> FnInfo | A.FnDef | None:
    """The definition a call of ``name`` resolves to (resolved, or declared later), or None."""
    info: FnInfo | A.FnDef | None = env.fn_table.get(name)
    if name in env.fns:
        info = env.fn_table.get(env.fns[name]) or env.pending_fns.get(name)
    return info


def inline_calls(env: ModuleEnv, value: sympy.Basic, depth: int = 0) -> sympy.Basic:
    """``value`` with every call of a fn of ``env`` replaced by the fn's body. A fn declared
    later in the file than a const that calls it is not resolved yet: its raw definition is
    used (a recursive one is left alone, and reported where fns are resolved)."""

    def leaf(node: sympy.Basic) -> sympy.Basic | None:
        name = call_name(node)
        if name is None or depth > 64:
            return None
        info = fn_info(env, name)  # also a resolved body's calls
        args = [inline_calls(env, a, depth + 1) for a in node.args]
        if info is None or len(args) != len(info.params):
            return None
        body = info.body if isinstance(info, FnInfo) else info.body.value
        bound = body.xreplace({sympy.Symbol(p): a for p, a in zip(info.params, args, strict=True)})
        return inline_calls(env, bound, depth + 1)

    return rebuild(value, leaf)


def _rename_calls(env: ModuleEnv, e: sympy.Basic, resolving: set[str]) -> sympy.Basic:
    def leaf(node: sympy.Basic) -> sympy.Basic | None:
        name = call_name(node)
        if name is not None and name in env.fns:
            args = [_rename_calls(env, a, resolving) for a in node.args]
            return sympy.Function(env.fns[name])(*args)
        return None

    return rebuild(e, leaf)


def build_env(
    module: A.Module,
    imports: list[tuple[A.Import, ModuleEnv]],
    sink: DiagnosticSink,
    prelude: ModuleEnv | None = None,
) -> ModuleEnv:
    """Bind a module's top-level names: imports, consts (folded), fns (resolved), blocks;
    then the ``prelude``'s fns under their bare names, where the module declares none."""
    env = ModuleEnv(module.source.name)
    top: dict[str, Span | None] = {}

    def declare(name: str, span: Span | None, kind: str) -> bool:
        if name in RESERVED or name in OPERATOR_WORDS:
            sink.error(
                "R204",
                f"{kind} '{name}' shadows the built-in '{name}'",
                span,
                "choose another name",
            )
            return False
        if name in top:
            sink.error(
                "R203",
                f"duplicate top-level name '{name}'",
                span,
                f"'{name}' is already defined at {top[name]}",
            )
            return False
        top[name] = span
        return True

    if prelude is not None:  # before the consts, which may call them
        declared = {import_alias(imp) for imp, _ in imports}
        declared |= {item.name for item in module.items if hasattr(item, "name")}
        env.fns.update({k: v for k, v in prelude.local_fns.items() if k not in declared})
        env.fn_table.update(prelude.fn_table)
    imported: dict[str, str] = {}
    for imp, sub in imports:
        alias = import_alias(imp)
        if imported.get(alias) == sub.name:
            continue  # the same module under the same alias twice is harmless
        imported[alias] = sub.name
        if not declare(alias, imp.span, "import alias"):
            continue
        env.fn_table.update(sub.fn_table)
        env.consts.update({f"{alias}.{k}": v for k, v in sub.local_consts.items()})
        env.fns.update({f"{alias}.{k}": v for k, v in sub.local_fns.items()})
        env.networks.update({f"{alias}.{k}": v for k, v in sub.local_networks.items()})
        env.network_envs.update({f"{alias}.{k}": sub for k in sub.local_networks})

    const_spans = {i.name: i.span for i in module.items if isinstance(i, A.ConstDef)}
    refused: set[str] = set()  # consts whose value was refused: their uses say nothing more
    for item in module.items:
        if isinstance(item, A.ConstDef):
            if not declare(item.name, item.span, "const"):
                continue
            uses = {str(s) for s in item.value.value.free_symbols} - set(env.consts)
            if uses & refused or uses_later(
                "const", item.name, item.span, item.value, uses, const_spans, sink
            ):
                refused.add(item.name)
                continue
            try:
                value = fold_number(item.value, env.consts, sink, f"const '{item.name}'", env)
            except RecursionError:
                too_deep(sink, item.span)
                continue
            if value is None:
                refused.add(item.name)
            else:
                env.consts[item.name] = env.local_consts[item.name] = value
        elif isinstance(item, A.FnDef):
            if declare(item.name, item.span, "fn"):
                env.pending_fns[item.name] = item
                key = f"@{module.source.name}:{item.name}"
                env.fns[item.name] = env.local_fns[item.name] = key
        elif isinstance(item, A.Pde | A.Network | A.Train | A.Bilevel) and declare(
            item.name, item.span, type(item).__name__.lower()
        ):
            env.blocks[item.name] = item
            if isinstance(item, A.Network):
                env.networks[item.name] = env.local_networks[item.name] = item
                env.network_envs[item.name] = env

    for name, fn in env.pending_fns.items():
        try:
            _resolve_fn(env, env.pending_fns, name, [], sink)
        except RecursionError:
            too_deep(sink, fn.span)
    return env


def uses_later(
    kind: str,
    name: str,
    span: Span | None,
    value: A.Expression,
    uses: set[str],
    later: dict[str, Span | None],
    sink: DiagnosticSink,
) -> bool:
    """R317 for a const or param (``kind``) named ``name`` whose value uses itself or a name of
    ``later`` (those defined after it, by where): both are evaluated in order, so each may use
    only what comes before it (which also rules out cycles)."""
    for other in sorted(uses & set(later)):
        at = later[other]
        elsewhere = at is not None and (span is None or at.line != span.line)
        where = f" (line {at.line})" if elsewhere and at is not None else ""
        sink.error(
            "R317",
            f"{kind} '{name}' uses itself"
            if other == name
            else f"{kind} '{name}' uses '{other}', which is defined after it{where}",
            ref_span(value, other),
            f"a {kind} cannot be defined in terms of itself"
            if other == name
            else f"a {kind} may use only what is defined before it: define '{other}' before "
            f"'{name}'",
        )
        return True
    return False


def too_deep(sink: DiagnosticSink, span: Span | None) -> None:
    """R324 for a statement whose expression, once fns are inlined, nests deeper than Python's
    stack lets SymPy walk (the parser refuses deep nesting as written; see build.MAX_NESTING)."""
    sink.error(
        "R324",
        "expression nested too deeply (once its fns are inlined)",
        span,
        "split it into fewer nested fn calls",
    )


def _resolve_fn(
    env: ModuleEnv, defs: dict[str, A.FnDef], name: str, chain: list[str], sink: DiagnosticSink
) -> None:
    key = env.fns[name]
    if key in env.fn_table:
        return
    fn = defs[name]
    if name in chain:
        cycle = " -> ".join([*chain[chain.index(name) :], name])
        sink.error(
            "R205",
            f"recursive fn: {cycle}",
            fn.span,
            "fns are inlined, so they cannot call themselves",
        )
        env.fn_table[key] = FnInfo(key, name, fn.params, sympy.Integer(0), fn.span)
        return
    for p in fn.params:
        if p in RESERVED or p in OPERATOR_WORDS:
            sink.error(
                "R204", f"parameter '{p}' of fn '{name}' shadows the built-in '{p}'", fn.span
            )
    if len(set(fn.params)) != len(fn.params):
        sink.error("R203", f"fn '{name}' has a repeated parameter name", fn.span)
    body = fn.body.value
    for node in sympy.preorder_traversal(body):
        callee = call_name(node)
        if callee in defs and env.fns[callee] not in env.fn_table:
            _resolve_fn(env, defs, callee, [*chain, name], sink)
        elif (
            callee is not None
            and callee not in env.fns
            and callee not in OPERATORS
            and callee not in env.networks
        ):
            sink.error(
                "R202",
                f"unknown function '{callee}' in fn '{name}'",
                ref_span(fn.body, callee),
                did_you_mean(callee, [*env.fns, *ELEMENTARY, *OPERATORS]),
            )
    consts = {sympy.Symbol(k): v for k, v in env.consts.items() if k not in fn.params}
    body = body.xreplace(consts)
    for s in sorted(body.free_symbols, key=str):
        if s.name not in fn.params:
            sink.error(
                "R201",
                f"unknown name '{s}' in fn '{name}'",
                ref_span(fn.body, s.name),
                did_you_mean(s.name, [*fn.params, *env.consts])
                or f"a fn body may use its parameters {list(fn.params)} and consts",
            )
    if key not in env.fn_table:
        env.fn_table[key] = FnInfo(key, name, fn.params, _rename_calls(env, body, set()), fn.span)


def inline_fn(env: ModuleEnv, key: str, args: list[sympy.Basic], span: Span | None) -> sympy.Basic:
    """The body of fn ``key`` with its parameters replaced by ``args`` (raw expressions)."""
    return inline(env.fn_table[key], args, span)


def inline(fn: FnInfo, args: list[sympy.Basic], span: Span | None) -> sympy.Basic:
    """The body of ``fn`` with its parameters replaced by ``args`` (raw expressions)."""
    if len(args) != len(fn.params):
        raise DslTypeError(
            f"fn '{fn.name}' takes {len(fn.params)} argument(s), got {len(args)}",
            span,
            f"it is defined at {fn.span} as {fn.name}({', '.join(fn.params)})",
            "R301",
        )
    return fn.body.xreplace({sympy.Symbol(p): a for p, a in zip(fn.params, args, strict=True)})
