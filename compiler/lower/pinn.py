"""A PDE problem solved by a physics-informed network (``solve pinn(...)``) -> one loss Program.

The network maps a point ``(x..., t)`` to every field's value. A field's derivatives with
respect to the point are forward-mode tangents of the network's own IR: ``jvp_program`` along a
direction input per coordinate, nested for higher orders (``u_xx`` is the tangent of the tangent).
The PDE residual, the boundary and the initial conditions are then ordinary Maps over those
values, the loss is the sum of their mean squares, and its gradient with respect to the weights
is ``vjp_program`` over all of it: reverse over forward, from the one rule table.

Point sets are Inputs named ``pts:<set>`` (``interior``, ``initial``, ``<axis>.lo``/``.hi``),
each with the direction Inputs ``dir:<set>:<j>`` (rows of the unit vector e_j) its derivatives
need; ``pick:<k>`` selects field k of the network's output, ``coord:<j>`` coordinate j of a point.
The runtime samples the sets and supplies those constant arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sympy
from sympy.core.function import AppliedUndef

from ...dsl import ast as A
from ...dsl.diagnostics import DslTypeError, shape_text
from ...dsl.flux import expand_fluxes
from ...dsl.resolve import ModuleEnv
from ..ir.adjoint_ops import BroadcastInDim
from ..ir.ops import Contract, Extent, Input, Reduce, placeholder
from ..ir.program import Builder, Program, copy_op, rebuild
from ..rules import jvp_program, make
from .network import TensorLowering, Value
from .train import BATCH, LoweredTensors, NetBinding, bind_net, lower_forward


@dataclass(frozen=True)
class PointSet:
    """Where a set's points lie: ``interior``, ``initial`` (t = t0), or a face of an axis."""

    name: str
    kind: str  # "interior" | "initial" | "face"
    axis: int | None = None
    side: str | None = None
    partner: str | None = None  # a periodic face's opposite face (same other coordinates)


@dataclass(frozen=True)
class LoweredPinn:
    loss: LoweredTensors
    forward: LoweredTensors
    binding: NetBinding
    coords: tuple[str, ...]  # the network's input coordinates: the axes, then time
    sets: dict[str, PointSet]
    terms: tuple[str, ...]  # the loss terms, in the order of the outputs term:<i>


class _Fields:
    """Values of the fields and of their derivatives on one point set, built on demand."""

    def __init__(self, low: TensorLowering, base: Program, pts: str, nf: int) -> None:
        self.low, self.base, self.pts, self.nf = low, base, pts, nf
        self.cache: dict[tuple[int, tuple[int, ...]], Value] = {}

    def value(self, k: int, path: tuple[int, ...]) -> Value:
        """Field k differentiated along the coordinates in ``path`` (in order)."""
        key = (k, tuple(sorted(path)))
        if key not in self.cache:
            prog = rebuild(
                replace(self.base, outputs={"f": self.base.outputs[f"field{k}"]}), copy_op
            )
            for j in key[1]:
                prog = _tangent(prog, self.pts, j)
            self.cache[key] = Value(_splice(self.low.b, prog)["f"], False)
        return self.cache[key]


def _tangent(prog: Program, pts: str, j: int) -> Program:
    """The derivative of the output ``f`` along coordinate j: a jvp whose tangent input is the
    direction ``dir:<set>:<j>``. An output that no longer reads the point (a derivative of a
    net affine in it) has derivative zero, of the output's shape."""
    if not any(isinstance(op, Input) and op.name == pts for op in prog.ops):
        b = Builder(prog.grid)
        f = _splice(b, prog)["f"]
        b.output("f", b.map(sympy.Integer(0), (f,)))
        return b.build()
    jvp = jvp_program(prog, [pts])
    direction = f"dir:{pts.removeprefix('pts:')}:{j}"

    def rename(b: Builder, op: Any, args: tuple[int, ...]) -> int:
        if isinstance(op, Input) and op.name == f"dot:{pts}":
            return b.add(replace(op, name=direction))
        return copy_op(b, op, args)

    renamed = rebuild(jvp, rename)
    return replace(renamed, outputs={"f": renamed.outputs["dot:f"]})


