"""AST of a ritz program, and the checked form of a PDE problem that the compiler consumes.

Every node carries ``span`` (left out of equality, so equal programs compare equal).
Scalar expressions are SymPy objects built directly from the parse tree; an
``Expression`` wraps one together with the positions of the names it mentions.
"""

from __future__ import annotations

import dataclasses  # classes with an attribute named `field` use dataclasses.field
from dataclasses import dataclass, field
from typing import Any

import sympy

from .flux import expand_fluxes
from .source import SourceFile, Span

# A keyword argument inside an expression call, e.g. mlp(u, width = w), is encoded as the
# argument Tuple(Symbol("kw=width"), w): '=' never occurs in an identifier.
_KW_PREFIX = "kw="


def kwarg(name: str, value: sympy.Basic) -> sympy.Tuple:
    """Encode a keyword argument of an expression call."""
    return sympy.Tuple(sympy.Symbol(_KW_PREFIX + name), value)


def call_parts(expr: sympy.Basic) -> tuple[str, tuple[sympy.Basic, ...], dict[str, sympy.Basic]]:
    """Split an applied function into (name, positional args, keyword args)."""
    name = expr.func.__name__
    args, kwargs = [], {}
    for a in expr.args:
        if (
            isinstance(a, sympy.Tuple)
            and len(a) == 2
            and isinstance(a[0], sympy.Symbol)
            and a[0].name.startswith(_KW_PREFIX)
        ):
            kwargs[a[0].name[len(_KW_PREFIX) :]] = a[1]
        else:
            args.append(a)
    return name, tuple(args), kwargs


# ---------------------------------------------------------------------------------------------
# Raw AST (what the parser builds)


