"""Checks shared by every block kind: option values, solve lines and declared names."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from .. import ast as A
from ..diagnostics import Diagnostic, DiagnosticSink, did_you_mean
from ..resolve import KEYWORDS, RESERVED, ModuleEnv, fn_info, fold_number, uses_later
from ..source import Span


@dataclass(frozen=True)
class OptionRule:
    """How to validate one option: a converter returning the value or None, and a description."""

    convert: Callable[[Any], Any]
    describe: str


def _pos_int(v: Any) -> Any:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _nonneg_int(v: Any) -> Any:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _pos_number(v: Any) -> Any:
    number = isinstance(v, int | float) and not isinstance(v, bool)
    return v if number and 0 < v < math.inf else None


def _one_of(*words: Any) -> Callable[[Any], Any]:
    return lambda v: v if v in words else None


def _call_or_name(v: Any) -> Any:
    return v if isinstance(v, A.Call | str) else None


# The most times `repeat N { ... }` may repeat its statements: every repetition is unrolled into
# layers of its own, so a count in the millions would only be a check that never ends.
MAX_REPEAT = 1000


def repeat_limit(count: Any, span: Span | None) -> Diagnostic | None:
    """R326 for a repeat count above MAX_REPEAT (a number; anything else is checked where the
    count is known)."""
    if isinstance(count, int | sympy.Integer) and count > MAX_REPEAT:
        shown = count if len(str(count)) <= 20 else f"{float(count):.3g}"
        return Diagnostic(
            "R326",
            f"repeat count {shown}: at most {MAX_REPEAT} repetitions are supported",
            span,
            "each repetition makes its own layers; use a smaller count",
        )
    return None


# The most grid cells a solve may have in all: an array of them is 16 GiB in float64, and a
# larger number (cells = 10^20) would fail in allocation or overflow an index.
MAX_CELLS = 2**31 - 1


def _cells(v: Any) -> Any:
    sizes = v if isinstance(v, list) else [v]
    if not (sizes and all(_pos_int(x) for x in sizes)):
        return None
    return v if math.prod(sizes) <= MAX_CELLS else None


def _pos_or_auto(v: Any) -> Any:
    return v if v == "auto" else _pos_number(v)


DTYPE = OptionRule(_one_of("float32", "float64"), "float32 or float64")
POS_INT = OptionRule(_pos_int, "a positive integer")
POS_NUMBER = OptionRule(_pos_number, "a positive finite number")

METHOD_OPTIONS: dict[str, dict[str, OptionRule]] = {
    "fd": {
        "cells": OptionRule(
            _cells,
            f"an integer >= 2 or a list with one per axis (at most {MAX_CELLS} cells)",
        ),
        "order": OptionRule(_one_of(2, 4), "2 or 4"),
        "scheme": OptionRule(
            _one_of("euler", "rk2", "rk4", "ssprk3", "cn", "imex"),
            "one of euler, rk2, rk4, ssprk3, cn, imex",
        ),
        "dt": OptionRule(_pos_or_auto, "a positive number or auto"),
        "every": POS_NUMBER,
        "tol": POS_NUMBER,
        "maxiter": POS_INT,
        "dtype": DTYPE,
    },
    "pinn": {
        "net": OptionRule(_call_or_name, "a network, e.g. nn.mlp(width = 32)"),
        "points": POS_INT,
        "boundary_points": POS_INT,
        "initial_points": POS_INT,
        "steps": POS_INT,
        "optimizer": OptionRule(_call_or_name, "an optimizer, e.g. adam(lr = 1e-3)"),
        "seed": OptionRule(_nonneg_int, "a non-negative integer"),
        "dtype": DTYPE,
    },
}
# the grid a pinn solution is sampled on
METHOD_OPTIONS["pinn"].update(cells=METHOD_OPTIONS["fd"]["cells"], every=POS_NUMBER)

_BILEVEL_COMMON = {
    "tol": POS_NUMBER,
    "steps": POS_INT,
    "lr": POS_NUMBER,
    "inner_steps": POS_INT,
    "outer": OptionRule(_one_of("gd", "adam", "lbfgs"), "one of gd, adam, lbfgs"),
    "seed": OptionRule(_nonneg_int, "a non-negative integer"),
    "dtype": DTYPE,
}
BILEVEL_METHODS: dict[str, dict[str, OptionRule]] = {
    "implicit": dict(_BILEVEL_COMMON),
    "unroll": {
        **_BILEVEL_COMMON,
        "k": POS_INT,
        "inner_lr": OptionRule(_pos_or_auto, "a positive number or auto"),
    },
    "penalty": {**_BILEVEL_COMMON, "rho": OptionRule(_pos_or_auto, "a positive number or auto")},
    "adjoint": dict(_BILEVEL_COMMON),
}


def most_rho(dtype: str) -> float:
    """The largest ``penalty(rho = ...)`` that ``dtype`` resolves: eps^(-1/2) (6.7e7 in float64,
    2.9e3 in float32). The hypergradient's difference of g_y at the two minimisers multiplies
    their rounding by rho, so beyond it the rounding outgrows the answer."""
    return float(np.finfo(dtype).eps) ** -0.5


def rho_beyond(rho: float, dtype: str) -> tuple[str, str] | None:
    """The message and hint of R538 for a penalty ``rho`` beyond ``most_rho(dtype)``, else None:
    ``ritz check`` reports it on a solve line, and a run for a rho given from Python or --set."""
    most = most_rho(dtype)
    if rho <= most:
        return None
    return (
        f"rho = {rho:.3g} is beyond what {dtype} can resolve ({most:.2g}): the difference of "
        "g_y at the two minimisers multiplies their rounding by rho",
        f"use rho <= {most:.2g} (its error falls as 1/rho^2: 1e4 is about 1e-8)",
    )


# what unroll keeps of each entry of the flat vector of variables per step: the iterate
# (float64) and whether the step left it inside its bounds (a bool)
UNROLL_BYTES_PER_ENTRY = 9


def unroll_beyond(k: int, size: int, failed: bool = False) -> tuple[str, str] | None:
    """The message and hint of R538 where ``unroll(k = ...)``, whose reverse pass replays every
    step, would keep its ``k`` iterates of ``size`` entries in more than half of this machine's
    memory, else None: ``ritz check`` reports it where k and the variables' sizes are numbers
    in the file, and a run before its first step. ``failed``: the run's allocation of them
    failed all the same (a process limit below the machine's memory)."""
    from ...runtime.inputs import memory_bytes  # the machine's memory, as every check reads it

    need = k * size * UNROLL_BYTES_PER_ENTRY
    if need <= memory_bytes() // 2 and not failed:
        return None
    return (
        f"unroll(k = {k}) keeps {k} iterates of {size} value{'s' if size != 1 else ''} for its "
        f"reverse pass ({need / 2**30:.3g} GiB), "
        + ("and they cannot be allocated" if failed else "more than half of this machine's memory"),
        "use a smaller k, or 'solve implicit(...)', which keeps no steps",
    )


TRAIN_SETTINGS: dict[str, OptionRule] = {
    "optimizer": OptionRule(_call_or_name, "an optimizer: adam(...), sgd(...) or lbfgs(...)"),
    "steps": POS_INT,
    "batch": POS_INT,
    "seed": OptionRule(_nonneg_int, "a non-negative integer"),
    "dtype": DTYPE,
}
OPTIMIZERS = ("adam", "sgd", "lbfgs")


def option_value(value: A.OptValue, env: ModuleEnv, sink: DiagnosticSink) -> Any:
    """A plain Python value of an option: int, float, str (identifier), list or Call. A call of
    a fn (``cells = f(8)``) is a number like any constant expression."""
    if isinstance(value, A.Call) and not value.kwargs and fn_info(env, value.name) is not None:
        value = _as_expression(value)
    if isinstance(value, A.Call):
        return value
    v = value.value
    if isinstance(v, sympy.Tuple):
        items = [A.Expression(x, value.span, value.refs) for x in v]
        return [option_value(x, env, sink) for x in items]
    if isinstance(v, sympy.Symbol) and v.name not in env.consts:
        return v.name
    folded = fold_number(value, env.consts, sink, "an option value", env)
    if folded is None:
        return None
    return int(folded) if folded.is_Integer else float(folded)


def _as_expression(call: A.Call) -> A.Expression:
    """The expression a call in option position spells (its arguments too)."""
    args = [a if isinstance(a, A.Expression) else _as_expression(a) for a in call.args]
    refs = (A.NameRef(call.name, call.span), *(r for a in args for r in a.refs))
    return A.Expression(sympy.Function(call.name)(*(a.value for a in args)), call.span, refs)


def check_given(rules: dict[str, OptionRule], name: str, value: Any, what: str) -> Any:
    """An option given from Python or ``--set``, checked by the rule that the same option gets
    on a solve or settings line; R538 where it fails. NumPy scalars count as numbers. Names
    without a rule are left to the caller."""
    from ..diagnostics import RuntimeInputError

    scalar = isinstance(value, np.generic | np.ndarray) and not np.ndim(value)
    plain = value.item() if scalar else value
    if isinstance(plain, tuple | np.ndarray):
        plain = [x.item() if isinstance(x, np.generic) else x for x in plain]
    rule = rules.get(name)
    if rule is None:
        return value
    if rule.convert(plain) is None:
        raise RuntimeInputError(
            f"option '{name}' of {what} must be {rule.describe}, got {value!r}", code="R538"
        )
    return plain


def param_value(name: str, value: Any, what: str) -> float:
    """A parameter value given from Python or ``--set``: a finite real number (a NumPy scalar
    or 0-d array counts), else R538. Strings are refused: ``--set`` has already parsed its
    numbers, and a name or an expression is no parameter value."""
    from ..diagnostics import RuntimeInputError

    plain = (
        value.item() if isinstance(value, np.generic | np.ndarray) and not np.ndim(value) else value
    )
    if isinstance(plain, bool) or not isinstance(plain, int | float):
        raise RuntimeInputError(
            f"parameter '{name}' of {what} must be a number, got {value!r}",
            hint="give a real number, e.g. 0.5",
            code="R538",
        )
    try:
        number = float(plain)  # a whole number beyond 2**64 too (NumPy has no type for it)
    except OverflowError:
        raise RuntimeInputError(
            f"parameter '{name}' of {what} is a whole number of about "
            f"10^{int(abs(int(plain)).bit_length() * math.log10(2))}, too large for a double",
            hint="parameters are doubles: give a value below about 1.8e308",
            code="R538",
        ) from None
    if not math.isfinite(number):
        raise RuntimeInputError(
            f"parameter '{name}' of {what} must be finite, got {plain!r}", code="R538"
        )
    return number


def check_options(
    keywords: tuple[A.Keyword, ...],
    rules: dict[str, OptionRule],
    env: ModuleEnv,
    sink: DiagnosticSink,
    what: str,
    statements: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, Span | None]]:
    """Validate ``name = value`` options against ``rules``; returns values and their spans.
    ``statements``: words that start the block's other statements (a misspelt ``loss`` reads
    as a setting), offered as did-you-means too."""
    values: dict[str, Any] = {}
    spans: dict[str, Span | None] = {}
    for kw in keywords:
        if kw.name in spans:
            sink.error(
                "R203",
                f"'{kw.name}' is given twice in {what}",
                kw.span,
                f"the first is at {spans[kw.name]}; keep one",
            )
            continue
        if kw.name not in rules:
            sink.error(
                "R206",
                f"unknown option '{kw.name}' for {what}",
                kw.span,
                did_you_mean(kw.name, [*rules, *statements]) or f"options are: {', '.join(rules)}",
            )
            continue
        value = option_value(kw.value, env, sink)
        if value is None:
            continue
        rule = rules[kw.name]
        if rule.convert(value) is None:
            shown = value.name + "(...)" if isinstance(value, A.Call) else value
            sink.error(
                "R316", f"option '{kw.name}' must be {rule.describe}, got {shown}", kw.value.span
            )
            continue
        values[kw.name] = value
        spans[kw.name] = kw.span
    return values, spans


