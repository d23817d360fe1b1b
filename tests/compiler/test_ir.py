"""IR invariants: Builder interning, verify_program's checks, a stable dump, shape rules."""

from __future__ import annotations

import pytest
import sympy

from ritz.compiler.ir.adjoint_ops import ShiftTranspose
from ritz.compiler.ir.dump import dump_program
from ritz.compiler.ir.ops import LEAVES, Input, Map, Param, Shift, placeholder
from ritz.compiler.ir.program import (
    BoundaryRule,
    Builder,
    FaceRule,
    Grid,
    Program,
    copy_op,
    rebuild,
)
from ritz.compiler.ir.verify import IRVerificationError, verify_program
from ritz.compiler.rules import RULES, jvp_program, vjp_program

A0, A1 = placeholder(0), placeholder(1)
GRID = Grid(("x",), (False,), "t")
DIRICHLET = FaceRule(sympy.Integer(1), sympy.Integer(0), sympy.Symbol("t"), 2)


def small() -> Program:
    b = Builder(GRID)
    b.boundaries["u"] = BoundaryRule("u", ((DIRICHLET, DIRICHLET),))
    u = b.add(Input(name="u", shape=GRID.shape))
    left = b.add(Shift(args=(u,), shape=GRID.shape, axis=0, offset=-1, boundary="u"))
    nu = b.add(Param(name="nu"))
    b.output("rhs:u", b.map(A0 * (A1 - sympy.sin(placeholder(2))), (nu, left, u)))
    return b.build()


def test_builder_interns_equal_ops() -> None:
    b = Builder(GRID)
    u = b.add(Input(name="u", shape=GRID.shape))
    assert b.add(Input(name="u", shape=GRID.shape)) == u
    s = b.add(Shift(args=(u,), shape=GRID.shape, axis=0, offset=1, boundary=""))
    assert b.add(Shift(args=(u,), shape=GRID.shape, axis=0, offset=1, boundary="")) == s
    assert b.add(Shift(args=(u,), shape=GRID.shape, axis=0, offset=-1, boundary="")) != s
    m = b.map(sympy.sin(A0), (s,), origin="line 1")
    assert b.map(sympy.sin(A0), (s,), origin="line 9") == m  # origin is not identity
    assert b.const(2) == b.const(2.0)
    assert len(b.ops) == 5


def test_builder_rejects_undefined_arguments() -> None:
    with pytest.raises(ValueError, match="not defined yet"):
        Builder(GRID).add(Map(args=(3,), body=A0))


def test_verify_catches_use_before_definition() -> None:
    ops = (Map(args=(1,), shape=GRID.shape, body=A0), Input(name="u", shape=GRID.shape))
    with pytest.raises(IRVerificationError, match="before its definition"):
        verify_program(Program(ops, {"y": 0}, GRID))


def test_verify_catches_free_symbol() -> None:
    ops = (Input(name="u", shape=GRID.shape), Map(args=(0,), body=A0 + sympy.Symbol("z")))
    with pytest.raises(IRVerificationError, match="free symbols: z"):
        verify_program(Program(ops, {"y": 1}, GRID))


def test_verify_catches_unknown_boundary_key() -> None:
    ops = (
        Input(name="u", shape=GRID.shape),
        Shift(args=(0,), shape=GRID.shape, axis=0, offset=1, boundary="w"),
    )
    with pytest.raises(IRVerificationError, match="unknown boundary 'w'"):
        verify_program(Program(ops, {"y": 1}, GRID))


def test_derived_programs_verify() -> None:
    for prog in (small(), jvp_program(small(), ["u", "nu"]), vjp_program(small(), ["u", "nu"])):
        verify_program(prog)


EXPECTED_DUMP = """\
grid(x) time=t
%0 = Input[name=u]() : n_x float64
%1 = Shift[axis=0, offset=-1, boundary=u](%0) : n_x float64
%2 = Param[name=nu]() : scalar float64
%3 = Map[a0*(a1 - sin(a2))](%2, %1, %0) : n_x float64
output rhs:u = %3
boundary u: ((FaceRule(alpha=1, beta=0, data=t, degree=2), FaceRule(alpha=1, beta=0, data=t, \
degree=2)),)
"""


def test_dump_is_stable() -> None:
    text = dump_program(small())
    assert text == EXPECTED_DUMP
    assert dump_program(small()) == text
    assert dump_program(rebuild(small(), copy_op)) == text


def test_dump_shows_adjoint_ops() -> None:
    text = dump_program(vjp_program(small(), ["u"]))
    assert "ShiftTranspose[axis=0, offset=-1, boundary=u:lin]" in text
    assert "boundary u:lin:" in text


@pytest.mark.parametrize("make", [small, lambda: vjp_program(small(), ["u", "nu"])])
def test_shape_rules_agree_with_built_ops(make) -> None:
    prog = make()
    for op in prog.ops:
        if not isinstance(op, LEAVES):
            shapes = tuple(prog.ops[a].shape for a in op.args)
            assert RULES[type(op)].shape(op, shapes) == op.shape, op
    assert any(isinstance(op, ShiftTranspose) for op in vjp_program(small(), ["u"]).ops)