@dataclass(frozen=True)
class NameRef:
    """One occurrence of an identifier (or called function name) inside an expression."""

    name: str
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Expression:
    """A SymPy expression with the spans of the names it mentions (a side table of positions).

    Identifiers are ``sympy.Symbol(name)`` (dotted names such as ``mat.c0`` kept whole),
    ``pi`` and ``e`` are ``sympy.pi`` and ``sympy.E``, known elementary functions are SymPy's,
    and every other call is ``sympy.Function(name)(*args)``.
    """

    value: sympy.Basic
    span: Span | None = field(default=None, compare=False, repr=False)
    refs: tuple[NameRef, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Keyword:
    name: str
    value: OptValue
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    """A call in option position, e.g. ``fd(cells = 200)`` values or ``adam(lr = 1e-3)``."""

    name: str
    args: tuple[OptValue, ...]
    kwargs: tuple[Keyword, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


OptValue = Expression | Call


@dataclass(frozen=True)
class Import:
    module: str  # "std.nn" or a relative path such as "materials.dsl"
    alias: str | None
    is_path: bool
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ConstDef:
    name: str
    value: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class FnDef:
    name: str
    params: tuple[str, ...]
    body: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Space:
    name: str
    lo: Expression
    hi: Expression
    periodic: bool
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TimeDecl:
    name: str
    t0: Expression
    t1: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class FieldDecl:
    name: str
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ParamDecl:
    name: str
    value: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Equation:
    lhs: Expression
    rhs: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Side:
    """``x = a`` in a boundary line's ``at`` list."""

    axis: str
    value: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Boundary:
    lhs: Expression
    rhs: Expression
    sides: tuple[Side, ...]
    at_all: bool
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Initial:
    lhs: Expression  # the field, or dt(field)
    rhs: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Solve:
    method: str
    options: tuple[Keyword, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Pde:
    name: str
    spaces: tuple[Space, ...]
    times: tuple[TimeDecl, ...]
    fields: tuple[FieldDecl, ...]
    params: tuple[ParamDecl, ...]
    equations: tuple[Equation, ...]
    boundaries: tuple[Boundary, ...]
    initials: tuple[Initial, ...]
    solves: tuple[Solve, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TensorDecl:
    """``x: [N, 1]``: a per-sample input or a data array, with a symbolic shape."""

    name: str
    shape: tuple[Expression, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Assign:
    target: str
    value: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Repeat:
    count: Expression
    body: tuple[Stmt, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Return:
    value: Expression
    span: Span | None = field(default=None, compare=False, repr=False)


Stmt = Assign | Repeat | Return


@dataclass(frozen=True)
class Network:
    name: str
    inputs: tuple[TensorDecl, ...]
    options: tuple[Keyword, ...]
    output_shape: tuple[Expression, ...]
    body: tuple[Stmt, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class NetDecl:
    name: str
    value: OptValue
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Train:
    name: str
    nets: tuple[NetDecl, ...]
    data: tuple[TensorDecl, ...]
    loss: Expression | None
    settings: tuple[Keyword, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class VarDecl:
    level: str  # "upper" or "lower"
    name: str
    shape: tuple[Expression, ...] | None
    init: Expression
    bounds: tuple[Expression, Expression] | None
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Objective:
    level: str  # "upper" or "lower"
    sense: str  # "minimize" or "maximize"
    expr: Expression
    over: str | None
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LowerSolution:
    """``lower u = heat1d(nu = nu).u at t = 0.1``."""

    name: str
    problem: Call
    field: str
    at: tuple[Keyword, ...]
    span: Span | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Bilevel:
    name: str
    data: tuple[TensorDecl, ...]
    params: tuple[ParamDecl, ...]
    variables: tuple[VarDecl, ...]
    objectives: tuple[Objective, ...]
    lower_solutions: tuple[LowerSolution, ...]
    solves: tuple[Solve, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


Block = Pde | Network | Train | Bilevel
Item = Import | ConstDef | FnDef | Pde | Network | Train | Bilevel


@dataclass(frozen=True)
class Module:
    source: SourceFile = field(compare=False, repr=False)
    items: tuple[Item, ...] = ()


# ---------------------------------------------------------------------------------------------
# Checked PDE problem (what the checker hands to the compiler)
#
# Canonical expressions: coordinates are Symbol(axis name), time is Symbol(time name),
# parameters are Symbol(param name), a field is the applied function Function(f)(*axis
# symbols) (time implicit), spatial derivatives are sympy.Derivative of fields only
# (lap/grad/div expanded, chain and product rules applied) in FieldEquation.rhs; its ``form``
# keeps derivatives to be discretised in flux form whole (flux.FluxDiff, dsl/flux.py).
# Constants are folded to numbers and fns inlined; no other free symbols or undefined
# functions remain.


@dataclass(frozen=True)
class AxisSpec:
    name: str
    lo: float
    hi: float
    periodic: bool
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TimeSpec:
    name: str
    t0: float
    t1: float
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: float
    span: Span | None = field(default=None, compare=False, repr=False)


def velocity(field: str) -> Any:
    """The function that stands for ``dt(u)`` in the right-hand side of a second-order
    equation (a damped wave's ``- g * dt(u)``): named so that no identifier can be it; the
    lowering maps it to the velocity field that the reduction to first order makes."""
    return sympy.Function(f"dt({field})")


@dataclass(frozen=True)
class FieldEquation:
    """``dt(field, time_order) = rhs``; for a steady problem (time_order 0) ``rhs = 0``.

    ``rhs`` has every derivative expanded by the chain rule (what the checks analyse); ``form``
    keeps the derivatives to be discretised in flux form whole (dsl/flux.py)."""

    field: str
    time_order: int
    rhs: sympy.Expr
    span: Span | None = dataclasses.field(default=None, compare=False, repr=False)
    form: sympy.Expr | None = None

    @staticmethod
    def of(field: str, time_order: int, form: sympy.Expr, span: Span | None) -> FieldEquation:
        """The equation with right-hand side ``form`` as the checker canonicalised it."""
        rhs = expand_fluxes(form, span, strict=False)
        return FieldEquation(field, time_order, rhs, span, form if rhs != form else None)

    @property
    def discretised(self) -> sympy.Expr:
        """The right-hand side the compiler discretises."""
        return self.rhs if self.form is None else self.form


@dataclass(frozen=True)
class BoundarySpec:
    """``alpha * u + beta * d(u)/d(axis) = data`` on one face (``side`` is "lo" or "hi")."""

    field: str
    axis: str
    side: str
    alpha: sympy.Expr
    beta: sympy.Expr
    data: sympy.Expr
    span: Span | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class InitialSpec:
    """``initial dt(field, time_derivative) = expr`` (time_derivative 0 or 1)."""

    field: str
    time_derivative: int
    expr: sympy.Expr
    span: Span | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SolveSpec:
    """One ``solve`` line; options are plain Python values (int, float, str, list, Call)."""

    method: str
    options: dict[str, Any]
    span: Span | None = field(default=None, compare=False, repr=False)
    option_spans: dict[str, Span | None] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class PdeProblem:
    name: str
    axes: tuple[AxisSpec, ...]
    time: TimeSpec | None
    fields: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    equations: tuple[FieldEquation, ...]
    boundaries: tuple[BoundarySpec, ...]
    initials: tuple[InitialSpec, ...]
    solves: tuple[SolveSpec, ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def axis_symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(sympy.Symbol(a.name) for a in self.axes)

    def field_function(self, name: str) -> sympy.Expr:
        """The canonical applied function of a field, e.g. ``u(x, y)``."""
        return sympy.Function(name)(*self.axis_symbols)


@dataclass(frozen=True)
class CheckedModule:
    """A checked program: PDE problems in checked form, other blocks as parsed (not yet lowered)."""

    source: SourceFile = field(compare=False, repr=False)
    problems: dict[str, PdeProblem | Network | Train | Bilevel] = field(default_factory=dict)
    # the file's names (a resolve.ModuleEnv): networks, fns and consts the lowerings look up
    env: Any = field(default=None, compare=False, repr=False)
