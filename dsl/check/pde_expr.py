"""Canonical expressions of a pde block: names resolved, fns inlined, diff/lap/grad/div
expanded into SymPy derivatives of fields (the form dsl/ast.py documents for PdeProblem).

A base of PdeChecker: it reads the checker's declarations (axes, fields, params, env, sink).
"""

from __future__ import annotations

import difflib
import functools
import operator
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sympy
from sympy.core.function import AppliedUndef

from .. import ast as A
from ..build import ELEMENTARY
from ..diagnostics import DslNameError, DslTypeError, did_you_mean, names_hint
from ..flux import FluxDiff, expand_fluxes, flux_form
from ..numeric import RANGE_HINT, NumberRangeError, check_power, check_result, shown
from ..numeric import apply as numeric_apply
from ..resolve import ModuleEnv, inline_fn, ref_span
from ..source import SourceFile, Span
from .space_diff import space_diff

_MAX_INLINE_DEPTH = 64
# The highest derivative along one axis. Stencils widen with the order (radius
# (n + 1) // 2 + order // 2 - 1) and SymPy's product rule expands a derivative of a product into
# n + 1 terms per factor, so orders far beyond any equation of physics only cost compile time.
MAX_DIFF_ORDER = 8
_PDE_CALLS = ("diff", "lap", "grad", "div", "dt")


def _apply(func: Any, args: list[Any]) -> Any:
    """``func(*args)`` where args may be vectors (from grad); a const substituted into a power
    is guarded like a number written there (numeric.py)."""
    if func is sympy.Add:
        return check_result(functools.reduce(operator.add, args))
    if func is sympy.Mul:
        return check_result(functools.reduce(operator.mul, args))
    if func is sympy.Pow:
        check_power(args[0], args[1])
        return check_result(args[0] ** args[1])
    return numeric_apply(func, args)


def call_arg_span(src: A.Expression, call: str, index: int, arg: sympy.Basic) -> Span | None:
    """The span of argument ``index`` of a call of ``call`` in ``src`` whose text reads as the
    raw ``arg``. Expressions keep the positions of names only, so a number or an expression
    argument (``diff(u, x, 2.5)``) is found in the source text after the call's name; None
    where no call there has such an argument (the caret then stays under the call)."""
    for ref in src.refs:
        if ref.name == call and ref.span is not None and ref.span.source is not None:
            args = _arg_spans(ref.span.source, ref.span.end_line, ref.span.end_col)
            if index < len(args) and _reads_as(_span_text(args[index]), arg):
                return args[index]
    return None


def _chars(source: SourceFile, line: int, col: int) -> Iterator[tuple[int, int, str]]:
    """(line, column, character) from a position on, comments left out; each line ends in a
    newline, as the lexer counts lines."""
    lines = source.text.split("\n")
    for number in range(line, len(lines) + 1):
        text = lines[number - 1].partition("#")[0]
        for i in range(col - 1 if number == line else 0, len(text)):
            yield number, i + 1, text[i]
        yield number, len(text) + 1, "\n"


def _arg_spans(source: SourceFile, line: int, col: int) -> list[Span]:
    """The spans of the arguments of a call whose name ends at (line, col), written text
    only (no surrounding blanks); empty where no '(' follows the name."""
    chars = _chars(source, line, col)
    if next((ch for _, _, ch in chars if not ch.isspace()), None) != "(":
        return []
    spans: list[Span] = []
    first: tuple[int, int] | None = None
    last = (line, col)
    depth = 0
    for ln, cl, ch in chars:
        if depth == 0 and ch in ",)":
            if first is not None:
                spans.append(Span(source.name, *first, last[0], last[1] + 1, source))
            if ch == ")":
                break
            first = None
            continue
        depth += (ch in "([") - (ch in ")]")
        if not ch.isspace():
            first, last = first or (ln, cl), (ln, cl)
    return spans


