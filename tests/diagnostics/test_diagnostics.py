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


def test_mlp_without_hidden_layers_is_fine() -> None:
    """depth = 0 is a linear model, not an error: only widths must be positive."""
    load_text(
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(depth = 0)\n    data x: [N, 1]\n"
        "    loss mean(f(x))\n}\n"
    )


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("intial u = 1", "did you mean 'initial'?"),
        ("boundry u = 0 at all", "did you mean 'boundary'?"),
        ("parm k = 1", "did you mean 'param'?"),
        ("u v = 1", "starts with space, time, field, param, boundary, initial, solve"),
    ],
)
def test_misspelt_statement_keyword_hint(line: str, hint: str) -> None:
    """The caret is on the misspelt first word (not the second), with the block's words."""
    with pytest.raises(RitzError) as err:
        load_text(cases.pde("dt(u) = 0", line))
    assert (err.value.code, err.value.line, err.value.column) == ("R128", 6, 5)
    assert err.value.hint is not None and hint in err.value.hint


def test_a_setting_with_a_wrong_value_is_no_unknown_statement() -> None:
    """``steps 100 200`` starts with a setting: the error stays at the stray value."""
    with pytest.raises(RitzError) as err:
        load_text("train t {\n    steps 100 200\n}\n")
    assert (err.value.code, err.value.column) == ("R100", 15)


def _errors(program: str) -> list[tuple[str, int | None, str, str | None]]:
    with pytest.raises(RitzError) as err:
        load_text(program, "case.dsl")
    return [
        (d.code, d.span.line if d.span else None, d.message, d.hint) for d in err.value.diagnostics
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dt(u, 2.0) = diff(u, x, 2)", "time order must be 1 or 2, got 2.0"),
        (
            "dt(u) = diff(u, x, 1.5)",
            "the order of diff() must be a positive integer constant, got 1.5",
        ),
    ],
)
def test_numbers_in_messages_are_written_as_in_programs(line: str, message: str) -> None:
    """Not SymPy's ``2.00000000000000``."""
    assert _errors(cases.pde(line))[0][2] == message


def test_unknown_function_in_param_suggests_like_equations() -> None:
    assert _errors(cases.pde("param r = sine(2)", "dt(u) = -r * u"))[0][3] == "did you mean 'sin'?"


def test_refused_param_value_is_still_declared() -> None:
    """One error at the value, no 'unknown name' at each use."""
    errors = _errors(cases.pde("param q = ceil(1.5)", "dt(u) = -q * u"))
    assert [(code, line) for code, line, *_ in errors] == [("R202", 5)]


def test_refused_param_does_not_cascade_to_later_params() -> None:
    errors = _errors(cases.pde("param q = qq, r = 2 * q", "dt(u) = -r * u"))
    assert [(code, line) for code, line, *_ in errors] == [("R317", 5)]


@pytest.mark.parametrize(
    ("program", "line"),
    [
        (
            "const t = 5\npde p {\n    space x in [0, 1] periodic\n    time t in [0, 1]\n"
            "    field u\n    dt(u) = -u\n    initial u = t\n}\n",
            4,
        ),
        (
            "const u = 1\npde p {\n    space x in [0, 1] periodic\n    time t in [0, 1]\n"
            "    field u\n    dt(u) = -u\n    initial u = 1\n}\n",
            5,
        ),
        (
            "pde p {\n    space x in [0, 1] periodic\n    time t in [0, 1]\n    field in\n"
            "    dt(in) = -in\n    initial in = 1\n}\n",
            4,
        ),
    ],
)
def test_a_shadowing_declaration_is_kept(program: str, line: int) -> None:
    """R204 alone: the time axis or field that shadows is still declared, so dt(), initial
    lines and uses raise no false errors ('steady problem', 'not a field')."""
    assert [(code, at) for code, at, *_ in _errors(program)] == [("R204", line)]


def test_no_hint_ends_in_an_empty_list() -> None:
    program = "pde p {\n    space x in [0, 1] periodic\n    time t in [0, 1]\n    dt(u) = -u\n}\n"
    hints = [hint or "" for *_, hint in _errors(program)]
    assert not any(h.rstrip().endswith(":") for h in hints), hints
    assert "no field is declared" in hints


@pytest.mark.parametrize("separator", ["\f", "\v", "\x85", "\u2028", "\u2029", "\x1c"])
def test_quoted_line_is_the_line_the_lexer_counts(separator: str) -> None:
    """Only newlines end lines: a form feed or a Unicode line separator in a comment does not
    shift the line quoted under the error."""
    program = f"const a = 1  # a {separator} comment\nconst b = zz\n"
    with pytest.raises(RitzError) as err:
        load_text(program, "m.dsl")
    lines = err.value.render().splitlines()
    assert lines[0].startswith("m.dsl:2:11:") and lines[1] == "    const b = zz", lines
    assert lines[2] == "              ^^"