def _splice(b: Builder, prog: Program) -> dict[str, int]:
    """Copy ``prog`` into ``b`` (interning merges what they share); its outputs' ids in b."""
    new: dict[int, int] = {}
    for i, op in enumerate(prog.ops):
        new[i] = copy_op(b, op, tuple(new[a] for a in op.args))
    return {name: new[v] for name, v in prog.outputs.items()}


def _mean_square(low: TensorLowering, v: Value, rows: Value) -> int:
    """The mean over a point set's rows of v^2; a v that simplified to one value for all of
    them (a constant residual) counts once per row, as the points it stands for."""
    n = low.shape(rows)[:1]
    if low.shape(v)[:1] != n:  # no axis of points: one value for all of them
        shape = (*n, *low.shape(v))
        dims = tuple(range(1, len(shape)))
        v = Value(make(low.b, BroadcastInDim, (v.id,), shape=shape, dims=dims), v.batched)
    sq = low.map(placeholder(0) ** 2, [v], None)
    shape = low.shape(sq)
    total = make(low.b, Reduce, (sq.id,), op="sum", axes=tuple(range(len(shape))))
    count = low.b.add(Extent(dims=tuple(shape), dtype=low.dtype))
    return low.map(
        placeholder(0) / placeholder(1), [Value(total, False), Value(count, False)], None
    ).id


def _periodic_matches(problem: A.PdeProblem, axis: str) -> int:
    """How many derivatives (from the 0th) the loss matches across a periodic axis's faces:
    every one below the highest order along it, at least u and u'. With fewer, an equation of
    order n has exact minimisers that differ by solutions of its homogeneous equation which
    are not periodic (diff(u, x, 4) + u = f matched in u and u' only has a two-parameter
    family of them)."""
    var = sympy.Symbol(axis)
    highest = 2
    for eq in problem.equations:
        for d in eq.rhs.atoms(sympy.Derivative):
            highest = max([highest, *(int(c) for v, c in d.variable_count if v == var)])
    return highest


