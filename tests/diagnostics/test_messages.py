"""Carets under exactly the offending text, and syntax messages that say what to do.

Each case: a malformed program and its first diagnostic's code, line, column, a substring of
its message and one of its hint (as in cases.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ritz.dsl import RitzError, load_text
from ritz.runtime.cli import main

HEAD = "pde p {\n    space x in [0, 1]\n    time t in [0, 1]\n    field u\n"
TAIL = "    boundary u = 0 at all\n    initial u = 0\n}\n"


def pde(*lines: str, tail: str = TAIL) -> str:
    """A heat-like pde block with ``lines`` from line 5 on."""
    return HEAD + "".join(f"    {ln}\n" for ln in lines) + tail


BILEVEL = "bilevel r {\n    upper a = 5\n    lower b = 1\n    lower minimize (b - a)^2 over c\n"

# name: (program, code, line, col, message substring, hint substring)
CASES: dict[str, tuple[str, str, int, int, str, str]] = {
    "diff_axis_a_number": (
        pde("dt(u) = diff(2*u, 3)"),
        "R303",
        5,
        23,
        "with respect to '3'",
        "axes are: x",
    ),
    "diff_axis_unknown_name": (
        pde("dt(u) = diff(u, y, 2)"),
        "R303",
        5,
        21,
        "with respect to 'y'",
        "axes are: x",
    ),
    "diff_axis_an_expression_in_the_second_call": (
        pde("dt(u) = diff(u, x, 2) + diff(u, 2*x)"),
        "R303",
        5,
        37,
        "'2*x'",
        "axes are",
    ),
    "diff_order_fractional": (
        pde("dt(u) = diff(u, x, 2.5)"),
        "R302",
        5,
        24,
        "got 2.5",
        "diff(u, x, 2)",
    ),
    "diff_order_zero": (pde("dt(u) = diff(u, x, 0)"), "R302", 5, 24, "got 0", "diff(u, x, 2)"),
    "diff_order_negative": (
        pde("dt(u) = diff(u, x, -1)"),
        "R302",
        5,
        24,
        "got -1",
        "diff(u, x, 2)",
    ),
    "diff_order_in_brackets": (
        pde("dt(u) = diff(u, x, 2) + diff(u, x, (0.5))"),
        "R302",
        5,
        40,
        "got 0.5",
        "",
    ),
    "diff_order_a_param": (
        pde("param n = 2", "dt(u) = diff(u, x, n)"),
        "R302",
        6,
        24,
        "got n",
        "",
    ),
    "over_not_a_lower_variable": (
        BILEVEL + "    upper minimize b^2\n}\n",
        "R209",
        4,
        35,
        "'over c': not a lower variable",
        "'lower' variable",
    ),
    "implicit_product": (
        pde("dt(u) = 2 u"),
        "R112",
        5,
        15,
        "an operator is missing",
        "write '2 * u'",
    ),
    "implicit_product_after_a_call": (
        pde("dt(u) = sin(x) u"),
        "R112",
        5,
        20,
        "an operator is missing",
        "add '*'",
    ),
    "interval_without_comma": (
        "pde h {\n    space x in [0 1]\n}\n",
        "R112",
        2,
        19,
        "an operator or ',' is missing",
        "'0, 1'",
    ),
    "boundary_sides_without_comma": (
        pde(tail="    boundary u = 0 at x = 0 x = 1\n    initial u = 0\n}\n"),
        "R112",
        5,
        29,
        "a ',' is missing",
        "at x = 0, x = 1",
    ),
    "chained_comparison": (
        pde("dt(u) = a < b < c"),
        "R100",
        5,
        19,
        "comparisons do not chain",
        "write 'a < b and b < c'",
    ),
    "chained_comparison_in_a_call": (
        pde("dt(u) = f((x > 0) < 1 >= 2, 1)"),
        "R100",
        5,
        27,
        "comparisons do not chain",
        "write '(x > 0) < 1 and 1 >= 2'",
    ),
    "line_starts_with_plus": (
        pde("dt(u) = diff(u, x, 2)", "    + 0 * u"),
        "R130",
        6,
        9,
        "starts with '+' has no '='",
        "'( )' or end that line with '\\'",
    ),
    "line_starts_with_star": (
        pde("dt(u) = diff(u, x, 2)", "    * 2"),
        "R130",
        6,
        9,
        "cannot start with '*'",
        "'( )'",
    ),
    "trailing_operator_says_how_to_continue": (
        pde("dt(u) = diff(u, x, 2) +", "    0 * u"),
        "R111",
        5,
        28,
        "ends with an operator",
        "end the line with '\\'",
    ),
    "unknown_param_close_to_a_field": (
        pde("dt(u) = nu * diff(u, x, 2)"),
        "R201",
        5,
        13,
        "unknown name 'nu'",
        "declare it, e.g. 'param nu = 1', or did you mean 'u'?",
    ),
    "unknown_name_far_from_all": (
        pde("dt(u) = kappa * diff(u, x, 2)"),
        "R201",
        5,
        13,
        "unknown name 'kappa'",
        "'param kappa = 1'",
    ),
    "param_named_time": (
        pde("param time = 1", "dt(u) = diff(u, x, 2)"),
        "R204",
        5,
        11,
        "shadows the keyword 'time'",
        "another name",
    ),
}


@pytest.mark.parametrize(
    ("program", "code", "line", "col", "text", "hint"), CASES.values(), ids=list(CASES)
)
def test_message(program: str, code: str, line: int, col: int, text: str, hint: str) -> None:
    with pytest.raises(RitzError) as err:
        load_text(program, "case.dsl")
    e = err.value
    assert (e.code, e.line, e.column) == (code, line, col), e.render()
    assert text in e.message, e.render()
    assert hint in (e.diagnostics[0].hint or ""), e.render()


def _caret(program: str) -> str:
    with pytest.raises(RitzError) as err:
        load_text(program, "case.dsl")
    return err.value.render().splitlines()[2]


def test_carets_cover_exactly_the_offending_text() -> None:
    """Under '2.5' (not 'diff'), 'c' (not the statement), 'time' (not 'time = 1')."""
    assert _caret(pde("dt(u) = diff(u, x, 2.5)")) == "    " + " " * 23 + "^^^"
    assert _caret(BILEVEL + "    upper minimize b^2\n}\n") == "    " + " " * 34 + "^"
    assert _caret(pde("param time = 1", "dt(u) = 0")) == "    " + " " * 10 + "^^^^"


def test_a_known_name_keeps_its_did_you_mean() -> None:
    with pytest.raises(RitzError) as err:
        load_text(pde("param nu = 1", "dt(u) = nux * diff(u, x, 2)"), "case.dsl")
    assert err.value.diagnostics[0].hint == "did you mean 'nu'?"


def test_continued_lines_that_work() -> None:
    """What the continuation hint advises parses: brackets, or a backslash at the line end."""
    load_text(pde("dt(u) = (diff(u, x, 2)", "    + 0 * u)"))
    load_text(pde("dt(u) = diff(u, x, 2) \\", "    + 0 * u"))


@pytest.mark.parametrize(
    ("program", "hint"),
    [
        ("network f(x: [2]) -> [1] {\n    return dense(x, 1)\n}\n", "-p f"),
        ("# nothing\n", "add a pde, train or bilevel block"),
    ],
    ids=["network", "empty"],
)
def test_show_without_a_block_says_show(tmp_path: Path, program: str, hint: str) -> None:
    path = tmp_path / "case.dsl"
    path.write_text(program)
    result = CliRunner().invoke(main, ["show", str(path)])
    assert result.exit_code == 1, result.output
    assert "error[R522]" in result.stderr and "block to show" in result.stderr, result.stderr
    assert hint in result.stderr and "Traceback" not in result.output


def test_run_without_a_block_still_says_run(tmp_path: Path) -> None:
    path = tmp_path / "case.dsl"
    path.write_text("network f(x: [2]) -> [1] {\n    return dense(x, 1)\n}\n")
    result = CliRunner().invoke(main, ["run", str(path), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "block to run" in result.stderr and "networks run inside" in result.stderr
