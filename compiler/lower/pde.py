"""Front end for PDE problems: a checked PdeProblem -> a Program of right-hand sides.

Output invariants: one output ``rhs:<field>`` per state field holding d(field)/dt as a Map over
Input (state fields), Diff of Inputs, Coord, Time and Param leaves, and Diffs of such Maps (a
derivative in flux form, dsl/flux.py: discretised conservatively). Second-order equations
``dt(u, 2) = f`` are reduced to ``dt(u) = dt_u, dt(dt_u) = f`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from ...dsl.ast import BoundarySpec, PdeProblem
from ...dsl.ast import velocity as velocity_of
from ...dsl.diagnostics import UnsupportedError
from ...dsl.flux import FluxDiff
from ...dsl.source import Span
from ..ir.ops import Coord, Diff, Input, Param, Time, placeholder
from ..ir.program import AxisFaces, BoundaryRule, Builder, FaceRule, Grid, Program
from ..symbolic import extrapolation_degree


@dataclass(frozen=True)
class LoweredPde:
    """A PDE's right-hand-side Program plus what the runtime needs besides kernels."""

    name: str
    program: Program
    fields: tuple[str, ...]  # state fields in order (user fields, then reduced dt_ fields)
    user_fields: tuple[str, ...]
    params: dict[str, float]
    initial: dict[str, sympy.Expr]  # state field -> expression of coordinates and params
    bounds: tuple[tuple[float, float], ...]
    t_span: tuple[float, float] | None
    equation_spans: dict[str, Span | None] = field(default_factory=dict)


def _velocity_name(name: str, taken: set[str]) -> str:
    candidate = f"dt_{name}"
    while candidate in taken:
        candidate += "_"
    return candidate


def lower_pde(problem: PdeProblem, order: int = 2, dtype: str = "float64") -> LoweredPde:
    """Lower a checked PDE problem: right-hand sides ``rhs:<field>`` of a time-dependent one,
    residuals ``res:<field>`` (zero at the solution) of a steady one."""
    if problem.time is None:
        return _lower_steady(problem, order, dtype)
    axes = problem.axis_symbols
    grid = Grid(
        tuple(a.name for a in problem.axes),
        tuple(a.periodic for a in problem.axes),
        problem.time.name,
    )
    b = Builder(grid)
    shape = grid.shape
    taken = set(problem.fields) | {p.name for p in problem.params} | {a.name for a in problem.axes}

    fields: list[str] = list(problem.fields)
    rhs: dict[str, sympy.Expr] = {}
    spans: dict[str, Span | None] = {}
    velocity: dict[str, str] = {}
    for eq in problem.equations:
        spans[eq.field] = eq.span
        if eq.time_order == 1:
            rhs[eq.field] = eq.discretised
        elif eq.time_order == 2:
            v = _velocity_name(eq.field, taken)
            taken.add(v)
            velocity[eq.field] = v
            fields.append(v)
            rhs[eq.field] = sympy.Function(v)(*axes)
            rhs[v] = eq.discretised
            spans[v] = eq.span
        else:
            raise UnsupportedError(
                "an equation without a time derivative in a time-dependent problem",
                eq.span,
                "write it as dt(u) = ...",
                code="R402",
            )

    initial: dict[str, sympy.Expr] = {}
    t0 = sympy.Float(problem.time.t0)
    tsym = sympy.Symbol(problem.time.name)
    for init in problem.initials:
        target = init.field if init.time_derivative == 0 else velocity.get(init.field)
        if target is not None:
            initial[target] = init.expr.subs(tsym, t0)
    for f in fields:
        initial.setdefault(f, sympy.Integer(0))

    # dt(u) in a right-hand side (a damping term) is the velocity field of the reduction
    speeds = {velocity_of(u): sympy.Function(v) for u, v in velocity.items()}
    rhs = {
        f: e.replace(lambda a: a.func in speeds, lambda a: speeds[a.func](*a.args))
        for f, e in rhs.items()
    }
    converter = _ExprToIR(b, problem, fields, shape, dtype)
    for f in fields:
        b.output(f"rhs:{f}", converter.convert(rhs[f], spans.get(f)))

    reads = converter.derivative_orders
    for f in fields:
        b.boundaries[f] = _boundary_rule(problem, f, velocity, reads.get(f, {}), order)

    return LoweredPde(
        name=problem.name,
        program=b.build(),
        fields=tuple(fields),
        user_fields=tuple(problem.fields),
        params={p.name: p.default for p in problem.params},
        initial=initial,
        bounds=tuple((a.lo, a.hi) for a in problem.axes),
        t_span=(problem.time.t0, problem.time.t1),
        equation_spans=spans,
    )


def _lower_steady(problem: PdeProblem, order: int, dtype: str) -> LoweredPde:
    grid = Grid(tuple(a.name for a in problem.axes), tuple(a.periodic for a in problem.axes))
    b = Builder(grid)
    converter = _ExprToIR(b, problem, list(problem.fields), grid.shape, dtype)
    spans = {}
    for eq in problem.equations:
        spans[eq.field] = eq.span
        b.output(f"res:{eq.field}", converter.convert(eq.discretised, eq.span))
    for f in problem.fields:
        b.boundaries[f] = _boundary_rule(
            problem, f, {}, converter.derivative_orders.get(f, {}), order
        )
    return LoweredPde(
        name=problem.name,
        program=b.build(),
        fields=tuple(problem.fields),
        user_fields=tuple(problem.fields),
        params={p.name: p.default for p in problem.params},
        initial={f: sympy.Integer(0) for f in problem.fields},
        bounds=tuple((a.lo, a.hi) for a in problem.axes),
        t_span=None,
        equation_spans=spans,
    )