def lower_pinn(
    problem: A.PdeProblem, options: dict[str, Any], env: ModuleEnv, dtype: str
) -> LoweredPinn:
    """The loss of a pinn solve: residuals at interior points, conditions on the faces and at
    t0, each a mean square, summed."""
    axes = [a.name for a in problem.axes]
    coords = (*axes, *([problem.time.name] if problem.time else []))
    d, nf = len(coords), len(problem.fields)
    low = TensorLowering(dtype)
    binding = _net(options, env, low, nf, problem)

    sets: dict[str, PointSet] = {"interior": PointSet("interior", "interior")}
    if problem.time is not None:
        sets["initial"] = PointSet("initial", "initial")
    for b in problem.boundaries:
        j = axes.index(b.axis)
        sets.setdefault(f"{b.axis}.{b.side}", PointSet(f"{b.axis}.{b.side}", "face", j, b.side))
    for j, a in enumerate(problem.axes):
        if a.periodic:
            sets[f"{a.name}.lo"] = PointSet(f"{a.name}.lo", "face", j, "lo", f"{a.name}.hi")
            sets[f"{a.name}.hi"] = PointSet(f"{a.name}.hi", "face", j, "hi", f"{a.name}.lo")

    # the network on each set, with its fields picked out (one base Program per set)
    fields: dict[str, _Fields] = {}
    coord_values: dict[str, list[Value]] = {}
    inputs: list[tuple[str, tuple]] = []
    for s in sets:
        pts = f"pts:{s}"
        # paired periodic faces hold the same points (but one coordinate): one size for both
        rows = min(s, sets[s].partner or s)
        shape = (f"n_{rows.replace('.', '_')}", d)
        inputs.append((pts, shape))
        sub = TensorLowering(dtype)
        sub.weights = low.weights
        sub.fns = low.fns
        x = Value(sub.input(pts, shape), True)
        y = sub.apply_network(
            binding.network, binding.env, [x], binding.options, f"{binding.name}.", binding.span
        )
        if sub.sample_shape(y) != (nf,):
            raise DslTypeError(
                f"the network gives {shape_text(sub.sample_shape(y))} values per point, but the "
                f"problem has {nf} field(s) ({', '.join(problem.fields)}): one output each",
                binding.span,
                "set its output size (n_out) to the number of fields",
                "R351",
            )
        for k in range(nf):
            if nf == 1:
                col = make(sub.b, Reduce, (y.id,), op="sum", axes=(1,))
            else:
                pick = sub.input(f"pick:{k}", (nf,))
                col = make(sub.b, Contract, (y.id, pick), spec="zi,i->z")
            sub.b.output(f"field{k}", col)
        fields[s] = _Fields(low, sub.b.build(), pts, nf)
        xin = Value(low.input(pts, shape), False)
        coord_values[s] = [
            Value(
                make(low.b, Contract, (xin.id, low.input(f"coord:{j}", (d,))), spec="zi,i->z"),
                False,
            )
            for j in range(d)
        ]

    params = {p.name: Value(low.input(p.name, ()), False) for p in problem.params}
    field_index = {f: k for k, f in enumerate(problem.fields)}
    t_index = len(axes)
    # the velocity dt(u) of a second-order field (a damped wave's - g * dt(u)) is the network's
    # own time derivative of u: one more tangent along t, like every other derivative
    fields_of: dict[str, tuple[int, tuple[int, ...]]] = {f: (k, ()) for f, k in field_index.items()}
    for eq in problem.equations:
        if eq.time_order == 2:
            fields_of[A.velocity(eq.field).__name__] = (field_index[eq.field], (t_index,))

    def expression(e: sympy.Expr, s: str, span: Any) -> Value:
        """A SymPy expression of fields, their spatial derivatives, coordinates, time and
        params, on point set s."""
        args: list[Value] = []

        def hold(v: Value) -> sympy.Symbol:
            if v not in args:
                args.append(v)
            return placeholder(args.index(v))

        def walk(node: sympy.Basic) -> sympy.Basic:
            if isinstance(node, sympy.Derivative):
                k, path = fields_of[node.expr.func.__name__]
                for var, count in node.variable_count:
                    path += (coords.index(var.name),) * int(count)
                return hold(fields[s].value(k, path))
            if isinstance(node, AppliedUndef) and node.func.__name__ in fields_of:
                return hold(fields[s].value(*fields_of[node.func.__name__]))
            if isinstance(node, sympy.Symbol):
                if node.name in coords:
                    return hold(coord_values[s][coords.index(node.name)])
                if node.name in params:
                    return hold(params[node.name])
                raise DslTypeError(f"unknown name '{node.name}'", span, None, "R201")
            if not node.args:
                return node
            return node.func(*(walk(a) for a in node.args))

        body = walk(e if isinstance(e, sympy.Basic) else sympy.Number(e))
        if not args:
            return low.const(float(body))
        return low.map(body, args, span)

    terms: list[tuple[str, int]] = []
    for eq in problem.equations:
        k = field_index[eq.field]
        # the network's own derivatives: the chain rule, whose delta functions at a jumping
        # coefficient (kept by the flux form of fd) have no pointwise value (R328)
        rhs = expression(expand_fluxes(eq.discretised, eq.span), "interior", eq.span)
        if eq.time_order == 0:
            residual = rhs
        else:
            lhs = fields["interior"].value(k, (t_index,) * eq.time_order)
            residual = low.map(placeholder(0) - placeholder(1), [lhs, rhs], eq.span)
        points = fields["interior"].value(k, ())
        terms.append((f"equation for {eq.field}", _mean_square(low, residual, points)))
    for b in problem.boundaries:
        s, k, j = f"{b.axis}.{b.side}", field_index[b.field], axes.index(b.axis)
        u = fields[s].value(k, ())
        du = fields[s].value(k, (j,))
        alpha, beta, data = (expression(e, s, b.span) for e in (b.alpha, b.beta, b.data))
        body = placeholder(0) * placeholder(1) + placeholder(2) * placeholder(3) - placeholder(4)
        r = low.map(body, [alpha, u, beta, du, data], b.span)
        terms.append((f"boundary {b.field} at {s}", _mean_square(low, r, u)))
    for j, a in enumerate(problem.axes):
        if a.periodic:
            for k in range(nf):
                for m in range(_periodic_matches(problem, a.name)):
                    lo = fields[f"{a.name}.lo"].value(k, (j,) * m)
                    hi = fields[f"{a.name}.hi"].value(k, (j,) * m)
                    r = low.map(placeholder(0) - placeholder(1), [lo, hi], a.span)
                    what = "periodic " + problem.fields[k] + "'" * m
                    points = fields[f"{a.name}.lo"].value(k, ())
                    terms.append((f"{what} along {a.name}", _mean_square(low, r, points)))
    for ini in problem.initials:
        if problem.time is None:
            break
        k = field_index[ini.field]
        u = fields["initial"].value(k, (t_index,) * ini.time_derivative)
        r = low.map(
            placeholder(0) - placeholder(1),
            [u, expression(ini.expr, "initial", ini.span)],
            ini.span,
        )
        what = f"dt({ini.field})" if ini.time_derivative else ini.field
        points = fields["initial"].value(k, ())
        terms.append((f"initial {what}", _mean_square(low, r, points)))
    total = low.map(
        sympy.Add(*(placeholder(i) for i in range(len(terms)))),
        [Value(t, False) for _, t in terms],
        None,
    )
    for i, (_, t) in enumerate(terms):
        low.b.output(f"term{i}", t)
    low.b.output("loss", total.id)
    prog = low.b.build()
    given: dict[str, tuple] = {}
    for op in prog.ops:
        if isinstance(op, Input) and op.name not in low.weights:
            given.setdefault(op.name, op.shape)
    loss = LoweredTensors(prog, dict(low.weights), tuple(given.items()), dtype)
    forward = lower_forward(
        binding.network,
        binding.env,
        binding.options,
        {binding.network.inputs[0].name: (d,)},
        dtype,
        prefix=f"{binding.name}.",
        span=binding.span,
    )
    return LoweredPinn(loss, forward, binding, coords, sets, tuple(n for n, _ in terms))


