"""`ritz check` reports every error it can find in one run, and no follow-on errors: a misspelt
face does not also make the field's faces look uncovered (R313), and every unknown keyword of
a network instantiation is reported beside the block's other errors."""

from __future__ import annotations

import pytest

from ritz.dsl import load_text
from ritz.dsl.diagnostics import RitzError


def _codes(program: str) -> list[tuple[str, int, int]]:
    with pytest.raises(RitzError) as err:
        load_text(program, "m.dsl")
    return [(d.code, d.span.line, d.span.col) for d in err.value.diagnostics if d.span]


def test_a_misspelt_face_is_the_only_error() -> None:
    program = (
        "pde h {\n    space x in [0, 1]\n    time t in [0, 0.1]\n    field u\n"
        "    dt(u) = diff(u, x, 2)\n    boundary u = 0 at x = 0.5\n    initial u = 0\n}\n"
    )
    assert _codes(program) == [("R311", 6, 23)]


def test_every_unknown_network_option_with_the_other_errors() -> None:
    program = (
        "import std.nn as nn\ntrain t {\n    net g = nn.mlp(widht = 8, depht = 2)\n"
        "    data x: [N, 1], y: [N, 1]\n    loss mean((g(x) - y)^2)\n    steps 0\n}\n"
    )
    assert _codes(program) == [("R301", 3, 20), ("R301", 3, 31), ("R316", 6, 11)]


def test_a_bad_time_bound_is_not_also_a_missing_time_line() -> None:
    program = (
        "pde h {\n    space x in [0, 1]\n    time t in [0, T]\n    field u\n    param T = 1\n"
        "    dt(u) = diff(u, x, 2)\n    boundary u = 0 at all\n    initial u = 0\n}\n"
    )
    assert [c for c, *_ in _codes(program)] == ["R317"]


def test_dt_auto_on_an_implicit_scheme_is_found_by_the_check() -> None:
    program = (
        "pde h {\n    space x in [0, 1]\n    time t in [0, 1]\n    field u\n"
        "    dt(u) = diff(u, x, 2)\n    boundary u = 0 at all\n    initial u = 0\n"
        "    solve fd(scheme = cn, dt = auto)\n}\n"
    )
    assert _codes(program) == [("R512", 8, 27)]


def test_every_bad_bound_of_a_bilevel_block_at_once() -> None:
    program = (
        "bilevel r {\n    upper a = 5 in [10, 0]\n    lower b = 20 in [0, 10]\n"
        "    lower minimize (b - a)^2\n    upper minimize b^2\n}\n"
    )
    assert _codes(program) == [("R350", 2, 21), ("R350", 3, 15)]


def test_an_open_face_of_a_system_is_one_error() -> None:
    """Acoustics with p = 0 at x = 0 only: one characteristic enters at x = 1, so one
    condition is missing there, on p or v; one R313 per field sent users to add both (R322)."""
    program = (
        "pde a {\n    space x in [0, 1]\n    time t in [0, 0.5]\n    field p, v\n"
        "    dt(p) = -diff(v, x)\n    dt(v) = -diff(p, x)\n    boundary p = 0 at x = 0\n"
        "    initial p = 0\n    initial v = 0\n}\n"
    )
    with pytest.raises(RitzError) as err:
        load_text(program, "m.dsl")
    (only,) = err.value.diagnostics
    assert only.code == "R313" and "fields p, v have no boundary condition at x = 1" in only.message
