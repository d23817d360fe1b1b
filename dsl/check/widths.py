"""Layer widths and repeat counts fixed in the file.

``dense(h, 0)`` or ``nn.mlp(width = 0)`` makes a layer without units, which no initialisation
can fill (Glorot divides by the fan), and a negative ``depth`` repeats nothing sensible. Where
such a number is written in the file, directly or as a network option that ends in a dense
width or a repeat count, it is refused at check time (R343) at the user's line, not when the
network is built from the standard library's source.
"""

from __future__ import annotations

from collections.abc import Iterator

import sympy
from sympy.core.function import AppliedUndef

from .. import ast as A
from ..diagnostics import DiagnosticSink, did_you_mean
from ..numeric import shown
from ..resolve import ModuleEnv, ref_span
from ..source import Span

WIDTH, COUNT = "width", "count"
# what each kind of number is, and what it must be
_MEANING = {
    WIDTH: ("a layer width", "a positive whole number"),
    COUNT: ("a repeat count", "a non-negative whole number"),
}


def _acceptable(value: sympy.Basic, kind: str) -> bool:
    """Whether a number is a valid ``kind`` (WIDTH or COUNT)."""
    if not (value.is_real and value.is_number and value == int(value)):
        return False
    return int(value) > 0 if kind == WIDTH else int(value) >= 0


def _number(value: sympy.Basic, env: ModuleEnv) -> sympy.Basic | None:
    """``value`` with consts substituted, if that makes it a number; else None."""
    out = value.xreplace({sympy.Symbol(k): v for k, v in env.consts.items()})
    return out if out.is_number and not out.atoms(AppliedUndef) else None


def _calls(body: tuple[A.Stmt, ...]) -> Iterator[tuple[A.Expression, sympy.Basic]]:
    """Every call in the statements of a body (repeat bodies too), with its expression."""
    for stmt in body:
        if isinstance(stmt, A.Repeat):
            yield from _calls(stmt.body)
            continue
        for call in sorted(stmt.value.value.atoms(AppliedUndef), key=str):
            yield stmt.value, call


def _repeats(body: tuple[A.Stmt, ...]) -> Iterator[A.Repeat]:
    for stmt in body:
        if isinstance(stmt, A.Repeat):
            yield stmt
            yield from _repeats(stmt.body)


def option_kinds(
    net: A.Network, env: ModuleEnv, visiting: frozenset[int] = frozenset()
) -> dict[str, str]:
    """The options of ``net`` that end up as a dense width (WIDTH) or a repeat count (COUNT),
    directly or passed on to a sub-network (``mlp(u, width = width)``)."""
    options = {kw.name for kw in net.options}
    kinds: dict[str, str] = {}
    if id(net) in visiting:  # a recursive network: reported as R205
        return kinds
    for rep in _repeats(net.body):
        if isinstance(rep.count.value, sympy.Symbol) and rep.count.value.name in options:
            kinds.setdefault(rep.count.value.name, COUNT)
    for _, call in _calls(net.body):
        name, args, kwargs = A.call_parts(call)
        if name == "dense" and len(args) == 2 and isinstance(args[1], sympy.Symbol):
            if args[1].name in options:
                kinds[args[1].name] = WIDTH
        elif name in env.networks:
            callee = option_kinds(env.networks[name], env.network_envs[name], visiting | {id(net)})
            for key, value in kwargs.items():
                if isinstance(value, sympy.Symbol) and value.name in options and key in callee:
                    kinds.setdefault(value.name, callee[key])
    return kinds


def _refuse(
    sink: DiagnosticSink, subject: str, kind: str, value: sympy.Basic, span: Span | None
) -> None:
    noun, must = _MEANING[kind]
    sink.error("R343", f"{subject} ({noun}) must be {must}, got {shown(value)}", span)


def check_keywords(
    callee: str,
    given: dict[str, tuple[sympy.Basic, Span | None]],
    env: ModuleEnv,
    sink: DiagnosticSink,
) -> None:
    """R343 for a keyword of a network instantiation (``nn.mlp(width = 0)``) that is a width or a
    count of ``callee`` with a number in the file that is not one."""
    if callee not in env.networks:
        return
    kinds = option_kinds(env.networks[callee], env.network_envs[callee])
    for key, (value, span) in given.items():
        number = _number(value, env) if key in kinds else None
        if number is not None and not _acceptable(number, kinds[key]):
            _refuse(sink, f"option '{key}' of network '{callee}'", kinds[key], number, span)


def check_instance(call: A.Call, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """``net f = nn.mlp(width = 0)`` or a pinn line's ``net = nn.mlp(width = 0)``; every
    keyword the network has no option for (R301, all of them at once, with the check's other
    errors)."""
    if call.name in env.networks:
        known = [o.name for o in env.networks[call.name].options]
        for kw in call.kwargs:
            if kw.name not in known:
                sink.error(
                    "R301",
                    f"network '{call.name}' has no option '{kw.name}'",
                    kw.span,
                    did_you_mean(kw.name, known) or f"its options: {', '.join(known)}",
                )
    given = {
        kw.name: (kw.value.value, kw.value.span or kw.span)
        for kw in call.kwargs
        if isinstance(kw.value, A.Expression)
    }
    check_keywords(call.name, given, env, sink)


def check_network_widths(net: A.Network, env: ModuleEnv, sink: DiagnosticSink) -> None:
    """The widths of a network body: ``dense(h, 0)``, a sub-network called with ``width = 0``,
    and option defaults that are widths or counts (``network m(x: [2], w = 0)``)."""
    for expr, call in _calls(net.body):
        name, args, kwargs = A.call_parts(call)
        if name == "dense" and len(args) == 2:
            number = _number(args[1], env)
            if number is not None and not _acceptable(number, WIDTH):
                must = _MEANING[WIDTH][1]
                message = f"the width of dense() must be {must}, got {shown(number)}"
                sink.error("R343", message, ref_span(expr, "dense"))
        elif name in env.networks:
            span = ref_span(expr, name)
            check_keywords(name, {k: (v, span) for k, v in kwargs.items()}, env, sink)
    kinds = option_kinds(net, env)
    for kw in net.options:
        if kw.name in kinds and isinstance(kw.value, A.Expression):
            number = _number(kw.value.value, env)
            if number is not None and not _acceptable(number, kinds[kw.name]):
                subject = f"the default of option '{kw.name}'"
                _refuse(sink, subject, kinds[kw.name], number, kw.value.span or kw.span)