def _span_text(span: Span) -> str:
    """The text of a span across lines, without blanks or comments."""
    assert span.source is not None, "argument spans carry their source"
    lines = span.source.text.split("\n")[span.line - 1 : span.end_line]
    lines[-1] = lines[-1][: span.end_col - 1]
    lines[0] = lines[0][span.col - 1 :]
    return "".join("".join(ln.partition("#")[0].split()) for ln in lines)


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _reads_as(text: str, arg: sympy.Basic) -> bool:
    """Whether argument text (blanks removed) is how ``arg`` was written: a number literal of
    its value, a name, or an expression that prints as written (in brackets or not)."""
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1]
    if isinstance(arg, sympy.Number) and _NUMBER.fullmatch(text):
        return float(text) == float(arg)
    if isinstance(arg, sympy.Symbol):
        return text == arg.name
    return text == "".join(str(arg).split())


def _balanced(text: str) -> bool:
    """Whether no bracket of ``text`` closes before it opens (``(a) + (b)`` minus its outer
    characters is not)."""
    depth = 0
    for ch in text:
        depth += (ch in "([") - (ch in ")]")
        if depth < 0:
            return False
    return depth == 0


class PdeExpressions:
    """Turns the expressions of a pde block into canonical SymPy (see the module docstring)."""

    # The declarations this base reads; PdeChecker sets and defines them.
    env: ModuleEnv
    axes: list[A.AxisSpec]
    time: A.TimeSpec | None
    fields: dict[str, A.FieldDecl]
    params: dict[str, A.ParamSpec]
    rejected: set[str]
    depth: int

    if TYPE_CHECKING:

        @property
        def axis_names(self) -> list[str]: ...

        def field_fn(self, name: str) -> sympy.Expr: ...

        def known_names(self) -> list[str]: ...

        def second_order_fields(self) -> set[str]: ...

    def canon(self, e: sympy.Basic, src: A.Expression) -> Any:
        """The canonical form of a raw expression (fields applied, derivatives taken)."""
        if isinstance(e, sympy.Symbol):
            return self.symbol(e.name, src)
        if isinstance(e, AppliedUndef):
            return self.call(e, src)
        if not e.args:
            return e
        if isinstance(e, sympy.Tuple):
            raise DslTypeError(
                "keyword arguments are only allowed in calls of networks", src.span, None, "R301"
            )
        args = [self.canon(a, src) for a in e.args]
        try:
            return _apply(e.func, args)
        except NumberRangeError as exc:
            raise DslTypeError(str(exc), src.span, RANGE_HINT, "R317") from None
        except (TypeError, ValueError, AttributeError, sympy.ShapeError):
            raise DslTypeError(
                "a vector (from grad) cannot be used here",
                src.span,
                "take its divergence with div(...) to get a scalar",
                "R321",
            ) from None

    def symbol(self, name: str, src: A.Expression) -> Any:
        if name in self.fields:
            return self.field_fn(name)
        if name in self.axis_names or (self.time and name == self.time.name):
            return sympy.Symbol(name)
        if name in self.params or name in self.rejected:
            return sympy.Symbol(name)
        if name in self.env.consts:
            return self.env.consts[name]
        raise DslNameError(
            f"unknown name '{name}'", ref_span(src, name), self.unknown_name_hint(name), "R201"
        )

    def unknown_name_hint(self, name: str) -> str | None:
        """Did-you-mean for a name close to a declared one; but a name close only to a short
        field or axis (``nu`` to ``u``) is as likely a param not declared yet: say how too."""
        if "." in name:  # a module's name: no param can be declared so
            return did_you_mean(name, self.known_names())
        close = difflib.get_close_matches(name, self.known_names(), n=1, cutoff=0.6)
        declare = f"declare it, e.g. 'param {name} = 1'"
        if not close:
            return f"{declare}, or define it as a const at top level"
        short = {*self.fields, *self.axis_names, *([self.time.name] if self.time else [])}
        if close[0] in short and len(close[0]) <= 2:
            return f"{declare}, or did you mean '{close[0]}'?"
        return f"did you mean '{close[0]}'?"

    def call(self, e: sympy.Basic, src: A.Expression) -> Any:
        name, args, kwargs = A.call_parts(e)
        span = ref_span(src, name)
        key = self.env.fns.get(name, name)
        if key in self.env.fn_table:
            if kwargs:
                raise DslTypeError(f"fn '{name}' takes no keyword arguments", span, None, "R301")
            self.depth += 1
            try:
                if self.depth > _MAX_INLINE_DEPTH:
                    shown = self.env.fn_table[key].name
                    raise DslTypeError(f"fn '{shown}' is nested too deeply", span, None, "R205")
                return self.canon(inline_fn(self.env, key, list(args), span), src)
            finally:
                self.depth -= 1
        if name in _PDE_CALLS:
            if kwargs:
                raise DslTypeError(f"{name}() takes no keyword arguments", span, None, "R301")
            return getattr(self, f"op_{name}")(list(args), src, span)
        if name in self.fields:
            raise DslTypeError(
                f"field '{name}' is not a function",
                span,
                f"write '{name}' alone: fields depend on the axes implicitly",
                "R202",
            )
        if name == "matmul":
            vectors = [self.canon(a, src) for a in args]
            if all(isinstance(v, sympy.MatrixBase) for v in vectors):
                # the dot product of two vectors from grad: grad(u) @ grad(u) is |grad u|^2
                return sympy.Add(*(a * b for a, b in zip(*vectors, strict=True)))
            raise DslTypeError(
                "'@' multiplies vectors and matrices (in networks, losses and objectives); in a "
                "pde expression it is only the dot product of two vectors from grad",
                span,
                "use '*' for the product of two scalars",
                "R320",
            )
        if name == "index":
            raise DslTypeError(
                "a pde expression cannot index: fields and coordinates have one value at each "
                "point",
                span,
                "write the field alone (u), or a derivative (diff(u, x))",
                "R352",
            )
        candidates = [*_PDE_CALLS, *self.env.fns, *ELEMENTARY]
        raise DslNameError(
            f"unknown function '{name}'",
            span,
            did_you_mean(name, candidates)
            or "pde expressions may call diff, lap, grad, div, elementary functions and fns",
            "R202",
        )

    def axis_arg(self, a: sympy.Basic, src: A.Expression, span: Span | None) -> sympy.Symbol:
        if isinstance(a, sympy.Symbol) and a.name in self.axis_names:
            return a
        if isinstance(a, sympy.Symbol) and self.time and a.name == self.time.name:
            raise DslTypeError(
                f"derivative with respect to time '{a.name}' inside an expression",
                ref_span(src, a.name),
                "time derivatives are written dt(u) on the left-hand side of an equation",
                "R304",
            )
        at = call_arg_span(src, "diff", 1, a)
        if at is None and isinstance(a, sympy.Symbol):
            at = ref_span(src, a.name)
        raise DslTypeError(
            f"cannot differentiate with respect to '{a}': not a space axis",
            at or span,
            names_hint("space axis", self.axis_names, "axes"),
            "R303",
        )

    def op_diff(self, args: list[Any], src: A.Expression, span: Span | None) -> Any:
        if len(args) not in (2, 3):
            raise DslTypeError(
                f"diff() takes 2 or 3 arguments, got {len(args)}",
                span,
                "write diff(u, x) or diff(u, x, n)",
                "R301",
            )
        axis = self.axis_arg(args[1], src, span)
        order = sympy.Integer(1)
        if len(args) == 3:
            order = self.canon(args[2], src)
            if not (isinstance(order, sympy.Integer) and order > 0):
                raise DslTypeError(
                    f"the order of diff() must be a positive integer constant, got {shown(order)}",
                    call_arg_span(src, "diff", 2, args[2]) or span,
                    "e.g. diff(u, x, 2)",
                    "R302",
                )
        inner = self.scalar(self.canon(args[0], src), src)
        return self.derivative(inner, axis, int(order), span)

    def derivative(self, inner: Any, axis: sympy.Symbol, order: int, span: Span | None) -> Any:
        """``d^order inner / d axis^order``: kept whole where flux.py says so, else expanded by
        the chain rule (a flux form inside is expanded first: only the outermost is kept)."""
        inner = expand_fluxes(inner, span)
        self.check_order(inner, axis, order, span)
        if flux_form(inner, axis, order):
            return FluxDiff(inner, axis, sympy.Integer(order))
        return space_diff(inner, axis, order, span)

    def check_order(self, inner: Any, axis: sympy.Symbol, order: int, span: Span | None) -> None:
        """Refuse (R325) a derivative along ``axis`` whose order, with the derivatives already in
        ``inner`` (``diff(diff(u, x, 5), x, 5)``, ``lap(lap(u))``), exceeds MAX_DIFF_ORDER,
        before SymPy expands it."""
        have = [
            count
            for d in (inner.atoms(sympy.Derivative) if order <= MAX_DIFF_ORDER else ())
            for var, count in d.variable_count
            if var == axis
        ]
        total = order + max(have, default=0)
        if total > MAX_DIFF_ORDER:
            raise DslTypeError(
                f"a derivative of order {total} along '{axis}': at most {MAX_DIFF_ORDER} is "
                "supported",
                span,
                "write the problem as a system of lower-order equations",
                "R325",
            )

    def op_lap(self, args: list[Any], src: A.Expression, span: Span | None) -> Any:
        if len(args) != 1:
            raise DslTypeError(f"lap() takes 1 argument, got {len(args)}", span, None, "R301")
        inner = self.scalar(self.canon(args[0], src), src)
        return sympy.Add(
            *(self.derivative(inner, sympy.Symbol(a), 2, span) for a in self.axis_names)
        )

    def op_grad(self, args: list[Any], src: A.Expression, span: Span | None) -> Any:
        if len(args) != 1:
            raise DslTypeError(f"grad() takes 1 argument, got {len(args)}", span, None, "R301")
        inner = self.scalar(self.canon(args[0], src), src)
        return sympy.ImmutableMatrix(
            [self.derivative(inner, sympy.Symbol(a), 1, span) for a in self.axis_names]
        )

    def op_div(self, args: list[Any], src: A.Expression, span: Span | None) -> Any:
        if len(args) != 1:
            raise DslTypeError(f"div() takes 1 argument, got {len(args)}", span, None, "R301")
        vec = self.canon(args[0], src)
        if not isinstance(vec, sympy.MatrixBase) or len(vec) != len(self.axes):
            raise DslTypeError(
                "div() needs a vector with one component per axis",
                span,
                "e.g. div(k * grad(u))",
                "R321",
            )
        return sympy.Add(
            *(
                self.derivative(c, sympy.Symbol(a), 1, span)
                for c, a in zip(vec, self.axis_names, strict=True)
            )
        )

    def op_dt(self, args: list[Any], src: A.Expression, span: Span | None) -> Any:
        """``dt(u)`` of a field whose equation is second order in time is its velocity, a
        state of the reduced system; any other dt() stands only on a left-hand side."""
        f = args[0] if len(args) == 1 else None
        if isinstance(f, sympy.Symbol) and f.name in self.second_order_fields():
            return A.velocity(f.name)(*(sympy.Symbol(a) for a in self.axis_names))
        second = sorted(self.second_order_fields())
        raise DslTypeError(
            "dt() may only stand alone on the left-hand side of an equation or an initial "
            "line, or be the velocity dt(u) of a field u whose equation is dt(u, 2) = ...",
            span,
            (f"dt({second[0]}) is the velocity of {second[0]}; " if second else "")
            + "write a first-order system for others: dt(u) = v, dt(v) = ...",
            "R305",
        )

    def scalar(self, value: Any, src: A.Expression) -> Any:
        if isinstance(value, sympy.MatrixBase):
            raise DslTypeError(
                "a vector (from grad) is used where a scalar is expected",
                src.span,
                "take its divergence with div(...)",
                "R321",
            )
        return value
