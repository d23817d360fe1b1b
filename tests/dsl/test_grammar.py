"""The grammar builds without conflicts, and the syntax-error table matches its own snippets."""

import pytest

from ritz.dsl import DslSyntaxError, parse_source
from ritz.dsl import ast as A
from ritz.dsl.parser import build_parser
from ritz.dsl.source import SourceFile
from ritz.dsl.syntax_errors import SYNTAX_ERRORS


def parse(text: str) -> A.Module:
    return parse_source(SourceFile("t.dsl", text))


def test_grammar_is_conflict_free() -> None:
    build_parser(strict=True)  # strict: LALR conflicts and terminal collisions raise


SNIPPETS = [(e.code, s) for e in SYNTAX_ERRORS for s in e.examples]


@pytest.mark.parametrize(("code", "snippet"), SNIPPETS)
def test_syntax_table_snippets_report_their_entry(code: str, snippet: str) -> None:
    with pytest.raises(DslSyntaxError) as err:
        parse(snippet)
    assert err.value.code == code, err.value.render()


def test_soft_keywords_as_option_and_call_names() -> None:
    m = parse("const c = f(steps = 1, batch = 2, dt = 3, order = 4, data = 5) + dt(1)\n")
    assert isinstance(m.items[0], A.ConstDef)


def test_statements_and_comments() -> None:
    m = parse("# head\n\nconst a = 1; const b = 2  # tail\nconst c = f(1,\n  # inside\n  2)\n")
    assert [i.name for i in m.items] == ["a", "b", "c"]


def test_numbers_and_operators() -> None:
    import sympy

    m = parse("const c = -2^2 + 2**3**2 / .5 % 3 + 1e-3\n")
    v = m.items[0].value.value
    x = sympy.Float(0.001) + sympy.Mod(sympy.Integer(2) ** 9 / sympy.Float(0.5), 3) - 4
    assert v == x
    # booleans parse with their precedence: the comparison binds tightest, then not, and, or
    m = parse("const c = not a < 1 and b or c\n")
    v = m.items[0].value.value
    a, b, c = sympy.symbols("a b c")
    for va, vb, vc in [(0, 0, 0), (0, 1, 0), (2, 1, 0), (2, 0, 5), (0, 0, -1), (0.5, 3, 0)]:
        want = int(bool(((not va < 1) and vb) or vc))
        assert v.xreplace({a: va, b: vb, c: vc}) == want, (va, vb, vc)


def test_calls_keep_names_and_kwargs() -> None:
    m = parse("const c = nn.mlp(u, width = 3) @ w[1, 2] + sin(x)\n")
    expr = m.items[0].value
    names = [r.name for r in expr.refs]
    # x[i] and a @ b are calls inside; their positions are kept under their names
    assert [n for n in names if n not in ("index", "matmul") and "(" not in n] == [
        "nn.mlp",
        "u",
        "w",
        "sin",
        "x",
    ]
    spans = {r.name: r.span for r in expr.refs}
    assert (spans["index"].col, spans["index"].end_col) == (34, 41)
    assert (spans["matmul"].col, spans["matmul"].end_col) == (11, 41)
    call = next(a for a in expr.value.atoms(sympy_applied()) if a.func.__name__ == "nn.mlp")
    name, args, kwargs = A.call_parts(call)
    assert (name, [str(a) for a in args], {k: int(v) for k, v in kwargs.items()}) == (
        "nn.mlp",
        ["u"],
        {"width": 3},
    )
    ref = expr.refs[0]
    assert (ref.span.line, ref.span.col, ref.span.end_col) == (1, 11, 17)


def sympy_applied():
    from sympy.core.function import AppliedUndef

    return AppliedUndef


def test_option_values_become_calls() -> None:
    m = parse("pde p {\n solve pinn(net = nn.mlp(width = 2), optimizer = adam(lr = 1e-3))\n}\n")
    solve = m.items[0].solves[0]
    net = solve.options[0].value
    assert isinstance(net, A.Call) and net.name == "nn.mlp"
    assert net.kwargs[0].name == "width"
