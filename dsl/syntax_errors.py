"""Syntax diagnostics as data: each entry has a code, a message, a hint and malformed snippets.

The parser matches a failing input against the snippets (as Lark's ``match_examples`` does):
an error that leaves the LALR automaton in the same state, expecting the same tokens, as a
snippet gets that entry's message.
The tests parse every snippet and check that it maps back to its own entry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyntaxErrorEntry:
    code: str
    message: str
    hint: str
    examples: tuple[str, ...]


SYNTAX_ERRORS: tuple[SyntaxErrorEntry, ...] = (
    SyntaxErrorEntry(
        "R110",
        "expected '=' after the name in a declaration",
        "write e.g. 'const c = 1', 'param nu = 0.1' or 'upper lam = 0'",
        ("const c 1", "const c", "pde p {\n param nu 0.1\n}", "bilevel b {\n upper lam 0\n}"),
    ),
    SyntaxErrorEntry(
        "R111",
        "missing operand: the expression ends with an operator",
        "complete the expression after the operator; to continue it on the next line, put it "
        "in '( )' or end the line with '\\'",
        (
            "const c = 1 +",
            "const c = 2 *",
            "const c = 1 + \n",
            "const c = 2 ^\n",
            "const c = -",
            "const c = (1 +)",
            "const c = f(1 +)",
            "const c = 1 <",
        ),
    ),
    SyntaxErrorEntry(
        "R112",
        "two expressions in a row: an operator or ',' is missing",
        "add an operator (e.g. '*') or a ',' between them",
        (
            "const c = 1 2",
            "const c = a b",
            "const c = f(a b)",
            "const c = (a b)",
            "const c = 2 x",
            "const c = f(1) 2",
        ),
    ),
    SyntaxErrorEntry(
        "R113",
        "a space axis needs an interval: 'space x in [a, b]'",
        "write e.g. 'space x in [0, 1]' (add 'periodic' after the interval if needed)",
        (
            "pde p {\n space x\n}",
            "pde p {\n space x [0, 1]\n}",
            "pde p {\n space x in 0, 1\n}",
            "pde p {\n time t\n}",
            "pde p {\n time t [0, 1]\n}",
            "pde p {\n time t in 0\n}",
        ),
    ),
    SyntaxErrorEntry(
        "R114",
        "a boundary line needs 'at' and the sides it applies to",
        "write e.g. 'boundary u = 0 at x = 0, x = 1' or 'boundary u = 0 at all'",
        (
            "pde p {\n boundary u = 0\n}",
            "pde p {\n boundary u = 0 at\n}",
            "pde p {\n boundary u = 0 at x\n}",
            "pde p {\n boundary u = 0 on x = 0\n}",
        ),
    ),
    SyntaxErrorEntry(
        "R115",
        "a block needs a name and a '{'",
        "write e.g. 'pde heat {' with the body on the following lines and a closing '}'",
        (
            "pde {",
            "pde",
            "pde p",
            "pde p\n{",
            "network {",
            "train {",
            "bilevel {",
            "train t",
            "bilevel b",
            "network n(x: [1]) -> [1]",
        ),
    ),
    SyntaxErrorEntry(
        "R116",
        "only imports, const, fn and pde/network/train/bilevel blocks may appear at top level",
        "statements such as equations belong inside a block: 'pde NAME { ... }'",
        (
            "x = 1",
            "dt(u) = 0",
            "field u",
            "solve fd()",
            "1 + 2",
            "loss x",
            "\nx = 1",
            "const c = 1\nx = 1",
            "\nfield u",
            "const c = 1\nfield u",
        ),
    ),
    SyntaxErrorEntry(
        "R117",
        "the statement continues past its end: put one statement per line (or separate with ';')",
        "start the next statement on a new line",
        (
            "pde p {\n field u v\n}",
            "pde p {\n field u\n}}",
            "pde p {\n field u } pde q {\n field v\n}",
        ),
    ),
    SyntaxErrorEntry(
        "R118",
        "'solve' names a method, optionally with options in parentheses",
        "write e.g. 'solve fd(cells = 200, scheme = rk4)'",
        (
            "pde p {\n solve\n}",
            "pde p {\n solve (cells = 1)\n}",
            "pde p {\n solve fd(200)\n}",
            "pde p {\n solve fd(cells)\n}",
            "pde p {\n solve fd(cells 1)\n}",
        ),
    ),
    SyntaxErrorEntry(
        "R119",
        "an option needs a value: 'name = value'",
        "write e.g. 'cells = 200'",
        (
            "pde p {\n solve fd(cells =)\n}",
            "pde p {\n solve fd(cells = ,)\n}",
            "const c = f(width =)",
        ),
    ),
    SyntaxErrorEntry(
        "R120",
        "a network is declared as 'network NAME(inputs and options) -> [output shape] { ... }'",
        "write e.g. 'network f(x: [2], width = 64) -> [1] {'",
        (
            "network n(x: [1]) {",
            "network n(x: [1]) -> 1 {",
            "network n(x) -> [1] {",
            "network n -> [1] {",
        ),
    ),
    SyntaxErrorEntry(
        "R121",
        "a shape is a list of sizes in brackets, e.g. [N, 1]",
        "write e.g. 'data x: [N, 1]'",
        (
            "train t {\n data x\n}",
            "train t {\n data x: N\n}",
            "bilevel b {\n data x\n}",
            "bilevel b {\n lower w: p = 0\n}",
        ),
    ),
    SyntaxErrorEntry(
        "R122",
        "an objective needs 'minimize' or 'maximize' and an expression",
        "write e.g. 'lower minimize sum(w^2)'",
        (
            "bilevel b {\n lower minimize\n}",
            "bilevel b {\n upper maximize\n}",
            "bilevel b {\n lower\n}",
            "bilevel b {\n upper\n}",
        ),
    ),
    SyntaxErrorEntry(
        "R123",
        "an import names a std module (import std.nn [as nn]) or a quoted file with 'as NAME'",
        "write e.g. 'import std.nn as nn' or 'import \"materials.dsl\" as mat'",
        ('import "m.dsl"', "import", "import 1", "import std.nn as", 'import "m.dsl" as'),
    ),
    SyntaxErrorEntry(
        "R124",
        "a fn is defined as 'fn NAME(params) = expression'",
        "write e.g. 'fn softplus(z) = log(1 + exp(z))'",
        ("fn f", "fn f(x)", "fn f(x) x", "fn f x = 1", "fn f(1) = 1", "fn = 1"),
    ),
    SyntaxErrorEntry(
        "R125",
        "a statement of this block is expected here",
        "pde blocks hold space/time/field/param/boundary/initial/solve lines and equations; "
        "train blocks hold net/data/loss and settings; network bodies hold assignments, "
        "repeat and return",
        (
            "pde p {\n ,\n}",
            "network n(x: [1]) -> [1] {\n 1\n}",
            "train t {\n 1\n}",
            "network n(x: [1]) -> [1] {\n h\n}",
        ),
    ),
)

# Fallback descriptions of terminals, used to say what the parser expected in user words.
TERMINAL_WORDS: dict[str, str] = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a quoted file name",
    "_NL": "a new line",
    "$END": "the end of the file",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "EQUAL": "'='",
    "COLON": "':'",
    "DOT": "'.'",
    "SEMI": "';'",
    "PERIODIC": "'periodic'",
    "ALL": "'all'",
    "UPPER": "'upper'",
    "LOWER": "'lower'",
    "MINIMIZE": "'minimize'",
    "MAXIMIZE": "'maximize'",
}

# The words that start a statement in each kind of block (named by the word of its header; a
# repeat body holds what a network body does). A line of a block that starts with another word
# followed by more words is a misspelt statement keyword (``intial u = 1``); train settings
# (``steps 100``) are statements of their own and are named in TRAIN_SETTING_WORDS.
STATEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "pde": ("space", "time", "field", "param", "boundary", "initial", "solve"),
    "network": ("repeat", "return"),
    "repeat": ("repeat", "return"),
    "train": ("net", "data", "loss"),
    "bilevel": ("data", "param", "upper", "lower", "solve"),
}
