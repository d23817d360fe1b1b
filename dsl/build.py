"""Parse tree -> AST: a Lark Transformer that builds SymPy expressions directly (never sympify).

Nothing from Lark (Tree, Token, Meta) leaves this module: every node gets a Span instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sympy
from lark import Token, v_args
from lark.visitors import Transformer_NonRecursive

from . import ast as A
from . import indicator
from .diagnostics import DslSyntaxError, DslTypeError
from .numeric import RANGE_HINT, NumberRangeError, check_result
from .numeric import apply as numeric_apply
from .numeric import integer_literal as _integer_literal
from .remainder import Remainder
from .source import SourceFile, Span

# name -> (SymPy function, allowed argument counts)
ELEMENTARY: dict[str, tuple[Any, tuple[int, ...]]] = {
    "sin": (sympy.sin, (1,)),
    "cos": (sympy.cos, (1,)),
    "tan": (sympy.tan, (1,)),
    "asin": (sympy.asin, (1,)),
    "acos": (sympy.acos, (1,)),
    "atan": (sympy.atan, (1,)),
    "atan2": (sympy.atan2, (2,)),
    "sinh": (sympy.sinh, (1,)),
    "cosh": (sympy.cosh, (1,)),
    "tanh": (sympy.tanh, (1,)),
    "exp": (sympy.exp, (1,)),
    "log": (sympy.log, (1,)),
    "sqrt": (sympy.sqrt, (1,)),
    "abs": (sympy.Abs, (1,)),
    "sign": (sympy.sign, (1,)),
    "floor": (sympy.floor, (1,)),
    "ceiling": (sympy.ceiling, (1,)),
    "min": (sympy.Min, (2, 3, 4, 5, 6, 7, 8)),
    "max": (sympy.Max, (2, 3, 4, 5, 6, 7, 8)),
    "erf": (sympy.erf, (1,)),
}

CONSTANTS: dict[str, sympy.Basic] = {"pi": sympy.pi, "e": sympy.E}

# How deeply an expression may nest (calls in calls, powers of powers, brackets around sums):
# SymPy and the compiler walk expressions recursively, and Python's stack ends near 1000 frames.
MAX_NESTING = 100

# calls in a network body that make no weights: identical ones may merge as SymPy merges them
_PURE_NET_CALLS = frozenset({"sum", "mean", "matmul", "index"})
# the attribute of a call's function class that names its call site in a network body
SITE_ATTR = "ritz_site"


def call_site(node: sympy.Basic) -> tuple[int, int, int, int] | None:
    """The call site of a call written in a network body: (end line, end column, line, column),
    so that sorting sites gives the order in which the calls finish in the source."""
    site = getattr(getattr(node, "func", None), SITE_ATTR, None)
    return site if isinstance(site, tuple) else None


@dataclass
class _CallInfo:
    name: str
    name_span: Span
    args: list[_Ex]
    kwargs: list[tuple[str, _Ex, Span]]


@dataclass
class _Ex:
    """An expression under construction: SymPy value, name positions, and call structure."""

    value: Any
    span: Span
    refs: tuple[A.NameRef, ...] = ()
    call: _CallInfo | None = None
    items: list[_Ex] | None = None  # a list value [a, b] in option position
    attr: tuple[str, Span] | None = None  # `.field` after a call (lower solutions only)
    depth: int = 0  # how deeply the SymPy value nests (see _nested)

    def expression(self) -> A.Expression:
        return A.Expression(self.value, self.span, self.refs)


@dataclass
class _KwArg:
    name: str
    value: _Ex
    span: Span


@dataclass
class _Stmts:
    """Several declarations from one line (field a, b / param p = 1, q = 2)."""

    items: list[Any] = field(default_factory=list)


def _refs(*parts: _Ex) -> tuple[A.NameRef, ...]:
    out: list[A.NameRef] = []
    for p in parts:
        out.extend(p.refs)
    return tuple(out)


def _sympy_op(fn: Any, span: Span, *args: Any) -> Any:
    """Apply a SymPy constructor, turning its TypeErrors into diagnostics at ``span``, and
    refusing numbers that are no finite double (R317) before or after they are computed."""
    try:
        return numeric_apply(fn, list(args))
    except NumberRangeError as exc:
        raise DslTypeError(str(exc), span, RANGE_HINT, "R317") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise DslTypeError(
            f"invalid operands for this operation ({exc})",
            span,
            "check the operand types (vectors and numbers do not mix)",
            "R320",
        ) from None


def _nested(value: Any, span: Span, *depths: int) -> int:
    """The nesting depth of a new node (0 for a number or a name), refused beyond MAX_NESTING
    (R324) before anything walks the expression recursively. ``depths`` bound it from the
    parts' depths; where SymPy merged the parts (``u * u`` is ``u^2``) the bound may be too
    high, so it is measured before refusing."""
    if getattr(value, "is_Atom", False):
        return 0
    depth = max(depths, default=0)
    if depth > MAX_NESTING:
        depth = _measure_depth(value)
    if depth > MAX_NESTING:
        raise DslTypeError(
            f"expression nested too deeply (more than {MAX_NESTING} levels)",
            span,
            "split it into fns or consts, or write a long chain as a flat sum or product",
            "R324",
        )
    return depth


def _measure_depth(value: Any) -> int:
    """The depth of a SymPy tree, walked without recursion and stopped past MAX_NESTING."""
    deepest, stack = 0, [(value, 0)]
    while stack and deepest <= MAX_NESTING:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((a, depth + 1) for a in getattr(node, "args", ()))
    return deepest


def _binary(name: str, op: Any, flat: Any = None, wrap: int = 0, call: bool = False) -> Any:
    """An arithmetic operator. ``flat``: the SymPy class that absorbs a left operand of the same
    class (``a + b + c`` is one Add), so long chains stay shallow; ``wrap``: levels SymPy adds
    around the right operand (``a - b`` is ``a + (-1)*b``); ``call``: the operator is written
    as a call (``a @ b`` is ``matmul(a, b)``), whose position is kept (``_op_refs``)."""

    def method(self: ASTBuilder, meta: Any, a: _Ex, b: _Ex) -> _Ex:
        span = self.span(meta)
        if op in (Remainder, _div) and getattr(b.value, "is_zero", None):
            raise DslTypeError(
                "division by zero" if op is _div else "the remainder of a division by zero",
                span,
                "the right operand is 0",
                "R317",
            )
        value = _sympy_op(op, span, a.value, b.value)
        merged = flat is not None and isinstance(a.value, flat) and isinstance(value, flat)
        depth = _nested(value, span, a.depth if merged else a.depth + 1, b.depth + 1 + wrap)
        refs = (*_refs(a, b), *(_op_refs(value, span) if call else ()))
        return _Ex(value, span, refs, depth=depth)

    method.__name__ = name
    return v_args(inline=True, meta=True)(method)


def _op_refs(value: Any, span: Span) -> tuple[A.NameRef, ...]:
    """Positions of an operator written as a call (``x[3]`` is ``index(x, 3)``, ``a @ b`` is
    ``matmul(a, b)``): under the call's name (``ref_span`` finds the first) and under the call
    itself, so that an error about one such node points at it."""
    if not getattr(value, "args", ()):
        return ()
    return (A.NameRef(value.func.__name__, span), A.NameRef(str(value), span))


def _div(a: Any, b: Any) -> Any:
    return a / b


def _logic(name: str, fn: Any) -> Any:
    """A comparison or ``and``/``or``/``not``: a 0/1 indicator (``indicator.py``)."""

    def method(self: ASTBuilder, meta: Any, *parts: _Ex) -> _Ex:
        span = self.span(meta)
        value = _sympy_op(fn, span, *(p.value for p in parts))
        depth = _nested(value, span, *(p.depth + 2 for p in parts))
        return _Ex(value, span, _refs(*parts), depth=depth)

    method.__name__ = name
    return v_args(inline=True, meta=True)(method)


@v_args(inline=True, meta=True)
class ASTBuilder(Transformer_NonRecursive):
    """Builds ``ast.Module`` from the Lark tree of one source file (without recursion, so a
    sum of thousands of terms, a left-nested tree as deep as it is long, builds)."""

    def __init__(self, source: SourceFile) -> None:
        super().__init__()
        self.source = source
        # (start, end) offsets of network bodies: calls there get their own function class
        self._net_bodies: list[tuple[int, int]] = []

    def transform(self, tree: Any) -> Any:
        self._net_bodies = [
            (t.meta.start_pos, t.meta.end_pos)
            for t in tree.iter_subtrees()
            if t.data == "net_body" and not getattr(t.meta, "empty", True)
        ]
        return super().transform(tree)

    def _in_net_body(self, meta: Any) -> bool:
        if getattr(meta, "empty", True):
            return False
        return any(lo <= meta.start_pos < hi for lo, hi in self._net_bodies)

    # ---- positions -----------------------------------------------------------------------

    def span(self, meta: Any) -> Span:
        if getattr(meta, "empty", False):
            return Span(self.source.name, 1, 1, 1, 1, self.source)
        return Span(
            self.source.name, meta.line, meta.column, meta.end_line, meta.end_column, self.source
        )

    def tspan(self, tok: Token) -> Span:
        assert tok.line is not None and tok.column is not None, "parsed tokens carry positions"
        end_line = tok.end_line if tok.end_line is not None else tok.line
        end_col = tok.end_column if tok.end_column is not None else tok.column + len(tok)
        return Span(self.source.name, tok.line, tok.column, end_line, end_col, self.source)

    def decl_name(self, tok: Token) -> str:
        name = str(tok)
        if "." in name:
            raise DslSyntaxError(
                f"a declared name cannot contain '.': '{name}'",
                self.tspan(tok),
                "dotted names such as 'nn.mlp' refer to imported modules; use a plain name",
                "R105",
            )
        return name

    # ---- expressions ---------------------------------------------------------------------

    def number(self, meta: Any, tok: Token) -> _Ex:
        text = str(tok)
        try:
            if text.isdigit():
                value = _integer_literal(text)
            else:
                number = float(text)
                mantissa = text.lower().partition("e")[0]
                if number == 0 and mantissa.strip("0.") != "":  # 1e-400: no double holds it
                    raise NumberRangeError(f"{text} is below the smallest double (it would be 0)")
                value = check_result(sympy.Float(number))
        except NumberRangeError as exc:
            raise DslTypeError(str(exc), self.tspan(tok), RANGE_HINT, "R317") from None
        return _Ex(value, self.tspan(tok))

    def name(self, meta: Any, tok: Token) -> _Ex:
        span = self.tspan(tok)
        name = str(tok)
        if name in CONSTANTS:
            return _Ex(CONSTANTS[name], span)
        return _Ex(sympy.Symbol(name), span, (A.NameRef(name, span),))

    def call_kwarg(self, meta: Any, tok: Token, value: _Ex) -> _KwArg:
        return _KwArg(str(tok), value, self.span(meta))

    def call_args(self, meta: Any, *args: Any) -> list[Any]:
        return list(args)

    def call(self, meta: Any, tok: Token, args: list[Any] | None) -> _Ex:
        span = self.span(meta)
        name, name_span = str(tok), self.tspan(tok)
        if name == "not":  # the lexer reads a misplaced operator as a name
            raise DslSyntaxError(
                "'not' binds more loosely than arithmetic and comparisons, so it cannot follow "
                "an operator",
                name_span,
                "put it in brackets: 1 + (not (x > 0.5))",
                "R327",
            )
        args = args or []
        positional = [a for a in args if isinstance(a, _Ex)]
        kwargs = [a for a in args if isinstance(a, _KwArg)]
        seen: set[str] = set()
        for kw in kwargs:
            if kw.name in seen:
                raise DslSyntaxError(
                    f"keyword argument '{kw.name}' given twice", kw.span, None, "R106"
                )
            seen.add(kw.name)
        refs = (A.NameRef(name, name_span), *_refs(*positional, *(k.value for k in kwargs)))
        info = _CallInfo(name, name_span, positional, [(k.name, k.value, k.span) for k in kwargs])
        if name in ELEMENTARY:
            fn, arities = ELEMENTARY[name]
            if kwargs:
                raise DslTypeError(
                    f"{name}() takes no keyword arguments", kwargs[0].span, None, "R301"
                )
            if len(positional) not in arities:
                want = " or ".join(str(n) for n in arities[:2]) + ("+" if len(arities) > 2 else "")
                raise DslTypeError(
                    f"{name}() takes {want} argument(s), got {len(positional)}",
                    span,
                    None,
                    "R301",
                )
            value = _sympy_op(fn, span, *(a.value for a in positional))
        else:
            call_args = [a.value for a in positional]
            call_args += [A.kwarg(k.name, k.value.value) for k in kwargs]
            if name not in _PURE_NET_CALLS and self._in_net_body(meta):
                # Each call in a network body may make its own weights (dense, bias, a
                # sub-network): a function class of its own keeps two identical calls apart
                # (SymPy would merge `dense(x, 4) * dense(x, 4)` into one squared layer).
                site = (span.end_line, span.end_col, span.line, span.col)
                fn = sympy.Function(name, **{SITE_ATTR: site})
            else:
                fn = sympy.Function(name)
            value = _sympy_op(fn, span, *call_args)
        parts = [a.depth + 1 for a in positional] + [k.value.depth + 2 for k in kwargs]
        return _Ex(value, span, refs, call=info, depth=_nested(value, span, *parts))

    def index(self, meta: Any, base: _Ex, *indices: _Ex) -> _Ex:
        span = self.span(meta)
        fn = sympy.Function("index")
        value = _sympy_op(fn, span, base.value, *(i.value for i in indices))
        depth = _nested(value, span, *(p.depth + 1 for p in (base, *indices)))
        return _Ex(value, span, (*_refs(base, *indices), *_op_refs(value, span)), depth=depth)

    add = _binary("add", lambda a, b: a + b, sympy.Add)
    sub = _binary("sub", lambda a, b: a - b, sympy.Add, 1)
    mul = _binary("mul", lambda a, b: a * b, sympy.Mul)
    div = _binary("div", _div, sympy.Mul, 1)
    mod = _binary("mod", Remainder)
    matmul = _binary("matmul", lambda a, b: sympy.Function("matmul")(a, b), call=True)
    pow = _binary("pow", sympy.Pow)
    lt = _logic("lt", partial(indicator.compare, "lt"))
    le = _logic("le", partial(indicator.compare, "le"))
    gt = _logic("gt", partial(indicator.compare, "gt"))
    ge = _logic("ge", partial(indicator.compare, "ge"))
    eq = _logic("eq", partial(indicator.compare, "eq"))
    ne = _logic("ne", partial(indicator.compare, "ne"))
    and_op = _logic("and_op", indicator.logical_and)
    or_op = _logic("or_op", indicator.logical_or)
    not_op = _logic("not_op", indicator.logical_not)

    def neg(self, meta: Any, a: _Ex) -> _Ex:
        span = self.span(meta)
        value = _sympy_op(lambda v: -v, span, a.value)
        merged = isinstance(a.value, sympy.Mul) and isinstance(value, sympy.Mul)
        return _Ex(value, span, a.refs, depth=_nested(value, span, a.depth + (not merged)))

    def pos(self, meta: Any, a: _Ex) -> _Ex:
        return _Ex(a.value, self.span(meta), a.refs, a.call, depth=a.depth)

    def list_value(self, meta: Any, *items: _Ex) -> _Ex:
        span = self.span(meta)
        value = sympy.Tuple(*(i.value for i in items))
        return _Ex(value, span, _refs(*items), items=list(items))

    # ---- option values -------------------------------------------------------------------

    def opt(self, ex: _Ex) -> A.OptValue:
        """An option value: a call such as ``adam(lr = 1e-3)`` becomes a Call, else Expression."""
        if ex.call is not None and ex.call.name not in ELEMENTARY:
            c = ex.call
            return A.Call(
                c.name,
                tuple(self.opt(a) for a in c.args),
                tuple(A.Keyword(n, self.opt(v), s) for n, v, s in c.kwargs),
                ex.span,
            )
        return ex.expression()

    def keyword(self, meta: Any, tok: Token, value: _Ex) -> A.Keyword:
        return A.Keyword(str(tok), self.opt(value), self.span(meta))

    def keywords(self, meta: Any, *kws: A.Keyword) -> tuple[A.Keyword, ...]:
        seen: set[str] = set()
        for kw in kws:
            if kw.name in seen:
                raise DslSyntaxError(f"option '{kw.name}' given twice", kw.span, None, "R106")
            seen.add(kw.name)
        return kws

    # ---- top level -----------------------------------------------------------------------

    def start(self, meta: Any, *items: Any) -> A.Module:
        return A.Module(self.source, tuple(items))

    def import_std(self, meta: Any, module: Token, alias: Token | None) -> A.Import:
        return A.Import(
            str(module), self.decl_name(alias) if alias else None, False, self.span(meta)
        )

    def import_path(self, meta: Any, path: Token, alias: Token) -> A.Import:
        return A.Import(str(path)[1:-1], self.decl_name(alias), True, self.span(meta))

    def const_def(self, meta: Any, name: Token, value: _Ex) -> A.ConstDef:
        return A.ConstDef(self.decl_name(name), value.expression(), self.span(meta))

    def name_list(self, meta: Any, *names: Token) -> tuple[str, ...]:
        return tuple(self.decl_name(n) for n in names)

    def fn_def(self, meta: Any, name: Token, params: Any, body: _Ex) -> A.FnDef:
        return A.FnDef(self.decl_name(name), params or (), body.expression(), self.span(meta))

    # ---- pde -----------------------------------------------------------------------------

    def interval(self, meta: Any, lo: _Ex, hi: _Ex) -> tuple[A.Expression, A.Expression]:
        return lo.expression(), hi.expression()

    def space(self, meta: Any, name: Token, interval: Any, periodic: Token | None) -> A.Space:
        lo, hi = interval
        return A.Space(self.decl_name(name), lo, hi, periodic is not None, self.span(meta))

    def time_decl(self, meta: Any, name: Token, interval: Any) -> A.TimeDecl:
        t0, t1 = interval
        return A.TimeDecl(self.decl_name(name), t0, t1, self.span(meta))

    def field_decl(self, meta: Any, *names: Token) -> _Stmts:
        return _Stmts([A.FieldDecl(self.decl_name(n), self.tspan(n)) for n in names])

    def param_item(self, meta: Any, name: Token, value: _Ex) -> A.ParamDecl:
        return A.ParamDecl(self.decl_name(name), value.expression(), self.span(meta))

    def param_decl(self, meta: Any, *items: A.ParamDecl) -> _Stmts:
        return _Stmts(list(items))

    def equation(self, meta: Any, lhs: _Ex, rhs: _Ex) -> A.Equation:
        return A.Equation(lhs.expression(), rhs.expression(), self.span(meta))

    def side(self, meta: Any, axis: Token, value: _Ex) -> A.Side:
        return A.Side(str(axis), value.expression(), self.span(meta))

    def boundary(self, meta: Any, lhs: _Ex, rhs: _Ex, *sides: Any) -> A.Boundary:
        at_all = len(sides) == 1 and isinstance(sides[0], Token)
        real = () if at_all else tuple(sides)
        return A.Boundary(lhs.expression(), rhs.expression(), real, at_all, self.span(meta))

    def initial(self, meta: Any, lhs: _Ex, rhs: _Ex) -> A.Initial:
        return A.Initial(lhs.expression(), rhs.expression(), self.span(meta))

    def solve(self, meta: Any, method: Token, options: Any) -> A.Solve:
        return A.Solve(str(method), tuple(options or ()), self.span(meta))

    def _block(self, kind: str, stmts: tuple[Any, ...]) -> dict[type, list[Any]]:
        by_type: dict[type, list[Any]] = {}
        for s in stmts:
            for item in s.items if isinstance(s, _Stmts) else [s]:
                by_type.setdefault(type(item), []).append(item)
        return by_type

    def pde(self, meta: Any, name: Token, *stmts: Any) -> A.Pde:
        b = self._block("pde", stmts)

        def get(t: type) -> tuple[Any, ...]:
            return tuple(b.get(t, ()))

        return A.Pde(
            self.decl_name(name),
            get(A.Space),
            get(A.TimeDecl),
            get(A.FieldDecl),
            get(A.ParamDecl),
            get(A.Equation),
            get(A.Boundary),
            get(A.Initial),
            get(A.Solve),
            self.span(meta),
        )

    # ---- network -------------------------------------------------------------------------

    def shape(self, meta: Any, *dims: Any) -> tuple[A.Expression, ...]:
        return tuple(d.expression() for d in dims if d is not None)

    def tensor_decl(self, meta: Any, name: Token, shape: Any) -> A.TensorDecl:
        return A.TensorDecl(self.decl_name(name), shape, self.span(meta))

    def assign(self, meta: Any, name: Token, value: _Ex) -> A.Assign:
        return A.Assign(self.decl_name(name), value.expression(), self.span(meta))

    def net_body(self, meta: Any, *stmts: Any) -> tuple[Any, ...]:
        return stmts

    def repeat(self, meta: Any, count: _Ex, body: tuple[Any, ...]) -> A.Repeat:
        return A.Repeat(count.expression(), body, self.span(meta))

    def return_(self, meta: Any, value: _Ex) -> A.Return:
        return A.Return(value.expression(), self.span(meta))

    def network(self, meta: Any, name: Token, *rest: Any) -> A.Network:
        *params, out_shape, body = rest
        inputs = tuple(p for p in params if isinstance(p, A.TensorDecl))
        options = tuple(p for p in params if isinstance(p, A.Keyword))
        return A.Network(self.decl_name(name), inputs, options, out_shape, body, self.span(meta))

    # ---- train ---------------------------------------------------------------------------

    def net_decl(self, meta: Any, name: Token, value: _Ex) -> A.NetDecl:
        return A.NetDecl(self.decl_name(name), self.opt(value), self.span(meta))

    def data_decl(self, meta: Any, *decls: A.TensorDecl) -> _Stmts:
        return _Stmts(list(decls))

    def loss(self, meta: Any, value: _Ex) -> A.Expression:
        return value.expression()

    def setting(self, meta: Any, name: Token, value: _Ex) -> A.Keyword:
        return A.Keyword(str(name), self.opt(value), self.span(meta))

    def settings(self, meta: Any, *items: A.Keyword) -> _Stmts:
        return _Stmts(list(items))

    def train(self, meta: Any, name: Token, *stmts: Any) -> A.Train:
        b = self._block("train", stmts)
        losses = b.get(A.Expression, [])
        if len(losses) > 1:
            raise DslSyntaxError(
                f"train block '{name}' has more than one loss line",
                losses[1].span,
                "sum the terms into one loss expression",
                "R107",
            )
        return A.Train(
            self.decl_name(name),
            tuple(b.get(A.NetDecl, ())),
            tuple(b.get(A.TensorDecl, ())),
            losses[0] if losses else None,
            tuple(b.get(A.Keyword, ())),
            self.span(meta),
        )

    # ---- bilevel -------------------------------------------------------------------------

    def var_decl(self, meta: Any, level: Token, name: Token, *rest: Any) -> A.VarDecl:
        shape, init, bounds = rest
        return A.VarDecl(
            str(level), self.decl_name(name), shape, init.expression(), bounds, self.span(meta)
        )

    def objective(self, meta: Any, level: Token, sense: Token, expr: _Ex, over: Any) -> Any:
        return A.Objective(
            str(level), str(sense), expr.expression(), str(over) if over else None, self.span(meta)
        )

    def lower_solution(self, meta: Any, name: Token, problem: _Ex, fld: Token, *at: Any) -> Any:
        span = self.span(meta)
        call = self.opt(problem)
        if not isinstance(call, A.Call):  # no call, or an elementary function such as sin(x)
            raise DslSyntaxError(
                "a lower solution must name a problem call, e.g. heat1d(nu = nu).u",
                problem.span,
                None,
                "R108",
            )
        sides = tuple(s for s in at if s is not None)
        kws = tuple(A.Keyword(s.axis, s.value, s.span) for s in sides)
        return A.LowerSolution(self.decl_name(name), call, str(fld), kws, span)

    def bilevel(self, meta: Any, name: Token, *stmts: Any) -> A.Bilevel:
        b = self._block("bilevel", stmts)
        return A.Bilevel(
            self.decl_name(name),
            tuple(b.get(A.TensorDecl, ())),
            tuple(b.get(A.ParamDecl, ())),
            tuple(b.get(A.VarDecl, ())),
            tuple(b.get(A.Objective, ())),
            tuple(b.get(A.LowerSolution, ())),
            tuple(b.get(A.Solve, ())),
            self.span(meta),
        )
