"""Property tests of the rule table (compiler.rules): each jvp against central differences of the
reference interpreter, each transpose by the dot-product test <A x, y> = <x, A^T y>, and the two
sweeps on the discretised right-hand sides of real PDEs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from ritz.compiler.ir.adjoint_ops import BroadcastInDim, ShiftTranspose
from ritz.compiler.ir.evaluate import evaluate
from ritz.compiler.ir.ops import LEAVES, Broadcast, Diff, Input, Map, Param, Reduce, Shift
from ritz.compiler.ir.ops import placeholder as a
from ritz.compiler.ir.program import BoundaryRule, Builder, FaceRule, Grid, Program
from ritz.compiler.lower.pde import lower_pde
from ritz.compiler.passes.discretise import discretise
from ritz.compiler.passes.manager import PassContext
from ritz.compiler.passes.simplify import simplify
from ritz.compiler.rules import RULES, homogeneous_rule, jvp_program, vjp_program
from ritz.compiler.symbolic import extrapolation_degree
from ritz.dsl import load_text

X, Y, T, K = sympy.symbols("x y t k")
# k is a Robin beta below: Robin ghosts have a pole (3*alpha*h = +-8*beta at degree 2), avoid it
PARAMS = {"k": 0.37, "nu": 0.7}
CELLS = {1: (7,), 2: (6, 5)}  # unequal extents catch axis mix-ups; >= the largest degree (4)
DEGREES = sorted({extrapolation_degree(o, d) for o in (2, 4) for d in (1, 2)})  # 1, 2, 3, 4

# Central differences with step EPS have truncation error ~EPS^2 |f'''| ~ 1e-12 and rounding
# error ~1e-16 |f| / EPS ~ 1e-10 |f|; 1e-6 relative to the size of the values leaves a wide
# margin (stencils carry 1/h^2 factors) while any wrong rule is off by O(1).
EPS = 1e-6
FD_RTOL = 1e-6
# Both sides of the dot-product test are the same products summed in different orders, so
# they differ by rounding only (~n * 1e-16 of ||A x|| ||y||); 1e-12 is STYLE.md's float64 aim.
DOT_RTOL = 1e-12


def grid_args(prog: Program) -> dict:
    nd = prog.grid.ndim
    return {"lo": [0.0, -1.0][:nd], "h": [1 / 7, 2 / 5][:nd], "n": CELLS[nd]}


def run(prog: Program, inputs: dict, params: dict | None = None) -> dict:
    return evaluate(prog, inputs, params or PARAMS, t=0.4, dt=0.01, grid=grid_args(prog))


def random_inputs(prog: Program, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Values in [-1, 1] for every Input of ``prog``, and the parameters as 0-d arrays."""
    dims = dict(zip(prog.grid.shape, CELLS[prog.grid.ndim], strict=True))
    out = {k: np.asarray(v) for k, v in PARAMS.items()}
    for op in prog.ops:
        if isinstance(op, Input):
            out[op.name] = rng.uniform(-1, 1, [dims.get(d, d) for d in op.shape])
    return out


