"""Networks and the expressions that use them -> tensor IR.

A network body is written per sample; here every value that depends on an input gets the batch
as its leading axis. Elementwise mathematics (activations, fns, arithmetic) becomes ``Map`` ops
whose bodies are SymPy, so their derivatives of any order come from ``sympy.diff``; ``dense`` is
a ``Contract`` with a weight matrix plus a bias; ``sum``/``mean`` are ``Reduce`` ops. Weights are
named ``Input`` leaves (``h.W``, ``h.b``; ``h.2.W`` for the second layer made by statements that
assign ``h``; ``out.W`` for the return line; a sub-network's weights are prefixed by the name it
is assigned to), so ``vjp_program`` differentiates with respect to them like any input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod
from typing import Any, TypeAlias

import sympy
from sympy.core.function import AppliedUndef

from ...dsl import ast as A
from ...dsl.build import ELEMENTARY, call_site
from ...dsl.check.common import repeat_limit
from ...dsl.diagnostics import (
    Diagnostic,
    DslNameError,
    DslTypeError,
    RitzError,
    did_you_mean,
    shape_text,
)
from ...dsl.resolve import FnInfo, ModuleEnv, inline
from ...dsl.source import Span
from ..ir.adjoint_ops import BroadcastInDim
from ..ir.ops import Const, Contract, Extent, Input, Map, Reduce, Shape, Take, placeholder
from ..ir.program import Builder
from ..rules import broadcast_shapes, make

LETTERS = "ijklmnpqrs"


@dataclass(frozen=True)
class WeightSpec:
    """A trainable array: its shape and the fan-in/fan-out its initialisation scales with."""

    name: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    kind: str  # "matrix" (initialised at random) or "bias" (initialised to zero)


@dataclass(frozen=True)
class Value:
    """A value during lowering: its IR id and whether its leading axis is the batch."""

    id: int
    batched: bool


@dataclass(frozen=True)
class FunctionRef:
    """A function passed as an option value (``act = relu``), resolved in the file it names."""

    name: str
    env: ModuleEnv = field(compare=False)


Option: TypeAlias = sympy.Basic | FunctionRef


@dataclass
class Scope:
    """The names visible while lowering one network application (or one loss expression)."""

    env: ModuleEnv
    prefix: str
    values: dict[str, Value] = field(default_factory=dict)
    options: dict[str, Option] = field(default_factory=dict)
    stem: str = "out"
    counters: dict[str, int] = field(default_factory=dict)
    span: Span | None = None
    # extra callables of a loss (the train block's nets): name -> apply(args, kwargs, span)
    callables: dict[str, Callable[[list[Value], Span | None], Value]] = field(default_factory=dict)


def _show(value: sympy.Basic) -> str:
    """A number as it would be written (``2.5``, not SymPy's ``2.50000000000000``)."""
    if isinstance(value, sympy.Float):
        return repr(float(value))
    if value.is_number and not value.is_Integer and value.is_real:
        return f"{value!s} (= {float(value):g})"
    return str(value)


def _span(expr: A.Expression | None, fallback: Span | None) -> Span | None:
    return expr.span if expr is not None and expr.span is not None else fallback


class TensorLowering:
    """Builds one Program from network applications and tensor expressions."""

    def __init__(self, dtype: str) -> None:
        self.b = Builder()
        self.dtype = dtype
        self.weights: dict[str, WeightSpec] = {}
        self.fns: dict[str, FnInfo] = {}  # every fn seen, by global key (bodies call by key)
        self._applying: list[A.Network] = []  # the networks being applied, outermost first
        self.sites: dict[str, Span] = {}  # name -> position, of the expression being lowered
        # value id -> (its text, its position, whether a net made it): the operands a
        # whole-array Map names in its errors
        self.operands: dict[int, tuple[str, Span | None, bool]] = {}

    # -- leaves --------------------------------------------------------------------------------
    def input(self, name: str, shape: Shape) -> int:
        return self.b.add(Input(name=name, shape=tuple(shape), dtype=self.dtype))

    def weight(self, spec: WeightSpec, span: Span | None) -> int:
        old = self.weights.setdefault(spec.name, spec)
        if old.shape != spec.shape:
            raise DslTypeError(
                f"weight '{spec.name}' is used with shape {shape_text(spec.shape)} here and "
                f"{shape_text(old.shape)} elsewhere",
                span,
                "apply a network to inputs of one per-sample shape",
                "R340",
            )
        return self.input(spec.name, spec.shape)

    def const(self, value: float) -> Value:
        return Value(self.b.add(Const(value=float(value), dtype=self.dtype)), False)

    def shape(self, v: Value) -> Shape:
        return self.b.ops[v.id].shape

    def sample_shape(self, v: Value) -> Shape:
        return self.shape(v)[1:] if v.batched else self.shape(v)

    # -- networks ------------------------------------------------------------------------------
    def apply_network(
        self,
        net: A.Network,
        env: ModuleEnv,
        inputs: list[Value],
        options: Mapping[str, Option],
        prefix: str,
        span: Span | None,
    ) -> Value:
        """Lower one application of ``net`` (defined in ``env``) to batched ``inputs``."""
        if any(n is net for n in self._applying):
            chain = " -> ".join([*(n.name for n in self._applying), net.name])
            raise DslNameError(
                f"recursive network: {chain}",
                span,
                "a network's layers are made when it is applied, so it cannot call itself",
                "R205",
            )
        outermost = not self._applying
        self._applying.append(net)
        try:
            return self._apply_network(net, env, inputs, options, prefix, span)
        except RitzError as err:
            inside = err.span is not None and span is not None and err.span.file != span.file
            if outermost and inside:  # inside another file's network (std.nn's mlp)
                assert span is not None
                raise _at_call(err, span, net.name) from None
            raise
        finally:
            self._applying.pop()

    def _apply_network(
        self,
        net: A.Network,
        env: ModuleEnv,
        inputs: list[Value],
        options: Mapping[str, Option],
        prefix: str,
        span: Span | None,
    ) -> Value:
        if len(inputs) != len(net.inputs):
            raise DslTypeError(
                f"network '{net.name}' takes {len(net.inputs)} input(s), got {len(inputs)}",
                span,
                f"its inputs are {', '.join(t.name for t in net.inputs)}",
                "R301",
            )
        known = {kw.name for kw in net.options}
        for name in options:
            if name not in known:
                raise DslTypeError(
                    f"network '{net.name}' has no option '{name}'",
                    span,
                    did_you_mean(name, known) or f"its options: {', '.join(sorted(known))}",
                    "R301",
                )
        scope = Scope(env, prefix, span=span)
        for kw in net.options:
            if kw.name in options:
                scope.options[kw.name] = options[kw.name]
            else:
                assert isinstance(kw.value, A.Expression)  # network options are expressions
                scope.options[kw.name] = self._option_value(kw.value, scope, kw.span)
        for decl, value in zip(net.inputs, inputs, strict=True):
            try:
                self._bind_shape(decl, self.sample_shape(value), scope)
            except RitzError as err:  # the call is what to change; the declaration says why
                if span is None or err.span is None:
                    raise
                first = err.first
                notes = ((f"'{decl.name}' is declared here", first.span), *first.notes)
                moved = Diagnostic(first.code, first.message, span, first.hint, notes)
                raise type(err)(diagnostics=[moved, *err.diagnostics[1:]]) from None
            scope.values[decl.name] = value
        result = self._body(net.body, scope)
        if result is None:  # the checker guarantees a return; keep the type checker honest
            raise DslTypeError(f"network '{net.name}' has no return statement", net.span)
        want = tuple(self.integer(d.value, scope, d.span) for d in net.output_shape)
        got = self.sample_shape(result)
        if got == () and want == (1,):
            full = (self.shape(result)[0], 1) if result.batched else (1,)
            dims = (0,) if result.batched else ()
            result = Value(
                make(self.b, BroadcastInDim, (result.id,), shape=full, dims=dims), result.batched
            )
        elif got != want:
            raise DslTypeError(
                f"network '{net.name}' returns per-sample shape {shape_text(got)}, but declares "
                f"{shape_text(want)}",
                net.span,
                "change the declared output shape or the return expression",
                "R341",
            )
        batch = next((self.shape(a)[:1] for a in inputs if a.batched), ())
        if batch and not result.batched:  # a value of no input (return bias()): one per row
            sample = self.shape(result)
            kept = tuple(range(1, len(sample) + 1))
            rows = (*batch, *sample)
            result = Value(make(self.b, BroadcastInDim, (result.id,), shape=rows, dims=kept), True)
        return result

    def _bind_shape(self, decl: A.TensorDecl, got: Shape, scope: Scope) -> None:
        if len(decl.shape) != len(got):
            raise DslTypeError(
                f"input '{decl.name}' is declared with {len(decl.shape)} axes per sample, but "
                f"gets shape {shape_text(got)}",
                decl.span,
                "give one array row per sample",
                "R342",
            )
        for d, size in zip(decl.shape, got, strict=True):
            value = d.value
            if isinstance(value, sympy.Symbol) and value.name not in scope.options:
                scope.options[value.name] = sympy.Integer(size) if isinstance(size, int) else value
                continue
            expected = self.integer(value, scope, d.span)
            if expected != size:
                raise DslTypeError(
                    f"input '{decl.name}' needs size {expected} on this axis, got {size}",
                    d.span,
                    None,
                    "R342",
                )

    def _body(self, body: tuple[A.Stmt, ...], scope: Scope) -> Value | None:
        for stmt in body:
            if isinstance(stmt, A.Assign):
                scope.stem = stmt.target
                scope.values[stmt.target] = self.lower(stmt.value.value, scope, stmt.value)
            elif isinstance(stmt, A.Repeat):
                count = self.integer(stmt.count.value, scope, stmt.count.span, "a repeat count")
                too_many = repeat_limit(count, stmt.count.span)
                if too_many is not None:
                    raise DslTypeError(diagnostics=[too_many])
                for _ in range(count):
                    self._body(stmt.body, scope)
            else:
                scope.stem = "out"
                return self.lower(stmt.value.value, scope, stmt.value)
        return None

    # -- options and sizes ---------------------------------------------------------------------
    def _option_value(self, e: A.Expression, scope: Scope, span: Span | None) -> Option:
        """An option value: a number, or a function named by it (resolved in ``scope.env``)."""
        value = e.value
        if isinstance(value, sympy.Symbol) and value.name in scope.options:
            return scope.options[value.name]
        if isinstance(value, sympy.Symbol) and is_function(value.name, scope.env):
            return FunctionRef(value.name, scope.env)
        if isinstance(value, sympy.Symbol) and value.name not in scope.env.consts:
            env = scope.env
            known = [*env.fns, *ELEMENTARY, *env.networks, *env.consts, *scope.options]
            raise DslTypeError(
                f"unknown name '{value.name}': an option is a number or a function",
                _span(e, span),
                did_you_mean(value.name, known),
                "R202",
            )
        return self._number(value, scope, _span(e, span))

    def _number(self, value: sympy.Basic, scope: Scope, span: Span | None) -> sympy.Basic:
        subs: dict[sympy.Basic, sympy.Basic] = {
            sympy.Symbol(k): v for k, v in scope.env.consts.items()
        }
        for k, v in scope.options.items():
            if isinstance(v, sympy.Basic):
                subs[sympy.Symbol(k)] = v
        out = value.xreplace(subs)
        if out.free_symbols or out.atoms(AppliedUndef):
            raise DslTypeError(
                f"'{value}' is not a number here",
                span,
                "options, sizes and repeat counts must be constant expressions",
                "R343",
            )
        return out

    def integer(
        self,
        value: sympy.Basic,
        scope: Scope,
        span: Span | None,
        what: str | None = None,
        least: int = 0,
    ) -> int:
        """``value`` as a whole number >= ``least`` (a size, a width, a repeat count:
        ``what``)."""
        number = self._number(value, scope, span)
        if not (number.is_real and number == int(number) and int(number) >= least):
            subject = what or ("this size" if value.is_number else f"'{_show(value)}'")
            kind = "non-negative" if least == 0 else "positive" if least == 1 else f">= {least}"
            raise DslTypeError(
                f"{subject} must be a {kind} whole number, got {_show(number)}",
                span,
                None,
                "R343",
            )
        return int(number)

    # -- expressions ---------------------------------------------------------------------------
    def lower(
        self,
        e: sympy.Basic,
        scope: Scope,
        where: A.Expression | None = None,
        span: Span | None = None,
    ) -> Value:
        """Lower a tensor expression: one Map for its elementwise part, structural ops for the
        calls it makes. ``where`` (or ``span``) is the source it came from."""
        span = span or _span(where, scope.span)
        outer = self.sites
        if where is not None:  # the positions of the operators written in this expression
            self.sites = {r.name: r.span for r in where.refs if r.span is not None}
        try:
            args: list[Value] = []
            body = self._symbolic(e, scope, args, span)
        finally:
            self.sites = outer
        if not args:
            return self.const(float(self._number(body, scope, span)))
        if body == placeholder(0) and len(args) == 1:
            return args[0]
        return self.map(body, args, span)

    def map(self, body: sympy.Expr, args: list[Value], span: Span | None) -> Value:
        """A Map over values of possibly different ranks: per-sample shapes broadcast from the
        right, and the batch axis stays leading."""
        batched = any(a.batched for a in args)
        try:
            sample = broadcast_shapes(*(self.sample_shape(a) for a in args))
        except ValueError:
            shapes = ", ".join(shape_text(self.sample_shape(a)) for a in args)
            raise DslTypeError(
                f"shapes {shapes} do not broadcast",
                span,
                "check the sizes of the operands",
                "R344",
            ) from None
        batch = next((self.shape(a)[:1] for a in args if a.batched), ())
        full = (*batch, *sample)
        if not batched:  # whole arrays (a loss): their rows are aligned by NumPy's rule alone
            self._check_rows(args, full, span)
        ids = []
        for a in args:
            if a.batched and self.sample_shape(a) != sample:
                rank = len(self.sample_shape(a))
                dims = (0, *range(len(full) - rank, len(full)))
                ids.append(make(self.b, BroadcastInDim, (a.id,), shape=full, dims=dims))
            else:
                ids.append(a.id)
        op = Map(args=tuple(ids), shape=full, dtype=self.dtype, body=body, origin=span)
        return Value(self.b.add(op), batched)

    def _check_rows(self, args: list[Value], full: Shape, span: Span | None) -> None:
        """R344 where broadcasting whole arrays lines up the rows of one (its leading axis, a
        size the data set: the samples) with a size-1 axis of another, so that the samples'
        axis appears twice in the result: ``f(x) - y`` with ``f(x): [N, 1]`` and ``y: [N]``
        is ``[N, N]``, every row paired with every row (PyTorch's MSELoss warns of it). An
        axis that some operand has after its leading one is paired on purpose (``x - xt``
        with ``xt: [1, N]``, every pair of rows) and is not refused.

        Sizes compare by value where they are known: numbers written in the file (``[64, 1]``
        against ``[64]``, refused at ``ritz check``) and names bound to numbers where the
        lowering is given the data's sizes (``[N, 1]`` against ``[M]`` with M = N: a bilevel
        block's objectives, lowered when the data arrive); a name still unknown matches only
        itself. Whole arrays are a train block's loss and a bilevel block's objectives alike."""
        for k, size in enumerate(full):
            if k == 0 or not _row_size(size) or full.count(size) < 2:
                continue
            at = [(a, k - len(full) + len(self.shape(a))) for a in args]
            holders = [(a, i) for a, i in at if i >= 0 and self.shape(a)[i] == size]
            if not holders or any(i != 0 for _, i in holders):
                continue
            rows = holders[0][0]
            ones = next((a for a, i in at if i > 0 and self.shape(a)[i] == 1), None)
            if ones is None:
                continue
            self._paired_rows(rows, ones, full, span)

    def _paired_rows(self, rows: Value, ones: Value, full: Shape, span: Span | None) -> None:
        """The R344 of ``_check_rows``: ``rows`` has its samples where ``ones`` has size 1."""
        (a, site, _), (b, _, _) = (
            self.operands.get(v.id, ("a value", None, False)) for v in (rows, ones)
        )
        sa, sb = self.shape(rows), self.shape(ones)
        n = sa[0]

        def data(v: Value) -> str | None:
            op = self.b.ops[v.id]
            return op.name if isinstance(op, Input) and op.name not in self.weights else None

        if data(rows) is not None:
            fix = f"declare {data(rows)}: {shape_text(sb)}"
        elif data(ones) is not None:
            fix = f"declare {data(ones)}: {shape_text(sa)}"
        else:
            fix = "give both one row per sample and the same axes after it"
        if any(self.operands.get(v.id, ("", None, False))[2] for v in (rows, ones)):
            fix += f" (a net's output has its declared axes after the rows: [{n}, 1] for -> [1])"
        raise DslTypeError(
            f"the rows of {a} (shape {shape_text(sa)}) line up with a size-1 axis of {b} "
            f"(shape {shape_text(sb)}): broadcasting makes {shape_text(full)}, every row "
            f"paired with every row, not row by row",
            site or span,
            f"{fix}; to pair every row with every row on purpose, give one of them its rows on "
            f"a later axis (data declared [1, {n}])",
            "R344",
        )

    def _symbolic(
        self, e: sympy.Basic, scope: Scope, args: list[Value], span: Span | None
    ) -> sympy.Expr:
        held: set[sympy.Symbol] = set()

        def hold(v: Value) -> sympy.Symbol:
            if v not in args:
                args.append(v)
            held.add(placeholder(args.index(v)))
            return placeholder(args.index(v))

        def walk(node: sympy.Basic) -> sympy.Basic:
            if isinstance(node, sympy.Symbol):
                if node in held:  # an argument already lowered (fn arguments are, once)
                    return node
                if node.name in scope.values:
                    value = scope.values[node.name]
                    self.operands[value.id] = (f"'{node.name}'", self.sites.get(node.name), False)
                    return hold(value)
                if node.name in scope.options:
                    option = scope.options[node.name]
                    if isinstance(option, FunctionRef):
                        raise DslTypeError(
                            f"'{node.name}' is a function here; call it", span, None, "R345"
                        )
                    return option
                if node.name in scope.env.consts:
                    return scope.env.consts[node.name]
                raise DslTypeError(f"unknown name '{node.name}'", span, None, "R201")
            if isinstance(node, AppliedUndef):
                return self._call(node, scope, span, hold, walk)
            if not node.args:
                return node
            # lower the operands in source order, so that the weights of the calls they make
            # are numbered in the order the calls are written (SymPy sorts `a + b` its own way)
            walked = {i: walk(node.args[i]) for i in _source_order(node.args)}
            return node.func(*(walked[i] for i in range(len(node.args))))

        return walk(e)

    def _call(
        self,
        node: AppliedUndef,
        scope: Scope,
        span: Span | None,
        hold: Callable[[Value], sympy.Symbol],
        walk: Callable[[sympy.Basic], sympy.Basic],
    ) -> sympy.Basic:
        name, pos, kwargs = A.call_parts(node)
        if name in STRUCTURAL:
            if kwargs:
                raise DslTypeError(f"{name}() takes no keyword arguments", span, None, "R301")
            site = self.sites.get(str(node))
            try:
                out = STRUCTURAL[name](self, [p for p in pos], scope, span)
            except DslTypeError as exc:
                # an error of x[3] or a @ b itself points at it (see dsl/build.py _op_refs)
                if site is None or exc.span is not span:
                    raise
                raise DslTypeError(exc.message, site, exc.hint, exc.code) from None
            if site is not None and site.text():  # named in R344 as written: 'X @ w'
                self.operands.setdefault(out.id, (f"'{site.text()}'", site, False))
            return hold(out)
        if name in scope.callables:
            values = [self.lower(p, scope, span=span) for p in pos]
            if kwargs:
                raise DslTypeError(
                    f"'{name}' is a net of this block: its options are set where it is declared",
                    span,
                    None,
                    "R301",
                )
            out = scope.callables[name](values, span)
            self.operands[out.id] = (f"'{node}'", self.sites.get(name), True)
            return hold(out)
        env = scope.env
        self.fns.update(env.fn_table)
        if name in scope.options:
            ref = scope.options[name]
            if not isinstance(ref, FunctionRef):
                raise DslTypeError(
                    f"option '{name}' is a number, not a function", span, None, "R345"
                )
            name, env = ref.name, ref.env
            self.fns.update(env.fn_table)
        if name in self.fns or name in env.fns:
            key = name if name in self.fns else env.fns[name]
            if kwargs:
                raise DslTypeError(f"fn '{name}' takes no keyword arguments", span, None, "R301")
            # lower the arguments first: a parameter used twice in the body is one value
            return walk(inline(self.fns[key], [walk(p) for p in pos], span))
        if name in ELEMENTARY:
            fn, arities = ELEMENTARY[name]
            if len(pos) not in arities or kwargs:
                raise DslTypeError(f"{name}() takes {arities[0]} argument(s)", span, None, "R301")
            return fn(*(walk(p) for p in pos))
        if name in env.networks:
            net, net_env = env.networks[name], env.network_envs[name]
            inputs = [self.lower(p, scope, span=span) for p in pos]
            opts = {k: self._option_value(A.Expression(v), scope, span) for k, v in kwargs.items()}
            stem = self._stem(scope)
            return hold(
                self.apply_network(net, net_env, inputs, opts, f"{scope.prefix}{stem}.", span)
            )
        raise DslTypeError(
            f"unknown function '{name}'",
            span,
            did_you_mean(name, [*env.fns, *ELEMENTARY, *env.networks, *STRUCTURAL]),
            "R202",
        )

    def _stem(self, scope: Scope) -> str:
        """The name the next weight of this statement gets: ``h``, then ``h.2``, ``h.3``..."""
        n = scope.counters[scope.stem] = scope.counters.get(scope.stem, 0) + 1
        return scope.stem if n == 1 else f"{scope.stem}.{n}"


def _row_size(size: int | str) -> bool:
    """Whether an axis of this size can hold the samples twice over: a name, or a number
    above 1 (a size-1 axis against itself broadcasts to nothing new)."""
    return isinstance(size, str) or size > 1


def _first_site(e: sympy.Basic) -> tuple[int, int, int, int] | None:
    """The earliest call site (in the order calls finish in the source) within ``e``."""
    sites = [s for s in map(call_site, e.atoms(AppliedUndef)) if s is not None]
    return min(sites) if sites else None


def _source_order(args: tuple[sympy.Basic, ...]) -> list[int]:
    """The order in which to lower ``args``: those holding calls of a network body by where the
    calls are written, the others where they stand."""
    keys = {i: k for i, a in enumerate(args) if (k := _first_site(a)) is not None}
    slots = list(keys)
    order = list(range(len(args)))
    for slot, i in zip(slots, sorted(slots, key=keys.__getitem__), strict=True):
        order[slot] = i
    return order


# -- structural calls -------------------------------------------------------------------------


def _arity(name: str, args: list[sympy.Basic], n: int, span: Span | None) -> None:
    if len(args) != n:
        raise DslTypeError(f"{name}() takes {n} argument(s), got {len(args)}", span, None, "R301")


def _dense(low: TensorLowering, args: list[sympy.Basic], scope: Scope, span: Span | None) -> Value:
    _arity("dense", args, 2, span)
    h = low.lower(args[0], scope, span=span)
    width = low.integer(args[1], scope, span, "the width of dense()", least=1)
    sample = low.sample_shape(h)
    if len(sample) != 1 or not isinstance(sample[0], int):
        raise DslTypeError(
            f"dense() needs a vector per sample, got shape {shape_text(sample)}",
            span,
            "flatten the input first, or use matmul",
            "R346",
        )
    k = sample[0]
    stem = scope.prefix + low._stem(scope)
    w = low.weight(WeightSpec(f"{stem}.W", (k, width), k, width, "matrix"), span)
    bias = low.weight(WeightSpec(f"{stem}.b", (width,), k, width, "bias"), span)
    spec = "zi,ij->zj" if h.batched else "i,ij->j"
    z = Value(make(low.b, Contract, (h.id, w), spec=spec), h.batched)
    return low.map(placeholder(0) + placeholder(1), [z, Value(bias, False)], span)


def _bias(low: TensorLowering, args: list[sympy.Basic], scope: Scope, span: Span | None) -> Value:
    _arity("bias", args, 0, span)
    stem = scope.prefix + low._stem(scope)
    w = low.weight(WeightSpec(f"{stem}.b", (), 1, 1, "bias"), span)
    return Value(w, False)


def _reduce(
    low: TensorLowering, args: list[sympy.Basic], scope: Scope, span: Span | None, mean: bool
) -> Value:
    _arity("mean" if mean else "sum", args, 1, span)
    x = low.lower(args[0], scope, span=span)
    shape = low.shape(x)
    axes = tuple(range(1 if x.batched else 0, len(shape)))
    if not axes:
        return x
    total = Value(make(low.b, Reduce, (x.id,), op="sum", axes=axes), x.batched)
    if not mean:
        return total
    dims = tuple(shape[a] for a in axes)
    if all(isinstance(d, int) for d in dims):
        return low.map(placeholder(0) / prod(dims), [total], span)
    count = Value(low.b.add(Extent(dims=dims, dtype=low.dtype)), False)
    return low.map(placeholder(0) / placeholder(1), [total, count], span)


def _matmul(low: TensorLowering, args: list[sympy.Basic], scope: Scope, span: Span | None) -> Value:
    _arity("matmul", args, 2, span)
    a, b = (low.lower(x, scope, span=span) for x in args)
    sa, sb = low.sample_shape(a), low.sample_shape(b)
    if not (1 <= len(sa) <= 2 and 1 <= len(sb) <= 2):
        raise DslTypeError(
            f"@ needs vectors or matrices, got shapes {shape_text(sa)} and {shape_text(sb)}",
            span,
            None,
            "R344",
        )
    if sa[-1] != sb[0]:
        raise DslTypeError(
            f"@ contracts sizes {sa[-1]} and {sb[0]}, which differ", span, None, "R344"
        )
    ta = "i" * (len(sa) == 2) + "k"
    tb = "k" + "j" * (len(sb) == 2)
    out = ta[:-1] + tb[1:]
    if a.batched:
        ta, out = "z" + ta, "z" + out
    if b.batched:
        tb = "z" + tb
        out = out if a.batched else "z" + out
    return Value(
        make(low.b, Contract, (a.id, b.id), spec=f"{ta},{tb}->{out}"), a.batched or b.batched
    )


def _index(low: TensorLowering, args: list[sympy.Basic], scope: Scope, span: Span | None) -> Value:
    """``v[i, j]``: constant positions along the leading per-sample axes (inside a network) or
    the leading axes (of a whole array in a loss or an objective); negative ones count from the
    end. Each is a Take, whose transpose (an Embed) the rule table supplies."""
    x = low.lower(args[0], scope, span=span)
    first = 1 if x.batched else 0
    for arg in args[1:]:
        shape = low.shape(x)
        if len(shape) <= first:
            raise DslTypeError(
                f"too many indices: the value has {len(shape) - first} "
                "axes" + (" per sample" if x.batched else ""),
                span,
                "index each axis at most once",
                "R352",
            )
        size = shape[first]
        if isinstance(size, str):
            raise DslTypeError(
                f"cannot index along '{size}', a size set by the data",
                span,
                "in a loss the rows of a data array are its samples: index per-sample values "
                "inside a network",
                "R352",
            )
        number = low._number(arg, scope, span)
        if not (number.is_Integer and -size <= int(number) < size):
            raise DslTypeError(
                f"index {number} is out of range for an axis of size {size}",
                span,
                "indices are constant whole numbers from 0 to size - 1 (negative ones count "
                "from the end)",
                "R352",
            )
        index = int(number) % size
        x = Value(make(low.b, Take, (x.id,), axis=first, index=index), x.batched)
    return x


STRUCTURAL: dict[str, Callable[[TensorLowering, list[sympy.Basic], Scope, Span | None], Value]] = {
    "dense": _dense,
    "bias": _bias,
    "sum": lambda low, a, s, sp: _reduce(low, a, s, sp, mean=False),
    "mean": lambda low, a, s, sp: _reduce(low, a, s, sp, mean=True),
    "matmul": _matmul,
    "index": _index,
}


def is_function(name: str, env: ModuleEnv) -> bool:
    """Whether ``name`` calls something in ``env``: a fn, an elementary function or a network
    (what an option naming a function, ``act = tanh``, may name)."""
    return name in env.fns or name in ELEMENTARY or name in env.networks


def network_options(
    low: TensorLowering, net: A.Network, env: ModuleEnv, given: Mapping[str, Any], span: Span | None
) -> dict[str, Option]:
    """Option values given from Python (numbers, or names of functions visible in ``env``)."""
    out: dict[str, Option] = {}
    for k, v in given.items():
        if isinstance(v, str):
            if not is_function(v, env):
                raise DslTypeError(f"'{v}' is not a function of this program", span, None, "R202")
            out[k] = FunctionRef(v, env)
        else:
            out[k] = sympy.sympify(float(v) if not isinstance(v, int) else int(v))
    return out


__all__ = ["FunctionRef", "Scope", "TensorLowering", "Value", "WeightSpec", "network_options"]


def _at_call(err: RitzError, call: Span, network: str) -> RitzError:
    """``err``, raised inside a network defined in another file, moved to the user's call:
    the line the user can change, with a note pointing at where it arose inside."""
    first = err.first
    notes = ((f"inside network '{network}', here", first.span), *first.notes)
    moved = Diagnostic(first.code, first.message, call, first.hint, notes)
    return type(err)(diagnostics=[moved, *err.diagnostics[1:]])