class _ExprToIR:
    """Turns a canonical SymPy right-hand side into one Map over IR leaves."""

    def __init__(
        self, b: Builder, problem: PdeProblem, fields: list[str], shape: tuple, dtype: str
    ) -> None:
        self.b = b
        self.fields = set(fields)
        self.axis_index = {sympy.Symbol(a.name): i for i, a in enumerate(problem.axes)}
        self.params = {sympy.Symbol(p.name) for p in problem.params}
        self.time = sympy.Symbol(problem.time.name) if problem.time else None
        self.shape = shape
        self.dtype = dtype
        self.derivative_orders: dict[str, dict[int, int]] = {}

    def _field_input(self, name: str) -> int:
        return self.b.add(Input(name=name, shape=self.shape, dtype=self.dtype))

    def _leaf(self, node: sympy.Basic) -> int | None:
        """The IR value standing for ``node`` if it is a leaf, else None."""
        if isinstance(node, FluxDiff):
            return self._flux_diff(node)
        if isinstance(node, sympy.Derivative):
            fname = node.expr.func.__name__
            value = self._field_input(fname)
            orders = self.derivative_orders.setdefault(fname, {})
            for var, count in node.variable_count:
                axis = self.axis_index[var]
                orders[axis] = max(orders.get(axis, 0), int(count))
                value = self.b.add(
                    Diff(
                        args=(value,),
                        shape=self.shape,
                        dtype=self.dtype,
                        axis=axis,
                        order=int(count),
                    )
                )
            return value
        if isinstance(node, sympy.core.function.AppliedUndef) and node.func.__name__ in self.fields:
            return self._field_input(node.func.__name__)
        if isinstance(node, sympy.Symbol):
            if node in self.axis_index:
                axis = self.axis_index[node]
                return self.b.add(
                    Coord(shape=self.shape, dtype=self.dtype, axis=axis, name=node.name)
                )
            if node == self.time:
                return self.b.add(Time(name=node.name, dtype=self.dtype))
            if node in self.params:
                return self.b.add(Param(name=node.name, dtype=self.dtype))
            raise UnsupportedError(f"unexpected name '{node.name}' in an equation")
        return None

    def _flux_diff(self, node: FluxDiff) -> int:
        """A Diff of the Map of the flux; its fields count as differentiated ``node.order``
        more times along the axis (for the degree of their ghost extrapolation)."""
        axis = self.axis_index[node.axis]
        flux = self.convert(node.flux, None)
        inner: dict[str, int] = {}  # each field's highest derivative along the axis in the flux
        for d in node.flux.atoms(sympy.Derivative):
            count = int(dict(d.variable_count).get(node.axis, 0))
            inner[d.expr.func.__name__] = max(inner.get(d.expr.func.__name__, 0), count)
        for f in node.flux.atoms(sympy.core.function.AppliedUndef):
            name = f.func.__name__
            if name in self.fields:
                orders = self.derivative_orders.setdefault(name, {})
                orders[axis] = max(orders.get(axis, 0), inner.get(name, 0) + node.order)
        return self.b.add(
            Diff(args=(flux,), shape=self.shape, dtype=self.dtype, axis=axis, order=node.order)
        )

    def convert(self, expr: sympy.Expr, origin: Span | None) -> int:
        args: list[int] = []
        mapping: dict[sympy.Basic, sympy.Symbol] = {}

        def walk(node: sympy.Basic) -> sympy.Basic:
            leaf = self._leaf(node)
            if leaf is not None:
                if node not in mapping:
                    mapping[node] = placeholder(len(args))
                    args.append(leaf)
                return mapping[node]
            if not node.args:
                return node
            return node.func(*[walk(a) for a in node.args])

        body = walk(sympy.sympify(expr))
        if not args:  # a constant right-hand side still lives on the grid
            args.append(self.b.add(Coord(shape=self.shape, dtype=self.dtype, axis=0, name="_")))
            body = body + 0 * placeholder(0)
        return self.b.map(body, args, origin)


def _face_rule(spec: BoundarySpec, degree: int, time_derivative: bool, tsym: sympy.Symbol):
    # a velocity's condition is u's differentiated in time; a coefficient of t would add a
    # term that reads u at the face, which the check refuses (R416, moving_velocity_conditions)
    data = sympy.diff(spec.data, tsym) if time_derivative else spec.data
    return FaceRule(alpha=spec.alpha, beta=spec.beta, data=data, degree=degree)


def _boundary_rule(
    problem: PdeProblem, f: str, velocity: dict[str, str], orders: dict[int, int], order: int
) -> BoundaryRule:
    """Per axis: periodic, or the (lo, hi) FaceRules of the field's conditions."""
    source = next((u for u, v in velocity.items() if v == f), f)
    is_velocity = source != f
    tsym = sympy.Symbol(problem.time.name) if problem.time else sympy.Symbol("t")
    faces: list[AxisFaces] = []
    for i, axis in enumerate(problem.axes):
        if axis.periodic:
            faces.append("periodic")
            continue
        deriv = max(orders.get(i, 0), 1)
        degree = extrapolation_degree(order, deriv)
        pair: list[FaceRule | None] = []
        for side in ("lo", "hi"):
            spec = next(
                (
                    s
                    for s in problem.boundaries
                    if s.field == source and s.axis == axis.name and s.side == side
                ),
                None,
            )
            if spec is None and orders.get(i, 0) == 1:
                pair.append(FaceRule.outflow(order + 1))
            elif spec is None:
                pair.append(None)
            else:
                pair.append(_face_rule(spec, degree, is_velocity, tsym))
        faces.append((pair[0], pair[1]))
    return BoundaryRule(field=f, faces=tuple(faces))
