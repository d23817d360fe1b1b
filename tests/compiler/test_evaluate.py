"""The reference interpreter on cases small enough to state by hand."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import ritz
from ritz.compiler.ir.evaluate import evaluate
from ritz.compiler.ir.ops import Broadcast, Coord, Diff, Input, Reduce, Shift, placeholder
from ritz.compiler.ir.program import BoundaryRule, Builder, FaceRule, Grid
from ritz.compiler.lower.pde import lower_pde
from ritz.compiler.passes.discretise import discretise
from ritz.compiler.passes.manager import PassContext
from ritz.compiler.passes.simplify import simplify
from ritz.dsl import load_text

GRID = Grid(("x", "y"), (True, False), "t")
SHAPE = GRID.shape
U = np.arange(12.0).reshape(4, 3)


def program(build, boundaries=None):
    b = Builder(GRID)
    b.boundaries = dict(boundaries or {})
    u = b.add(Input(name="u", shape=SHAPE))
    b.output("y", build(b, u))
    return b.build()


def shift(axis: int, offset: int, key: str):
    return lambda b, u: b.add(Shift(args=(u,), shape=SHAPE, axis=axis, offset=offset, boundary=key))


def test_periodic_shift_is_roll_and_empty_key_pads_zeros() -> None:
    rule = {"u": BoundaryRule("u", ("periodic", "periodic"))}
    got = evaluate(program(shift(0, 1, "u"), rule), {"u": U})["y"]
    np.testing.assert_array_equal(got, np.roll(U, -1, axis=0))
    got = evaluate(program(shift(1, -2, "")), {"u": U})["y"]
    np.testing.assert_array_equal(got, np.pad(U, ((0, 0), (2, 0)))[:, :3])


def test_dirichlet_ghost_is_linear_extrapolation_through_the_face_value() -> None:
    face = FaceRule(sympy.Integer(1), sympy.Integer(0), sympy.Symbol("x") + 10, 1)
    rule = {"u": BoundaryRule("u", ("periodic", (face, face)))}
    grid = {"lo": [0.0, 0.0], "h": [0.5, 1.0]}
    got = evaluate(program(shift(1, 1, "u"), rule), {"u": U}, grid=grid)["y"]
    centres = (np.arange(4) + 0.5) * 0.5  # the data uses x, the coordinate along the face
    np.testing.assert_allclose(got[:, 2], 2 * (centres + 10) - U[:, 2], rtol=1e-14)
    np.testing.assert_array_equal(got[:, :2], U[:, 1:])


def test_coord_reduce_broadcast() -> None:
    def build(b, u):
        c = b.add(Coord(shape=SHAPE, axis=1, name="y"))
        s = b.add(Reduce(args=(b.map(placeholder(0) * placeholder(1), (c, u)),), axes=(0, 1)))
        return b.add(Broadcast(args=(s,), shape=SHAPE))

    got = evaluate(program(build), {"u": U}, grid={"lo": [0.0, 1.0], "h": [1.0, 2.0]})["y"]
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, np.sum(U * np.array([2.0, 4.0, 6.0])), rtol=1e-14)


def test_errors_name_the_problem() -> None:
    prog = program(lambda b, u: b.add(Diff(args=(u,), shape=SHAPE, axis=0, order=2)))
    with pytest.raises(ValueError, match="discretised"):
        evaluate(prog, {"u": U})
    with pytest.raises(ValueError, match="no array given for input 'u'"):
        evaluate(program(shift(1, 1, "")), {})


# Robin, Dirichlet and Neumann faces at order 4 (degree-4 ghosts, two layers) and a periodic axis
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
    solve fd(cells = 8, scheme = euler, dt = 1e-3, order = 4)
}
"""


def test_matches_the_generated_kernels(cache_dir) -> None:
    # one Euler step of the compiled Numba code is u + dt * rhs(u): the halo model of fuse and
    # the interpreter's Shift must agree on every ghost, face coordinate and periodic wrap
    sim = ritz.compile(REACTION, cache_dir=cache_dir).rd.prepare(cells=[8, 6])
    rng = np.random.default_rng(0)
    state = {f: rng.uniform(-1, 1, (8, 6)) for f in ("u", "v")}
    for f, value in state.items():
        sim.interior(f)[...] = value
    sim.t = 0.3
    sim.advance(1)
    (problem,) = load_text(REACTION).problems.values()
    ctx = PassContext("rd", order=4)
    prog = simplify(discretise(lower_pde(problem, 4).program, ctx), ctx)
    grid = {"lo": [0.0, -1.0], "h": [1 / 8, 2 / 6]}
    rhs = evaluate(prog, state, {"nu": 0.7, "k": 0.37}, t=0.3, grid=grid)
    for f, value in state.items():
        step = (np.asarray(sim.interior(f)) - value) / 1e-3
        # the step loses ~1e-16 / dt relative accuracy to cancellation: 1e-10 is ample
        np.testing.assert_allclose(step, rhs[f"rhs:{f}"], rtol=1e-10, atol=1e-10)