def check_solves(
    solves: tuple[A.Solve, ...],
    methods: dict[str, dict[str, OptionRule]],
    env: ModuleEnv,
    sink: DiagnosticSink,
    block: str,
) -> list[A.SolveSpec]:
    """Check the ``solve`` lines of a block: known methods, no repeats, valid options."""
    out: list[A.SolveSpec] = []
    seen: dict[str, Span | None] = {}
    for s in solves:
        if s.method not in methods:
            sink.error(
                "R207",
                f"unknown solve method '{s.method}' for {block}",
                s.span,
                did_you_mean(s.method, methods) or f"methods are: {', '.join(methods)}",
            )
            continue
        if s.method in seen:
            sink.error(
                "R203",
                f"a second 'solve {s.method}' line",
                s.span,
                f"the first is at {seen[s.method]}; each method may appear once",
            )
            continue
        seen[s.method] = s.span
        values, spans = check_options(
            s.options, methods[s.method], env, sink, f"method '{s.method}'"
        )
        out.append(A.SolveSpec(s.method, values, s.span, spans))
    return out


class Names:
    """Declared names of one block: reports duplicates and shadowing of built-ins."""

    def __init__(self, sink: DiagnosticSink, env: ModuleEnv) -> None:
        self.sink = sink
        self.env = env
        self.spans: dict[str, Span | None] = {}
        self.kinds: dict[str, str] = {}

    def declare(self, name: str, span: Span | None, kind: str) -> bool:
        """Record a declaration; False for a second one of the same name (R203). A name that
        shadows a built-in or a top-level name is reported (R204) but kept, so that its uses
        (``dt(u)`` for a field u, a time axis t) raise no false follow-on errors."""
        if name in self.spans:
            self.sink.error(
                "R203",
                f"'{name}' is declared twice (as {self.kinds[name]} and as {kind})",
                span,
                f"the first declaration is at {self.spans[name]}",
            )
            return False
        if not shadows_builtin(self.sink, name, span, kind):
            shadows_top_level(self.sink, self.env, name, span, kind)
        self.spans[name] = span
        self.kinds[name] = kind
        return True