def _net(
    options: dict[str, Any], env: ModuleEnv, low: TensorLowering, nf: int, problem: A.PdeProblem
) -> NetBinding:
    """The solve line's ``net = ...`` as a net named ``net``, with ``n_out`` set to the number
    of fields when the network has that option and the line does not give it."""
    value = options.get("net")
    line = next((s for s in problem.solves if s.method == "pinn"), None)
    span = line.span if line is not None else problem.span
    if value is None:
        raise DslTypeError(
            "solve pinn(...) needs a network: net = nn.mlp(width = 32)", span, None, "R351"
        )
    decl = A.NetDecl(
        "net",
        value if isinstance(value, A.Call) else A.Expression(sympy.Symbol(str(value))),
        getattr(value, "span", span),
    )
    binding = bind_net(decl, env, low)
    if len(binding.network.inputs) != 1:
        raise DslTypeError(
            f"a pinn network takes one input (the point), '{binding.network.name}' takes "
            f"{len(binding.network.inputs)}",
            decl.span,
            None,
            "R351",
        )
    opts = dict(binding.options)
    if "n_out" in {o.name for o in binding.network.options} and "n_out" not in opts:
        opts["n_out"] = sympy.Integer(nf)
    return replace(binding, options=opts)


__all__ = ["BATCH", "LoweredPinn", "PointSet", "lower_pinn"]
