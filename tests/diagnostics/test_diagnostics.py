"""The diagnostics table: each malformed program yields its code, position and message."""

import importlib.util
from pathlib import Path

import pytest

from ritz.dsl import DslNameError, RitzError, load_text

_spec = importlib.util.spec_from_file_location("diag_cases", Path(__file__).with_name("cases.py"))
assert _spec is not None and _spec.loader is not None
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


@pytest.mark.parametrize(
    ("program", "code", "line", "col", "text"), cases.CASES.values(), ids=list(cases.CASES)
)
def test_diagnostic(program: str, code: str, line: int, col: int, text: str) -> None:
    with pytest.raises(RitzError) as err:
        load_text(program, "case.dsl")
    e = err.value
    assert (e.code, e.line, e.column) == (code, line, col), e.render()
    assert text in e.message, e.render()
    assert e.file == "case.dsl"


def test_render_shows_position_line_and_caret() -> None:
    program = cases.pde("dt(u) = nux * diff(u, x, 2)", "param nu = 1")
    with pytest.raises(DslNameError) as err:
        load_text(program, "heat.dsl")
    text = err.value.render()
    lines = text.splitlines()
    assert lines[0].startswith("heat.dsl:5:13: error[R201]: unknown name 'nux'")
    assert lines[1] == "        dt(u) = nux * diff(u, x, 2)"
    assert lines[2] == "                ^^^"
    assert "hint: did you mean 'nu'?" in text
    assert str(err.value) == text


def test_several_errors_reported_together() -> None:
    program = cases.pde("dt(u) = foo(u)", "solve fd(cels = 1)")
    with pytest.raises(RitzError) as err:
        load_text(program, "m.dsl")
    codes = [d.code for d in err.value.diagnostics]
    assert codes == ["R202", "R206"]


def test_no_lark_objects_escape() -> None:
    for program, *_ in cases.CASES.values():
        try:
            load_text(program, "case.dsl")
        except RitzError as e:
            assert type(e).__module__.endswith("diagnostics")
            assert e.__cause__ is None or isinstance(e.__cause__, RitzError)
            assert e.__suppress_context__ or e.__context__ is None


def test_a_refused_boundary_line_is_not_also_reported_missing() -> None:
    """The faces a refused line meant to set are unknown: R313 would guess wrongly."""
    text = cases.pde(
        "dt(u) = diff(u, x, 2)", tail="    boundary u^2 = 0 at all\n    initial u = 0\n}\n"
    )
    with pytest.raises(RitzError) as info:
        load_text(text)
    assert [d.code for d in info.value.diagnostics] == ["R312"]


def test_pinn_without_net_points_at_the_pinn_line() -> None:
    """The shape check (``ritz check``) refuses a pinn line without a network at that line,
    not at the problem's first solve line."""
    from ritz.runtime.api import compile_text
    from ritz.runtime.shape_check import check_shapes

    program = cases.pde(
        "dt(u) = diff(u, x, 2)", "solve fd(cells = 8, dt = 0.01)", "solve pinn(steps = 2)"
    )
    with pytest.raises(RitzError) as err:
        check_shapes(compile_text(program, name="case.dsl"))
    assert (err.value.code, err.value.line, err.value.column) == ("R351", 7, 5)
    assert "needs a network" in err.value.message
