"""Check a ``pde`` block and produce its canonical PdeProblem (see the comments in dsl/ast.py).

Every statement is checked on its own, so several mistakes are reported together.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.core.function import AppliedUndef

from .. import ast as A
from ..diagnostics import (
    DiagnosticSink,
    DslNameError,
    DslTypeError,
    RitzError,
    did_you_mean,
    names_hint,
)
from ..flux import expand_fluxes
from ..numeric import shown
from ..resolve import ModuleEnv, call_name, fold_number, ref_span
from ..source import Span
from .blocks import check_optimizer
from .characteristics import differentiated_once, open_faces, over_specified
from .common import METHOD_OPTIONS, Names, check_solves, uses_later_param
from .pde_expr import PdeExpressions
from .widths import check_instance

MAX_AXES = 3


class PdeChecker(PdeExpressions):
    """Checks one pde block; ``check()`` returns the PdeProblem or None after reporting."""

    def __init__(self, pde: A.Pde, env: ModuleEnv, sink: DiagnosticSink) -> None:
        self.pde, self.env, self.sink = pde, env, sink
        self.names = Names(sink, env)
        self.axes: list[A.AxisSpec] = []
        self.time: A.TimeSpec | None = None
        self.fields: dict[str, A.FieldDecl] = {}
        self.params: dict[str, A.ParamSpec] = {}
        # params whose value was refused: still declared, so their uses report nothing more
        self.rejected: set[str] = set()
        self.depth = 0

    # ---- helpers -------------------------------------------------------------------------

    @property
    def axis_names(self) -> list[str]:
        return [a.name for a in self.axes]

    def field_fn(self, name: str) -> sympy.Expr:
        return sympy.Function(name)(*(sympy.Symbol(a) for a in self.axis_names))

    def second_order_fields(self) -> set[str]:
        """The fields whose equation is dt(u, 2) = ... (read off the left-hand sides, so that
        an equation may use a velocity whose equation comes later)."""
        out = set()
        for eq in self.pde.equations:
            head = eq.lhs.value
            if call_name(head) != "dt" or len(head.args) != 2 or head.args[1] != 2:
                continue
            if isinstance(head.args[0], sympy.Symbol) and head.args[0].name in self.fields:
                out.add(head.args[0].name)
        return out

    def known_names(self) -> list[str]:
        t = [self.time.name] if self.time else []
        return [*self.fields, *self.axis_names, *t, *self.params, *self.env.consts]

    def attempt(self, fn: Any, *args: Any) -> Any:
        """Run one statement's check; its errors go to the sink and the result is None."""
        try:
            return fn(*args)
        except RitzError as exc:
            for d in exc.diagnostics:
                self.sink.add(d)
            return None

    def number(self, expr: A.Expression, what: str, extra: dict[str, Any] | None = None) -> Any:
        consts = {**self.env.consts, **(extra or {})}
        value = fold_number(expr, consts, self.sink, what, self.env)
        return None if value is None else float(value)

    # ---- declarations --------------------------------------------------------------------

    def declare(self) -> None:
        pde = self.pde
        for s in pde.spaces:
            lo, hi = self.number(s.lo, "an axis bound"), self.number(s.hi, "an axis bound")
            if not self.names.declare(s.name, s.span, "axis"):
                continue
            if lo is None or hi is None:  # reported; keep the axis to avoid follow-on errors
                lo, hi = 0.0, 1.0
            elif lo >= hi:
                self.sink.error(
                    "R314",
                    f"axis '{s.name}' has an empty interval [{lo}, {hi}]",
                    s.span,
                    "the lower bound must be less than the upper bound",
                )
            self.axes.append(A.AxisSpec(s.name, lo, hi, s.periodic, s.span))
        if len(pde.spaces) > MAX_AXES:
            self.sink.error(
                "R315",
                f"pde '{pde.name}' has {len(pde.spaces)} space axes",
                pde.spaces[MAX_AXES].span,
                "at most 3 space axes are supported",
            )
        if not pde.spaces:
            self.sink.error(
                "R319",
                f"pde '{pde.name}' declares no space axis",
                pde.span,
                "add e.g. 'space x in [0, 1]'",
            )
        for i, t in enumerate(pde.times):
            if i > 0:
                self.sink.error(
                    "R203", "a second 'time' line", t.span, "a problem has one time axis"
                )
                continue
            t0, t1 = self.number(t.t0, "a time bound"), self.number(t.t1, "a time bound")
            if not self.names.declare(t.name, t.span, "time"):
                continue
            if t0 is None or t1 is None:  # reported: the rest is checked as time-dependent
                self.time = A.TimeSpec(t.name, 0.0, 1.0, t.span)
                continue
            if t1 <= t0:
                self.sink.error(
                    "R314",
                    f"time interval [{t0}, {t1}] is empty",
                    t.span,
                    "the end time must be greater than the start time",
                )
            self.time = A.TimeSpec(t.name, t0, t1, t.span)
        for f in pde.fields:
            if self.names.declare(f.name, f.span, "field"):
                self.fields[f.name] = f
        if not pde.fields:
            self.sink.error(
                "R306", f"pde '{pde.name}' declares no field", pde.span, "add e.g. 'field u'"
            )
        earlier: dict[str, Any] = {}
        for index, p in enumerate(pde.params):
            uses = {s.name for s in p.value.value.free_symbols}
            # uses a param reported already, or one declared after it (R317 here)
            if uses & self.rejected or uses_later_param(p, list(pde.params), index, self.sink):
                value = None
            else:
                value = self.number(p.value, f"the value of param '{p.name}'", earlier)
            if not self.names.declare(p.name, p.span, "param"):
                continue
            if value is None:
                self.rejected.add(p.name)
                continue
            self.params[p.name] = A.ParamSpec(p.name, value, p.span)
            earlier[p.name] = sympy.Float(value)

    # ---- expressions ---------------------------------------------------------------------

    def time_lhs(self, expr: A.Expression) -> tuple[str, int] | None:
        """``dt(u)`` / ``dt(u, n)`` on a left-hand side -> (field, n); None if not a dt()."""
        e = expr.value
        if call_name(e) != "dt":
            return None
        span = ref_span(expr, "dt")
        if self.time is None:
            raise DslTypeError(
                "dt() in a steady problem (it has no 'time' line)",
                span,
                "add e.g. 'time t in [0, 1]', or write the steady equation",
                "R305",
            )
        _, args, kwargs = A.call_parts(e)
        if kwargs or len(args) not in (1, 2):
            raise DslTypeError(
                f"dt() takes 1 or 2 arguments, got {len(args)}",
                span,
                "write dt(u) or dt(u, 2)",
                "R301",
            )
        f = args[0]
        if not (isinstance(f, sympy.Symbol) and f.name in self.fields):
            raise DslTypeError(
                f"dt() must be applied to a field, not '{f}'",
                expr.span,
                names_hint("field", self.fields),
                "R305",
            )
        order = args[1] if len(args) == 2 else sympy.Integer(1)
        if order not in (1, 2):
            raise DslTypeError(
                f"time order must be 1 or 2, got {shown(order)}", expr.span, None, "R302"
            )
        return f.name, int(order)

    # ---- statements ----------------------------------------------------------------------

    def equations(self) -> list[A.FieldEquation]:
        timed: dict[str, A.FieldEquation] = {}
        steady: list[tuple[A.Equation, Any]] = []
        fieldless = False
        attempted: set[str] = set()
        for eq in self.pde.equations:
            head = eq.lhs.value
            if call_name(head) == "dt" and head.args and isinstance(head.args[0], sympy.Symbol):
                attempted.add(head.args[0].name)
            lhs = self.attempt(self.time_lhs, eq.lhs)
            if lhs is None and call_name(eq.lhs.value) == "dt":
                continue
            rhs = self.attempt(lambda eq=eq: self.scalar(self.canon(eq.rhs.value, eq.rhs), eq.rhs))
            if lhs is not None:
                f, order = lhs
                if f in timed:
                    self.sink.error(
                        "R307",
                        f"a second equation for dt({f})",
                        eq.span,
                        f"the first is at {timed[f].span}",
                    )
                elif rhs is not None:
                    timed[f] = A.FieldEquation.of(f, order, rhs, eq.span)
                continue
            if self.time is not None:
                self.sink.error(
                    "R305",
                    "every equation of a time-dependent problem has the form dt(u) = ...",
                    eq.lhs.span,
                    "move the time derivative to the left, or remove 'time'",
                )
                continue
            lhs_v = self.attempt(
                lambda eq=eq: self.scalar(self.canon(eq.lhs.value, eq.lhs), eq.lhs)
            )
            if lhs_v is not None and rhs is not None:
                if self.involves_a_field(lhs_v - rhs, eq, len(steady)):
                    steady.append((eq, lhs_v - rhs))
                else:
                    fieldless = True
        if self.time is not None:
            for f, decl in self.fields.items():
                if f not in timed and f not in attempted:
                    self.sink.error(
                        "R306", f"field '{f}' has no equation", decl.span, f"add 'dt({f}) = ...'"
                    )
            return [timed[f] for f in self.fields if f in timed]
        if len(self.pde.equations) != len(self.fields):
            self.sink.error(
                "R306",
                f"a steady problem needs one equation per field: "
                f"{len(self.fields)} field(s), {len(self.pde.equations)} "
                f"equation(s)",
                self.pde.span,
                "equations are matched to fields in declaration order",
            )
            return []
        if fieldless:  # reported; the remaining equations no longer match fields in order
            return []
        return [
            A.FieldEquation.of(f, 0, rhs, eq.span)
            for f, (eq, rhs) in zip(self.fields, steady, strict=False)
        ]

    def involves_a_field(self, residual: Any, eq: A.Equation, index: int) -> bool:
        """R306 for a steady equation without any field (``0 = 0``, ``sin(x) = 1``): it
        determines nothing, and the field it is matched to would be left undetermined."""
        if any(f.func.__name__ in self.fields for f in residual.atoms(AppliedUndef)):
            return True
        names = list(self.fields)
        which = f"the equation of field '{names[index]}'" if index < len(names) else "it"
        self.sink.error(
            "R306",
            f"this steady equation involves no field, so {which} determines no field",
            eq.span,
            "each steady equation must involve the field it is matched to "
            "(equations are matched to fields in declaration order)",
        )
        return False

    def initial(
        self, ini: A.Initial, seen: dict[tuple[str, int], Span | None]
    ) -> A.InitialSpec | None:
        if self.time is None:
            self.sink.error(
                "R309",
                "an initial line in a steady problem",
                ini.span,
                "initial conditions need a 'time' line",
            )
            return None
        lhs = ini.lhs.value
        if call_name(lhs) == "dt":
            f, order = self.time_lhs(ini.lhs) or ("", 0)
            if order != 1:
                raise DslTypeError(
                    "only dt(u) (first derivative) has an initial value", ini.lhs.span, None, "R309"
                )
        elif isinstance(lhs, sympy.Symbol) and lhs.name in self.fields:
            f, order = lhs.name, 0
        else:
            name = str(lhs)
            raise DslNameError(
                f"initial value for '{name}', which is not a field",
                ini.lhs.span,
                did_you_mean(name, self.fields) or names_hint("field", self.fields),
                "R208",
            )
        if (f, order) in seen:
            raise DslTypeError(
                f"a second initial line for {'dt(' + f + ')' if order else f}",
                ini.span,
                f"the first is at {seen[f, order]}",
                "R309",
            )
        seen[f, order] = ini.span
        expr = self.scalar(self.canon(ini.rhs.value, ini.rhs), ini.rhs)
        if expr.atoms(AppliedUndef) or expr.atoms(sympy.Derivative):
            raise DslTypeError(
                "an initial value cannot depend on the fields",
                ini.rhs.span,
                "use coordinates, params and constants",
                "R309",
            )
        assert self.time is not None
        expr = expr.xreplace({sympy.Symbol(self.time.name): sympy.Float(self.time.t0)})
        return A.InitialSpec(f, order, expr, ini.span)

    def initials(self, equations: list[A.FieldEquation]) -> list[A.InitialSpec]:
        seen: dict[tuple[str, int], Span | None] = {}
        out = [s for s in (self.attempt(self.initial, i, seen) for i in self.pde.initials) if s]
        if self.time is None:
            return out
        for eq in equations:
            for k in range(eq.time_order):
                if (eq.field, k) not in seen:
                    what = f"dt({eq.field})" if k else eq.field
                    self.sink.error(
                        "R308",
                        f"missing initial condition for {what}",
                        self.fields[eq.field].span,
                        f"add 'initial {what} = ...'",
                    )
        for (f, k), span in seen.items():
            equation = next((e for e in equations if e.field == f), None)
            if k == 1 and equation is not None and equation.time_order < 2:
                self.sink.error(
                    "R309",
                    f"initial dt({f}) given, but dt({f}) = ... is first order",
                    span,
                    "only second-order equations dt(u, 2) = ... take an initial dt(u)",
                )
        return out

    def sides(self, b: A.Boundary) -> list[tuple[str, str]]:
        if b.at_all:
            faces = [(a.name, s) for a in self.axes if not a.periodic for s in ("lo", "hi")]
            if not faces:
                self.sink.error(
                    "R310",
                    "'at all' names no sides: every axis is periodic",
                    b.span,
                    "remove the boundary line",
                )
            return faces
        out = []
        for side in b.sides:
            axis = next((a for a in self.axes if a.name == side.axis), None)
            if axis is None:
                self.sink.error(
                    "R201",
                    f"'{side.axis}' is not a space axis",
                    side.span,
                    did_you_mean(side.axis, self.axis_names),
                )
                continue
            if axis.periodic:
                self.sink.error(
                    "R310",
                    f"boundary condition on periodic axis '{axis.name}'",
                    side.span,
                    "periodic axes have no boundary; remove this side or the 'periodic'",
                )
                continue
            v = self.number(side.value, "a boundary position")
            if v is None:
                continue
            bounds = {"lo": axis.lo, "hi": axis.hi}
            hit = [k for k, f in bounds.items() if abs(f - v) <= 1e-12 * max(1.0, abs(f))]
            if not hit:
                self.sink.error(
                    "R311",
                    f"{axis.name} = {_shown(v)} is not a face of axis '{axis.name}'",
                    side.span,
                    f"the faces are {axis.name} = {axis.lo:g} and {axis.name} = {axis.hi:g}",
                )
                continue
            out.append((axis.name, hit[0]))
        return out

    def boundary(self, b: A.Boundary, seen: dict[tuple[str, str, str], Span | None]) -> list[Any]:
        lhs = expand_fluxes(self.scalar(self.canon(b.lhs.value, b.lhs), b.lhs), b.lhs.span)
        rhs = expand_fluxes(self.scalar(self.canon(b.rhs.value, b.rhs), b.rhs), b.rhs.span)
        found = sorted(set(self.fields) & {call_name(a) for a in lhs.atoms(AppliedUndef)})
        if len(found) != 1:
            raise DslTypeError(
                "the left-hand side of a boundary line must involve exactly one field"
                + (f" (found {', '.join(found)})" if found else ""),
                b.lhs.span,
                "write e.g. 'boundary u = 0 at x = 0'",
                "R312",
            )
        f = found[0]
        out = []
        for axis, side in self.sides(b):
            if (f, axis, side) in seen:
                self.sink.error(
                    "R318",
                    f"a second boundary condition for {f} at {axis} ({side} face)",
                    b.span,
                    f"the first is at {seen[f, axis, side]}; give each face one condition",
                )
                continue
            seen[f, axis, side] = b.span
            alpha, beta, data = self.linear_parts(f, axis, lhs - rhs, b)
            out.append(A.BoundarySpec(f, axis, side, alpha, beta, data, b.span))
        return out

    def linear_parts(self, f: str, axis: str, ex: Any, b: A.Boundary) -> tuple[Any, Any, Any]:
        u = self.field_fn(f)
        p, q = sympy.Dummy("u"), sympy.Dummy("du")
        ex = ex.xreplace({sympy.Derivative(u, sympy.Symbol(axis)): q}).xreplace({u: p})
        if ex.atoms(sympy.Derivative):
            raise DslTypeError(
                f"a boundary condition on {axis} may only use {f} and "
                f"diff({f}, {axis}) (found a tangential or higher derivative)",
                b.span,
                None,
                "R312",
            )
        if ex.atoms(AppliedUndef):
            raise DslTypeError(
                f"the boundary condition for {f} involves another field", b.span, None, "R312"
            )
        alpha, beta = sympy.diff(ex, p), sympy.diff(ex, q)
        if alpha.has(p, q) or beta.has(p, q):
            raise DslTypeError(
                f"the boundary condition is not linear in {f} and diff({f}, {axis})",
                b.span,
                f"write it as a*{f} + b*diff({f}, {axis}) = g",
                "R312",
            )
        if alpha == 0 and beta == 0:
            raise DslTypeError(
                f"the boundary condition does not involve {f} on the face", b.span, None, "R312"
            )
        return alpha, beta, -ex.xreplace({p: 0, q: 0})

    def steady_first_order(self, equations: list[A.FieldEquation]) -> set[tuple[str, str]]:
        """R329 for each field that a steady problem differentiates only once along a bounded
        axis: central differences couple a cell to its neighbours but not to itself, so odd and
        even cells split apart (one condition leaves the system singular, two over-determine
        the ODE); upwinding, which would fix it, is done only in time-dependent problems. The
        pairs returned (also for a pinn, which is fine with one condition) need no condition on
        both faces."""
        if self.time is not None:
            return set()
        methods = {s.method for s in self.pde.solves} or {"fd"}
        out: set[tuple[str, str]] = set()
        for a in self.axes:
            if a.periodic:
                continue
            for f in differentiated_once(equations, a.name):
                out.add((f, a.name))
                if "fd" not in methods:  # a pinn has no grid to split; one condition will do
                    continue
                self.sink.error(
                    "R329",
                    f"a steady problem that differentiates '{f}' only once along '{a.name}' "
                    "(a first-order equation in space) cannot be solved by fd: central "
                    "differences split its odd and even cells apart",
                    self.fields[f].span,
                    f"make it time dependent (dt({f}) = ...) and run it to its steady state, "
                    f"where a transported field takes one condition at its inflow face, or add "
                    f"diffusion (+ eps * diff({f}, {a.name}, 2))",
                )
        return out

    def bounded_high_order(self, equations: list[A.FieldEquation]) -> None:
        """R333 for a derivative of order 3 or more along a bounded axis: a face takes one
        condition per field, which determines a problem of order at most 2 along the axis
        (lap(lap(u)) needs two per face; with one, the ghost extrapolation would stand in for
        the missing condition, and the scheme is unstable or wrong, with nothing said)."""
        bounded = {sympy.Symbol(a.name) for a in self.axes if not a.periodic}
        for eq in equations:
            for d in sorted(eq.rhs.atoms(sympy.Derivative), key=sympy.default_sort_key):
                for var, count in d.variable_count:
                    if var in bounded and count >= 3:
                        self.sink.error(
                            "R333",
                            f"a derivative of order {count} along '{var}', which is not "
                            "periodic: its faces take one condition each, which determine at "
                            "most a second-order problem along it",
                            eq.span,
                            "make the axis periodic; a steady problem may be written as a "
                            "system of second-order equations, each field with its own "
                            "conditions (-lap(u) = w, -lap(w) = f for the biharmonic)",
                        )
                        return

    def boundaries(self, equations: list[A.FieldEquation]) -> list[A.BoundarySpec]:
        seen: dict[tuple[str, str, str], Span | None] = {}
        out: list[A.BoundarySpec] = []
        failed = False
        reported = len(self.sink.items)
        for b in self.pde.boundaries:
            specs = self.attempt(self.boundary, b, seen)
            failed |= specs is None
            out.extend(specs or [])
        # a boundary line with an error (an unknown face, x = 0.5) may have meant a face that
        # now looks uncovered: R313 would send the user to add a second line for it
        failed |= len(self.sink.items) > reported
        if failed or self.rejected:  # unknown faces or param values: no R313 guesses
            return out
        needed: set[tuple[str, str]] = set()
        for eq in equations:
            for d in eq.rhs.atoms(sympy.Derivative):
                name = call_name(d.expr)
                if name in self.fields:
                    needed |= {(name, str(v)) for v in d.variables}
        params = {p.name: p.default for p in self.params.values()}
        judged = {
            (f, face.axis, face.side): face
            for face in open_faces(equations, self.axes, self.time, params, seen)
            for f in face.missing
        }
        first_order = self.steady_first_order(equations)
        self.bounded_high_order(equations)
        told: set[tuple[str, str]] = set()  # faces of a system already reported once
        for a in self.axes:
            for f in self.fields:
                if a.periodic or (f, a.name) not in needed or (f, a.name) in first_order:
                    continue
                for side, at in (("lo", a.lo), ("hi", a.hi)):
                    if (f, a.name, side) in seen:
                        continue
                    face = judged.get((f, a.name, side))
                    if face is not None and not face.reason:
                        continue  # an outflow face: its ghosts continue the interior
                    if face is not None and len(face.missing) > 1:
                        # a system: the entering characteristics need conditions on some of
                        # its fields, not on each (one per field would be R322)
                        if (a.name, side) not in told:
                            told.add((a.name, side))
                            self.sink.error(
                                "R313",
                                f"fields {', '.join(face.missing)} have no boundary condition "
                                f"at {a.name} = {at:g}: {face.reason}",
                                self.fields[f].span,
                                "add one condition per entering characteristic, on any of "
                                f"{', '.join(face.missing)} (e.g. 'boundary {f} = ... at "
                                f"{a.name} = {at:g}'); more than that is R322",
                            )
                        continue
                    message = (
                        f"field '{f}' is differentiated along '{a.name}' but has no "
                        f"boundary condition at {a.name} = {at:g}"
                    )
                    self.sink.error(
                        "R313",
                        message + (f": {face.reason}" if face is not None else ""),
                        self.fields[f].span,
                        f"add 'boundary {f} = ... at {a.name} = {at:g}'"
                        + (
                            " (a transported field may go without one only on a face that "
                            "every characteristic leaves)"
                            if face is not None
                            else ""
                        ),
                    )
        for axis, side, have, room in over_specified(equations, self.axes, self.time, params, seen):
            at = next(a.lo if side == "lo" else a.hi for a in self.axes if a.name == axis)
            where = f"{axis} = {at:g}"
            if room == 0:
                owned = "have conditions" if len(have) > 1 else "has a condition"
                message = (
                    f"{' and '.join(have)} {owned} at {where}, where no characteristic "
                    "enters: the wave leaving there cannot meet it, and the scheme would "
                    "reflect it back into the domain"
                )
                hint = f"remove the condition{'s' if len(have) > 1 else ''} at {where}"
            else:
                message = (
                    f"{', '.join(have)} have {len(have)} conditions at {where}, where only {room} "
                    f"characteristic{'s enter' if room > 1 else ' enters'}: the waves leaving "
                    "there cannot meet the others, and the scheme would reflect them"
                )
                hint = f"keep {room} condition{'s' if room > 1 else ''} at {where}"
            self.sink.error(
                "R322",
                message,
                seen[have[-1], axis, side],
                hint + " (a face takes one condition per characteristic that enters through it)",
            )
        return out

    def check(self) -> A.PdeProblem | None:
        before = len(self.sink.items)
        self.declare()
        equations = self.equations()
        initials = self.initials(equations)
        boundaries = self.boundaries(equations)
        self.moving_velocity_conditions(equations, boundaries)
        solves = check_solves(
            self.pde.solves, METHOD_OPTIONS, self.env, self.sink, f"pde '{self.pde.name}'"
        )
        for s in solves:
            if s.method == "pinn" and isinstance(s.options.get("net"), A.Call):
                check_instance(s.options["net"], self.env, self.sink)
            if s.method == "pinn" and "optimizer" in s.options:
                check_optimizer(
                    s.options["optimizer"], s.option_spans.get("optimizer"), self.env, self.sink
                )
            scheme = str(s.options.get("scheme", ""))
            if s.method == "fd" and scheme in ("cn", "imex") and s.options.get("dt") == "auto":
                self.sink.error(  # as every run would report it (runtime/api.py)
                    "R512",
                    f"dt = auto picks a stable step for explicit schemes; scheme {scheme} is "
                    "stable at any step, so its size is the accuracy you choose",
                    s.option_spans.get("dt", s.span),
                    "give dt (e.g. dt = 1e-3), or use an explicit scheme with dt = auto",
                )
            if self.time is None and s.method == "fd":
                for name in ("scheme", "dt", "every"):
                    if name in s.options:
                        self.sink.error(
                            "R206",
                            f"option '{name}' is for time-dependent problems, and pde "
                            f"'{self.pde.name}' is steady (it has no time line)",
                            s.option_spans.get(name, s.span),
                            "remove it (a steady solve takes cells, order, tol, maxiter, dtype)",
                        )
            if self.time is None and s.method == "pinn" and "initial_points" in s.options:
                self.sink.error(
                    "R206",
                    f"option 'initial_points' is for time-dependent problems, and pde "
                    f"'{self.pde.name}' is steady (it has no time line)",
                    s.option_spans.get("initial_points", s.span),
                    "remove it: a steady pinn has interior and boundary points only",
                )
            cells = s.options.get("cells")
            if isinstance(cells, list) and len(cells) != len(self.axes):
                self.sink.error(
                    "R316",
                    f"cells lists {len(cells)} sizes for {len(self.axes)} axes",
                    s.option_spans["cells"],
                    "give one number, or one per axis",
                )
            elif cells is not None:
                self.too_few_cells(cells, s.option_spans["cells"])
        if not self.pde.solves:
            solves = [A.SolveSpec("fd", {}, self.pde.span)]
        if len(self.sink.items) > before:
            return None
        return A.PdeProblem(
            self.pde.name,
            tuple(self.axes),
            self.time,
            tuple(self.fields),
            tuple(self.params.values()),
            tuple(equations),
            tuple(boundaries),
            tuple(initials),
            tuple(solves),
            self.pde.span,
        )

    def moving_velocity_conditions(
        self, equations: list[A.FieldEquation], boundaries: list[A.BoundarySpec]
    ) -> None:
        """R416 (as the lowering reports it) where the velocity dt(u) of a second-order
        equation is differentiated in space and u has a condition whose coefficient depends on
        time: v's condition, u's differentiated in time, would then read u at the face."""
        if self.time is None:
            return
        tsym = sympy.Symbol(self.time.name)
        spatial = {
            call_name(d.expr)
            for eq in equations
            for d in eq.rhs.atoms(sympy.Derivative)
            if call_name(d.expr) is not None
        }
        for spec in boundaries:
            if A.velocity(spec.field).__name__ not in spatial:
                continue
            if any(sympy.sympify(c).has(tsym) for c in (spec.alpha, spec.beta)):
                self.sink.error(
                    "R416",
                    f"the velocity dt({spec.field}) is differentiated in space, so it needs the "
                    f"time derivative of {spec.field}'s condition here, whose coefficient "
                    f"depends on {tsym} (that derivative would read the field at the face): not "
                    "compiled yet",
                    spec.span,
                    "give the condition a coefficient that does not depend on time, or write "
                    "the equation as a first-order system dt(u) = v, dt(v) = ... with v's own "
                    "conditions",
                )

    def too_few_cells(self, cells: int | list[int], span: Span | None) -> None:
        """R504, as the run reports it (runtime/api.py), for a grid with one cell along an
        axis: a centred difference needs a neighbour on each side."""
        sizes = cells if isinstance(cells, list) else [cells] * len(self.axes)
        if any(n < 2 for n in sizes):
            self.sink.error(
                "R504",
                f"cells must be one integer >= 2 or a list of {len(self.axes)} of them; "
                f"got {sizes}",
                span,
            )


def check_pde(pde: A.Pde, env: ModuleEnv, sink: DiagnosticSink) -> A.PdeProblem | None:
    """The checked form of a pde block, or None if errors were reported to ``sink``."""
    return PdeChecker(pde, env, sink).check()


def _shown(v: float) -> str:
    """``v`` as briefly as it reads back exactly (``:g`` showed 1.0000000001 as 1)."""
    short = f"{v:g}"
    return short if float(short) == v else repr(v)