def shadows_builtin(sink: DiagnosticSink, name: str, span: Span | None, kind: str) -> bool:
    """R204 where ``name`` is a built-in (a constant, function, operator or keyword)."""
    if name in RESERVED or name in KEYWORDS:
        what = "built-in" if name in RESERVED else "keyword"
        sink.error(
            "R204",
            f"{kind} '{name}' shadows the {what} '{name}'",
            name_span(span, name),
            "choose another name",
        )
        return True
    return False


def name_span(span: Span | None, name: str) -> Span | None:
    """The span of ``name`` where a declaration's span starts with it (``param nu = 1``
    declares at 'nu = 1'): the caret goes under the name alone."""
    if span is None or span.line != span.end_line:
        return span
    text = span.text()
    after = text[len(name) : len(name) + 1]
    if not text.startswith(name) or after.isalnum() or after in ("_", "."):
        return span
    return Span(span.file, span.line, span.col, span.line, span.col + len(name), span.source)


def shadows_top_level(
    sink: DiagnosticSink, env: ModuleEnv, name: str, span: Span | None, kind: str
) -> bool:
    """R204 where ``name`` is a top-level const or fn of the file."""
    if name in env.consts or name in env.fns:
        sink.error(
            "R204",
            f"{kind} '{name}' shadows the top-level '{name}'",
            name_span(span, name),
            "rename one of them",
        )
        return True
    return False


def uses_later_param(
    param: A.ParamDecl, params: list[A.ParamDecl], index: int, sink: DiagnosticSink
) -> bool:
    """R317 for a param whose value uses itself or a param declared after it (its defaults are
    evaluated in order, as consts are)."""
    later = {p.name: p.span for p in params[index:]}
    uses = {s.name for s in param.value.value.free_symbols}
    return uses_later("param", param.name, param.span, param.value, uses, later, sink)