def split(values: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(inputs, params) for evaluate()."""
    params = {k: float(v) for k, v in values.items() if k in PARAMS}
    return {k: v for k, v in values.items() if k not in PARAMS}, params


def check_jvp(prog: Program, wrt: list[str], seed: int = 0) -> float:
    """max |jvp - central difference| over the outputs, relative to the size of the values."""
    rng = np.random.default_rng(seed)
    x = random_inputs(prog, rng)
    dx = {w: rng.uniform(-1, 1, np.shape(x[w])) for w in wrt}
    inputs, params = split(x)
    tangent = run(jvp_program(prog, wrt), {**inputs, **{f"dot:{w}": dx[w] for w in wrt}}, params)
    side = [
        run(prog, *split({k: v + s * EPS * dx[k] if k in dx else v for k, v in x.items()}))
        for s in (1, -1)
    ]
    worst = 0.0
    for name, plus in side[0].items():
        fd = (plus - side[1][name]) / (2 * EPS)
        jv = tangent[f"dot:{name}"]
        scale = max(1.0, float(np.abs(plus).max()), float(np.abs(jv).max()))
        worst = max(worst, float(np.abs(fd - jv).max()) / scale)
    assert worst < FD_RTOL, worst
    return worst


def check_transpose(prog: Program, wrt: list[str], seed: int = 1) -> float:
    """|<J dx, y> - <dx, J^T y>| / (||J dx|| ||y||); J from jvp_program, J^T from vjp_program."""
    rng = np.random.default_rng(seed)
    x = random_inputs(prog, rng)
    inputs, params = split(x)
    dx = {w: rng.uniform(-1, 1, np.shape(x[w])) for w in wrt}
    jdx = run(jvp_program(prog, wrt), {**inputs, **{f"dot:{w}": dx[w] for w in wrt}}, params)
    y = {k.removeprefix("dot:"): rng.uniform(-1, 1, np.shape(v)) for k, v in jdx.items()}
    jty = run(vjp_program(prog, wrt), {**inputs, **{f"bar:{k}": v for k, v in y.items()}}, params)
    lhs = sum(float(np.sum(jdx[f"dot:{k}"] * v)) for k, v in y.items())
    rhs = sum(float(np.sum(dx[w] * jty[f"bar:{w}"])) for w in wrt)
    norm = np.sqrt(sum(np.sum(v**2) for v in jdx.values()) * sum(np.sum(v**2) for v in y.values()))
    err = abs(lhs - rhs) / norm
    assert err < DOT_RTOL, (lhs, rhs, err)
    return err


def one_op(
    ndim: int, build: Callable[[Builder, int], int], rules: dict[str, BoundaryRule] | None = None
) -> Program:
    """The Program ``y = build(b, u)`` over a grid field ``u``."""
    b = Builder(Grid(("x", "y")[:ndim], (False,) * ndim, "t"))
    b.boundaries = dict(rules or {})
    u = b.add(Input(name="u", shape=b.grid.shape))
    b.output("y", build(b, u))
    return b.build()


# -- Shift and ShiftTranspose -----------------------------------------------------------------


def face(kind: str, degree: int, ndim: int) -> FaceRule:
    """Inhomogeneous conditions whose data (and Robin alpha) vary along the face in 2-D."""
    along = Y**2 if ndim == 2 else sympy.Integer(0)
    one, zero = sympy.Integer(1), sympy.Integer(0)
    if kind == "dirichlet":
        return FaceRule(one, zero, sympy.sin(T + X) + along, degree)
    if kind == "neumann":
        return FaceRule(zero, one, sympy.cos(X) * T + along, degree)
    return FaceRule(1 + along, K, X + T, degree)  # robin, beta a parameter


def rules_for(kind: str, degree: int, ndim: int, axis: int) -> dict[str, BoundaryRule]:
    if kind == "zero":
        return {}
    faces: list[object] = ["periodic"] * ndim
    if kind != "periodic":
        faces[axis] = (face(kind, degree, ndim),) * 2
    return {"u": BoundaryRule("u", tuple(faces))}


def shift(axis: int, offset: int, key: str, cls: type = Shift) -> Callable[[Builder, int], int]:
    return lambda b, u: b.add(
        cls(args=(u,), shape=b.grid.shape, axis=axis, offset=offset, boundary=key)
    )


SHIFT_CASES = [
    (kind, degree, ndim, axis, offset)
    for kind in ("dirichlet", "neumann", "robin", "periodic", "zero")
    for degree in (DEGREES if kind in ("dirichlet", "neumann", "robin") else [2])
    for ndim, axis in ((1, 0), (2, 0), (2, 1))
    for offset in (-2, -1, 1, 2)
]


@pytest.mark.parametrize(("kind", "degree", "ndim", "axis", "offset"), SHIFT_CASES)
def test_shift(kind: str, degree: int, ndim: int, axis: int, offset: int) -> None:
    rules = rules_for(kind, degree, ndim, axis)
    prog = one_op(ndim, shift(axis, offset, "u" if rules else ""), rules)
    check_jvp(prog, ["u"])
    check_transpose(prog, ["u"])


@pytest.mark.parametrize("kind", ["dirichlet", "neumann", "robin", "periodic"])
@pytest.mark.parametrize("offset", [-2, -1, 1, 2])
def test_shift_transpose_op(kind: str, offset: int) -> None:
    rules = {k: homogeneous_rule(r) for k, r in rules_for(kind, 4, 2, 1).items()}
    prog = one_op(2, shift(1, offset, "u", ShiftTranspose), rules)
    check_jvp(prog, ["u"])
    check_transpose(prog, ["u"])


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("dirichlet", ShiftTranspose),
        ("robin", ShiftTranspose),
        ("periodic", Shift),
        ("zero", Shift),
    ],
)
def test_shift_transpose_is_opposite_shift_or_fold(kind: str, expected: type) -> None:
    rules = rules_for(kind, 2, 1, 0)
    key = "u" if rules else ""
    adj = vjp_program(one_op(1, shift(0, 1, key), rules), ["u"])
    op = adj.ops[adj.outputs["bar:u"]]
    assert type(op) is expected
    assert op.offset == (1 if expected is ShiftTranspose else -1)
    if key:  # the adjoint never sees boundary data, only the homogeneous rule
        rule = adj.boundaries[op.boundary]
        assert all(f == "periodic" or f[0].data == 0 for f in rule.faces)


def test_shift_chain_2d_robin_nonlinear() -> None:
    rules = rules_for("robin", 3, 2, 0)
    rules["u"] = BoundaryRule("u", (rules["u"].faces[0], (face("neumann", 2, 2),) * 2))

    def build(b: Builder, u: int) -> int:
        s = shift(1, -2, "u")(b, shift(0, 1, "u")(b, u))
        return b.map(sympy.sin(a(0)) * a(1) ** 2, (s, u))

    prog = one_op(2, build, rules)
    check_jvp(prog, ["u"])
    check_transpose(prog, ["u"])


# -- Map --------------------------------------------------------------------------------------

BODIES = [
    sympy.sin(a(0)) * a(1) ** 2,
    sympy.exp(a(0) * a(1)) / (1 + a(1) ** 2),
    a(0) * sympy.tanh(a(1)) + a(2) * a(0) ** 3,  # a(2) is the scalar Param k: unbroadcast
    sympy.Piecewise((a(0) ** 2, a(0) > a(1)), (a(1), True)),  # smooth away from the switch
]


def map_program(body: sympy.Expr) -> Program:
    def build(b: Builder, u: int) -> int:
        v = b.add(Input(name="v", shape=b.grid.shape))
        k = b.add(Param(name="k"))
        return b.map(body, (u, v, k)[: 1 + max(int(s.name[1:]) for s in body.free_symbols)])

    return one_op(2, build)


@pytest.mark.parametrize("body", BODIES, ids=str)
def test_map(body: sympy.Expr) -> None:
    prog = map_program(body)
    wrt = ["u", "v", "k"] if body.has(a(2)) else ["u", "v"]
    check_jvp(prog, wrt)
    check_transpose(prog, wrt)


def _bodies() -> st.SearchStrategy[sympy.Expr]:
    leaves = st.sampled_from([a(0), a(1), sympy.Rational(1, 2), sympy.Integer(2)])
    unary = [sympy.sin, sympy.cos, sympy.tanh, lambda e: e**2, lambda e: sympy.exp(e / 4)]

    def grow(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(
            st.builds(lambda f, e: f(e), st.sampled_from(unary), children),
            st.builds(sympy.Add, children, children),
            st.builds(sympy.Mul, children, children),
        )

    return st.recursive(leaves, grow, max_leaves=6).filter(lambda e: e.has(a(0), a(1)))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(_bodies())
def test_map_random_bodies(body: sympy.Expr) -> None:
    # random nonlinear bodies of bounded growth: inputs in [-1, 1], exp damped by 1/4
    prog = map_program(body)
    wrt = [w for w, s in (("u", a(0)), ("v", a(1))) if body.has(s)]
    check_jvp(prog, wrt)
    check_transpose(prog, wrt)


# -- Reduce, Broadcast, BroadcastInDim --------------------------------------------------------


@pytest.mark.parametrize("op", ["sum", "max"])
@pytest.mark.parametrize("axes", [(0,), (1,), (0, 1)])
def test_reduce(op: str, axes: tuple[int, ...]) -> None:
    def build(b: Builder, u: int) -> int:
        shape = tuple(d for k, d in enumerate(b.grid.shape) if k not in axes)
        return b.add(Reduce(args=(u,), shape=shape, op=op, axes=axes))

    prog = one_op(2, build)  # random inputs: no ties, so max is differentiable
    check_jvp(prog, ["u"])
    check_transpose(prog, ["u"])


def _broadcast_from(src: tuple, make: Callable[[Builder, int], int]) -> Program:
    def build(b: Builder, u: int) -> int:
        w = b.add(Input(name="w", shape=src))
        return b.map(a(0) * a(1), (make(b, w), u))  # times u: output depends on the grid too

    return one_op(2, build)


@pytest.mark.parametrize("src", [(), ("n_y",), ("n_x", 1), (1, "n_y")], ids=str)
def test_broadcast(src: tuple) -> None:
    prog = _broadcast_from(src, lambda b, w: b.add(Broadcast(args=(w,), shape=b.grid.shape)))
    check_jvp(prog, ["w"])
    check_transpose(prog, ["w"])


@pytest.mark.parametrize(
    ("src", "dims"), [(("n_x",), (0,)), (("n_y",), (1,)), (("n_x", 1), (0, 1)), ((), ())]
)
def test_broadcast_in_dim(src: tuple, dims: tuple) -> None:
    def make(b: Builder, w: int) -> int:
        return b.add(BroadcastInDim(args=(w,), shape=b.grid.shape, dims=dims))

    prog = _broadcast_from(src, make)
    check_jvp(prog, ["w"])
    check_transpose(prog, ["w"])


@pytest.mark.parametrize(("axis", "index"), [(0, 0), (0, 5), (1, 3)])
def test_take_and_embed(axis: int, index: int) -> None:
    """A slice of the grid field, times a field of the slice's shape, and put back (Embed)
    times the field: both linear maps are checked by differences and by the dot-product test,
    which also checks that each is the other's transpose."""
    from ritz.compiler.ir.adjoint_ops import Embed
    from ritz.compiler.ir.ops import Take
    from ritz.compiler.rules import make

    def build(b: Builder, u: int) -> int:
        cut = make(b, Take, (u,), axis=axis, index=index)
        w = b.add(Input(name="w", shape=b.ops[cut].shape))
        back = make(
            b, Embed, (b.map(a(0) * a(1), (cut, w)),), shape=b.grid.shape, axis=axis, index=index
        )
        return b.map(a(0) * a(1) + a(0), (back, u))

    prog = one_op(2, build)
    check_jvp(prog, ["u", "w"])
    check_transpose(prog, ["u", "w"])
    small = Builder()
    v = small.add(Input(name="v", shape=(3,)))
    with pytest.raises(ValueError):
        make(small, Take, (v,), axis=0, index=3)


# -- leaves and Diff --------------------------------------------------------------------------


def test_leaves_are_identity_or_zero() -> None:
    b = Builder(Grid(("x",), (False,), "t"))
    u = b.add(Input(name="u", shape=b.grid.shape))
    k = b.add(Param(name="k"))
    b.output("same", u)
    b.output("const", k)
    prog = b.build()
    x = {"u": np.arange(7.0), "dot:u": np.ones(7), "bar:same": np.full(7, 2.0)}
    jv = run(jvp_program(prog, ["u"]), x)
    assert np.array_equal(jv["dot:same"], x["dot:u"])
    assert np.array_equal(jv["dot:const"], 0.0)
    assert np.array_equal(run(vjp_program(prog, ["u"]), x)["bar:u"], x["bar:same"])
    assert all(RULES[cls].transpose(b, b.ops[k], k) == () for cls in LEAVES)


def test_every_op_class_has_a_rule() -> None:
    from ritz.compiler.ir.adjoint_ops import ADJOINT_OPS
    from ritz.compiler.ir.ops import Contract, Take

    assert set(RULES) >= {
        *LEAVES,
        *ADJOINT_OPS,
        Map,
        Diff,
        Shift,
        Reduce,
        Broadcast,
        Contract,
        Take,
    }


# -- whole programs: discretised right-hand sides from the real pipeline -----------------------

HEAT = """
pde heat {
    space x in [0, 1]
    time t in [0, 1]
    field u
    param nu = 0.7
    dt(u) = nu * diff(u, x, 2)
    boundary u = cos(pi * x) + t at x = 0, x = 1
    initial u = 0
}
"""

# 2-D, order 4: Robin, Dirichlet and Neumann faces along x, periodic y, two coupled fields
REACTION = """
pde rd {
    space x in [0, 1]
    space y in [-1, 1] periodic
    time t in [0, 1]
    field u, v
    param nu = 0.7, k = 0.37
    dt(u) = nu * lap(u) - u * v^2 + sin(x) * diff(u, y)
    dt(v) = lap(v) + u * v^2 - k * v
    boundary diff(u, x) + k * u = sin(t + y) at x = 0
    boundary u = y at x = 1
    boundary diff(v, x) = 0 at x = 0, x = 1
    initial u = 0
    initial v = 0
}
"""


def lowered(source: str, order: int) -> Program:
    (problem,) = load_text(source).problems.values()
    return lower_pde(problem, order).program


def discretised(prog: Program, order: int) -> Program:
    ctx = PassContext("p", order=order)
    return simplify(discretise(prog, ctx), ctx)


def test_heat_matches_hand_stencil() -> None:
    prog = discretised(lowered(HEAT, 2), 2)
    n, h, t, nu = 7, 1 / 7, 0.4, PARAMS["nu"]
    u = np.random.default_rng(3).uniform(-1, 1, n)
    # degree-2 ghost through the face value g and the two nearest cells: 8/3 g - 2 u0 + u1 / 3
    lo = 8 / 3 * (1 + t) - 2 * u[0] + u[1] / 3
    hi = 8 / 3 * (-1 + t) - 2 * u[-1] + u[-2] / 3
    padded = np.concatenate([[lo], u, [hi]])
    expected = nu * (padded[:-2] - 2 * u + padded[2:]) / h**2
    got = run(prog, {"u": u})["rhs:u"]
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # same sums, other order: rounding


@pytest.mark.parametrize(
    ("source", "order", "wrt"), [(HEAT, 2, ["u", "nu"]), (REACTION, 4, ["u", "v", "nu"])]
)
def test_whole_program_jvp_and_vjp(source: str, order: int, wrt: list[str]) -> None:
    prog = discretised(lowered(source, order), order)
    check_jvp(prog, wrt)
    check_transpose(prog, wrt)


def test_diff_jvp_commutes_with_discretise() -> None:
    prog = lowered(REACTION, 4)
    before = discretised(jvp_program(prog, ["u", "v"]), 4)  # tangents get homogeneous rules
    after = jvp_program(discretised(prog, 4), ["u", "v"])
    x = random_inputs(before, np.random.default_rng(4))
    first, second = run(before, split(x)[0]), run(after, split(x)[0])
    for name, value in first.items():
        np.testing.assert_allclose(value, second[name], rtol=1e-10, atol=1e-10)  # rounding
    with pytest.raises(NotImplementedError, match="discretise first"):
        vjp_program(prog, ["u"])
    with pytest.raises(NotImplementedError, match="boundary rule"):
        jvp_program(prog, ["k"])  # k is in u's Robin condition: not differentiable yet
