"""Text -> raw AST. Builds the Lark parser once and turns Lark's errors into our diagnostics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from lark import Lark, Token
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import PatternStr

from .ast import Module
from .build import ASTBuilder
from .diagnostics import Diagnostic, DslSyntaxError, RitzError, did_you_mean
from .lexing import BracketMismatch, StatementLexer
from .source import SourceFile, Span, point_span
from .syntax_errors import STATEMENT_WORDS, SYNTAX_ERRORS, TERMINAL_WORDS, SyntaxErrorEntry

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

_PARSER: Lark | None = None
_POSTLEX: StatementLexer | None = None


def build_parser(strict: bool = False, cache: bool = True) -> tuple[Lark, StatementLexer]:
    """A fresh Lark parser for the grammar (``strict`` makes grammar conflicts fail)."""
    postlex = StatementLexer()
    lark = Lark(
        GRAMMAR_PATH.read_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=postlex,
        cache=cache and not strict,
        strict=strict,
    )
    return lark, postlex


def _parser() -> tuple[Lark, StatementLexer]:
    global _PARSER, _POSTLEX
    if _PARSER is None or _POSTLEX is None:
        _PARSER, _POSTLEX = build_parser()
    return _PARSER, _POSTLEX


def parse_source(source: SourceFile) -> Module:
    """Parse one source file into the raw AST; raises DslSyntaxError on malformed input."""
    lark, postlex = _parser()
    try:
        tree = lark.parse(source.text)
    except BracketMismatch as exc:
        raise _bracket_error(source, exc.token, exc.opener) from None
    except UnexpectedInput as exc:
        opened = list(postlex.open_brackets)
        raise _special_error(source, exc, postlex) or _syntax_error(source, exc, opened) from None
    try:
        return ASTBuilder(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RitzError):
            raise exc.orig_exc from None
        raise


# ---- diagnostics -------------------------------------------------------------------------


def _special_error(
    source: SourceFile, exc: UnexpectedInput, postlex: StatementLexer
) -> DslSyntaxError | None:
    """A message for a common slip that Lark reports elsewhere: a misspelt statement keyword,
    '==' for '='. The statement the error is in is the post-lexer's, unless that one ended
    and the error is on the next line (an _NL that ended it has passed the post-lexer)."""
    at_its_end = isinstance(exc, UnexpectedToken) and exc.token.type == "_NL"
    statement = postlex.statement if not postlex.ended or at_its_end else []
    known = (
        _unknown_statement(source, exc, postlex.blocks, statement)
        or _misspelt_objective(source, exc, postlex.blocks, statement)
        or _double_equals(source, exc, statement)
    )
    if known is not None or not isinstance(exc, UnexpectedToken):
        return known
    tok, opened = exc.token, postlex.open_brackets
    if opened and (tok.line is None or tok.line > _line(opened[-1])):
        return None  # an unclosed bracket, reported as such
    before = statement[:-1] if statement and statement[-1] is tok else statement
    return (
        _leading_operator(source, exc, before)
        or _chained_comparison(source, tok, before)
        or _two_in_a_row(source, exc, before, postlex.blocks)
    )


def _tok_span(source: SourceFile, tok: Token) -> Span:
    if tok.line is None or tok.column is None:
        return _end_span(source)
    if tok.type == "_NL":
        return point_span(source, tok.line, tok.column)
    width = max(1, (tok.end_column or tok.column + len(tok)) - tok.column)
    if tok.end_line is not None and tok.end_line != tok.line:
        width = 1
    return point_span(source, tok.line, tok.column, width)


def _line(tok: Token) -> int:
    """The line of a token from the lexer (only hand-made tokens lack a position)."""
    assert tok.line is not None, "lexer tokens carry positions"
    return tok.line


def _end_span(source: SourceFile) -> Span:
    lines = source.text.rstrip("\n").split("\n")  # as the lexer counts lines
    line = len(lines)
    while line > 1 and not lines[line - 1].strip():
        line -= 1
    return point_span(source, line, len(lines[line - 1]) + 1)


def _bracket_error(source: SourceFile, tok: Token, opener: Token | None) -> DslSyntaxError:
    if opener is None:
        return DslSyntaxError(
            f"unmatched '{tok}': no bracket is open here",
            _tok_span(source, tok),
            "remove it, or add the matching opening bracket before it",
            "R103",
        )
    closer = ")" if opener == "(" else "]"
    note = (f"found '{tok}' here", _tok_span(source, tok))
    diag = Diagnostic(
        "R102",
        f"unclosed '{opener}': expected '{closer}' before '{tok}'",
        _tok_span(source, opener),
        f"add '{closer}' to close the '{opener}' opened here",
        (note,),
    )
    return DslSyntaxError(diagnostics=[diag])


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "NAME":
        return f"name '{tok}'"
    if tok.type == "NUMBER":
        return f"number {tok}"
    return f"'{tok}'"


def _expected_words(lark: Lark, names: set[str]) -> str:
    words: set[str] = set()
    if {"NAME", "NUMBER", "LPAR"} <= names:
        words.add("an expression")
        names = names - {"NAME", "NUMBER", "LPAR", "MINUS", "PLUS", "NOT"}
    for name in names:
        if name in TERMINAL_WORDS:
            words.add(TERMINAL_WORDS[name])
            continue
        try:
            pattern = lark.get_terminal(name).pattern
        except KeyError:
            continue
        if isinstance(pattern, PatternStr):
            words.add(f"'{pattern.value}'")
    listed = sorted(words)
    if not listed:
        return ""
    if len(listed) > 8:
        listed = [*listed[:8], "..."]
    return "; expected " + (listed[0] if len(listed) == 1 else "one of " + ", ".join(listed))


_EXAMPLE_KEYS: dict[tuple[Any, frozenset[str]], SyntaxErrorEntry] | None = None


def _error_key(exc: UnexpectedInput) -> tuple[Any, frozenset[str]] | None:
    """The LR state an error left the parser in, and the tokens it would have accepted.

    Like Lark's ``match_examples``, but compares the automaton state only, not the depth of
    the parser stack (which differs between the first and later statements of a block).
    """
    state = getattr(exc, "state", None)
    if state is None:
        return None
    accepts = getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ()
    return getattr(state, "position", state), frozenset(accepts)


def example_keys() -> dict[tuple[Any, frozenset[str]], SyntaxErrorEntry]:
    """The error key of every malformed snippet in the table (the first entry wins)."""
    global _EXAMPLE_KEYS
    if _EXAMPLE_KEYS is None:
        lark, _ = _parser()
        keys: dict[tuple[Any, frozenset[str]], SyntaxErrorEntry] = {}
        for entry in SYNTAX_ERRORS:
            for snippet in entry.examples:
                try:
                    lark.parse(snippet)
                except UnexpectedInput as exc:
                    key = _error_key(exc)
                    if key is not None:
                        keys.setdefault(key, entry)
                except BracketMismatch:
                    pass
        _EXAMPLE_KEYS = keys
    return _EXAMPLE_KEYS


def _match(lark: Lark, exc: UnexpectedInput) -> SyntaxErrorEntry | None:
    key = _error_key(exc)
    return example_keys().get(key) if key is not None else None


def _misplaced_not(source: SourceFile, tok: Token) -> DslSyntaxError | None:
    """``1 + not x``: after an operator the lexer reads ``not`` as a name, so the error comes at
    the next token; say what is wrong with the ``not`` instead (R327, as for ``1 + not (x)``)."""
    if tok.type == "$END" or tok.start_pos is None:
        return None
    before = source.text[: tok.start_pos]
    match = re.search(r"(?:[-+*/^%@<>]|[=!<>]=)[ \t]*(not)[ \t]*$", before)
    if match is None or tok.line is None:
        return None
    line_start = before.rfind("\n") + 1
    col = match.start(1) - line_start + 1
    return DslSyntaxError(
        "'not' binds more loosely than arithmetic and comparisons, so it cannot follow an operator",
        Span(source.name, tok.line, col, tok.line, col + 3, source),
        "put it in brackets: 1 + (not (x > 0.5))",
        "R327",
    )


def _unknown_statement(
    source: SourceFile, exc: UnexpectedInput, blocks: list[str], statement: list[Token]
) -> DslSyntaxError | None:
    """R128 for a statement of a block that starts with a word no statement starts with
    (``intial u = 1``, which the parser rejects only at ``u``): the misspelt first word is the
    mistake, so the caret goes there, with the statement words of this kind of block."""
    kind = blocks[-1] if blocks else None
    if not isinstance(exc, UnexpectedToken) or kind not in STATEMENT_WORDS:
        return None
    first = _first_word(exc, kind, statement)
    if first is None:
        return None
    words = _statement_words(kind)
    block = "network body" if kind in ("network", "repeat") else f"{kind} block"
    hint = did_you_mean(first.value, words) or f"a statement of a {block} starts with " + (
        ", ".join(words) + (", or is an equation 'LHS = RHS'" if kind == "pde" else "")
    )
    if kind in ("network", "repeat") and hint.startswith("a statement"):
        hint = "a network body holds assignments 'NAME = expression', repeat and return"
    return DslSyntaxError(
        f"unknown statement '{first.value}' in a {block}", _tok_span(source, first), hint, "R128"
    )


def _misspelt_objective(
    source: SourceFile, exc: UnexpectedInput, blocks: list[str], statement: list[Token]
) -> DslSyntaxError | None:
    """R128 at ``minimze`` of ``lower minimze f(w)`` in a bilevel block, which the parser
    rejects only at the expression (it reads ``lower minimze`` as a variable declaration)."""
    if not isinstance(exc, UnexpectedToken) or not blocks or blocks[-1] != "bilevel":
        return None
    tok = exc.token
    before = statement[:-1] if statement and statement[-1] is tok else statement
    if len(before) != 2 or before[0].value not in ("lower", "upper") or tok.type == "_NL":
        return None
    word = before[1]
    hint = did_you_mean(word.value, ("minimize", "maximize"))
    if word.type != "NAME" or hint is None:
        return None
    return DslSyntaxError(
        f"unknown word '{word.value}' after '{before[0].value}'",
        _tok_span(source, word),
        hint,
        "R128",
    )


def _double_equals(
    source: SourceFile, exc: UnexpectedInput, statement: list[Token]
) -> DslSyntaxError | None:
    """R129 at the ``==`` of ``dt(u) == -u`` (or ``const c == 1``), where the parser wants the
    '=' of an equation or a declaration: the comparison was meant as that '='."""
    if not isinstance(exc, UnexpectedToken):
        return None
    tok, span = exc.token, None
    before = statement[:-1] if statement and statement[-1] is tok else statement
    if (
        tok.value == "="
        and before
        and before[-1].value == "="
        and before[-1].end_pos == tok.start_pos
    ):
        span = _tok_span(source, before[-1])  # after a name the lexer reads '==' as '=' '='
        span = Span(source.name, span.line, span.col, span.end_line, span.end_col + 1, source)
    elif "EQUAL" in set(exc.accepts or exc.expected):
        depth = 0
        for t in [*before, tok]:
            depth += (t.type in ("LPAR", "LSQB")) - (t.type in ("RPAR", "RSQB"))
            if t.value == "==" and depth == 0:
                span = _tok_span(source, t)
    if span is None:
        return None
    return DslSyntaxError(
        "'==' is a comparison: an equation or a declaration uses '='",
        span,
        "write a single '=', e.g. dt(u) = -u",
        "R129",
    )


_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
_CONTINUE_HINT = (
    "a new line ends a statement outside brackets: to continue the line before, put its "
    "expression in '( )' or end that line with '\\'"
)


def _leading_operator(
    source: SourceFile, exc: UnexpectedToken, before: list[Token]
) -> DslSyntaxError | None:
    """R130 at the operator that starts a line meant to continue the line before it
    (``dt(u) = lap(u)`` then ``+ 0 * u``): a new line ended the equation there, so the
    parser reads a new statement without '='."""
    tok = exc.token
    if not before and tok.value in ("*", "/", "^", "**", "%", "@") and tok.type != "NAME":
        op = tok
    elif (
        before
        and before[0].value in ("+", "-")
        and tok.type == "_NL"
        and "EQUAL" in set(exc.accepts or exc.expected)
    ):
        op = before[0]
    else:
        return None
    if op is tok:
        message = f"a statement cannot start with '{op}'"
    else:
        message = f"the statement that starts with '{op}' has no '='"
    return DslSyntaxError(message, _tok_span(source, op), _CONTINUE_HINT, "R130")


def _chained_comparison(
    source: SourceFile, tok: Token, before: list[Token]
) -> DslSyntaxError | None:
    """R100 at the second comparison of ``a < b < c``: comparisons do not chain (it would
    read as Python's ``a < b and b < c`` or as ``(a < b) < c``, so neither is guessed)."""
    if tok.value not in _COMPARISONS or tok.type == "NAME":
        return None
    levels = [(0, -1)]  # per open bracket: where the operand starts, the last comparison
    for i, t in enumerate(before):
        if t.type in ("LPAR", "LSQB"):
            levels.append((i + 1, -1))
        elif t.type in ("RPAR", "RSQB") and len(levels) > 1:
            levels.pop()
        elif t.value in ("=", ",", "and", "or", "not", "at"):
            levels[-1] = (i + 1, -1)
        elif t.value in _COMPARISONS and t.type != "NAME":
            levels[-1] = (levels[-1][0], i)
    start, first = levels[-1]
    if first <= start or first + 1 >= len(before):
        return None
    left = _text_between(source, before[start], before[first - 1])
    middle = _text_between(source, before[first + 1], before[-1])
    return DslSyntaxError(
        f"unexpected '{tok}': comparisons do not chain",
        _tok_span(source, tok),
        f"write '{left} {before[first]} {middle} and {middle} {tok} {_operand_after(source, tok)}'",
        "R100",
    )


def _text_between(source: SourceFile, first: Token, last: Token) -> str:
    """The source text from the start of ``first`` to the end of ``last``, on one line."""
    if first.start_pos is None or last.end_pos is None:
        return "..."
    return " ".join(source.text[first.start_pos : last.end_pos].split())


def _operand_after(source: SourceFile, tok: Token) -> str:
    """The text of the operand after ``tok`` on its line, up to the next ',', closing bracket,
    'and', 'or' or comment outside brackets ('...' where there is none)."""
    if tok.end_pos is None:
        return "..."
    line = source.text[tok.end_pos :].split("\n", 1)[0].partition("#")[0]
    depth = 0
    for i, ch in enumerate(line):
        depth += (ch in "([") - (ch in ")]")
        if depth < 0 or (depth == 0 and ch in ",;"):
            line = line[:i]
            break
    words = line.split()
    for stop in ("and", "or"):
        words = words[: words.index(stop)] if stop in words else words
    return " ".join(words) or "..."


def _two_in_a_row(
    source: SourceFile, exc: UnexpectedToken, before: list[Token], blocks: list[str]
) -> DslSyntaxError | None:
    """R112 where an expression starts right after a complete one (``2 u``, ``[0 1]``,
    ``at x = 0 x = 1``), in any statement: ritz has no implicit product, so '*' or ',' is
    missing; the hint names the fix with the user's own operands. Not where the table has a
    message of its own for the place (``boundary u = 0 on x = 0``), after a misplaced 'not',
    or in a train setting (``steps 100 200``: one value, no product meant)."""
    tok = exc.token
    expected = set(exc.accepts or exc.expected)
    ends_value = ("NAME", "NUMBER", "RPAR", "RSQB")
    if not before or before[-1].type not in ends_value or "STAR" not in expected:
        return None
    words = ("and", "or", "not")
    if tok.type not in ("NAME", "NUMBER", "LPAR") or {tok.value, before[-1].value} & set(words):
        return None
    setting = blocks[-1:] == ["train"] and before[0].value not in ("loss", "net", "data")
    entry = _match(_parser()[0], exc)
    if setting or (entry is not None and entry.code != "R112"):
        return None
    left, right = before[-1], tok
    operand = len(before) < 2 or before[-2].value not in ("^", "**", ".")
    simple = operand and left.type in ("NAME", "NUMBER") and right.type in ("NAME", "NUMBER")
    if "COMMA" not in expected:
        example = f"write '{left} * {right}'" if simple else "add '*' between them"
        hint = f"{example}: a product needs '*' (ritz has no implicit multiplication)"
        what = "an operator is missing"
    elif any(t.value == "at" for t in before) and before[0].value == "boundary":
        hint = "separate the sides with ',', e.g. 'at x = 0, x = 1'"
        what = "a ',' is missing"
    else:
        example = f"'{left}, {right}'" if simple else "','"
        hint = f"separate them with {example}, or join them with an operator (e.g. '*')"
        what = "an operator or ',' is missing"
    return DslSyntaxError(
        f"two expressions in a row: {what} (found {_describe(tok)})",
        _tok_span(source, tok),
        hint,
        "R112",
    )


def _statement_words(kind: str) -> tuple[str, ...]:
    """The words statements of a block start with; in a train block, its settings too."""
    from .check.common import TRAIN_SETTINGS

    words = STATEMENT_WORDS[kind]
    return (*words, *TRAIN_SETTINGS) if kind == "train" else words


def _first_word(exc: UnexpectedToken, kind: str, statement: list[Token]) -> Token | None:
    """The misspelt first word of the statement ``exc`` failed in, or None if it is not one:
    a name that no statement of the block starts with, where the parser wants no name (a
    bilevel block), followed by a name or number (where it would start an equation or an
    assignment), or, in a train block, by anything a setting cannot hold."""
    tok = exc.token
    # the contextual lexer raises before the post-lexer sees a token no terminal here matches
    before = statement[:-1] if statement and statement[-1] is tok else statement
    if tok.type in ("_NL", "$END"):
        return None
    if not before:
        expected = set(exc.accepts or exc.expected)
        wanted = tok.type == "NAME" and "NAME" not in expected
        return tok if wanted and tok.value not in STATEMENT_WORDS[kind] else None
    first = before[0]
    if first.type != "NAME" or first.value in _statement_words(kind):
        return None
    if kind == "train" or (len(before) == 1 and tok.type in ("NAME", "NUMBER")):
        return first
    return None


def _syntax_error(source: SourceFile, exc: UnexpectedInput, opened: list[Token]) -> DslSyntaxError:
    lark, _ = _parser()
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        # Lark declares pos_in_stream as None on the base class; UnexpectedCharacters always
        # sets it to the lexer's position.
        pos = cast(int, exc.pos_in_stream)
        char = source.text[pos] if pos < len(source.text) else "?"
        return DslSyntaxError(
            f"unexpected character '{char}'",
            point_span(source, line, col),
            "names use letters, digits and '_'; comments start with '#'",
            "R101",
        )
    tok: Token
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = set(exc.accepts or exc.expected)
    elif isinstance(exc, UnexpectedEOF):
        tok = Token("$END", "")
        expected = set(exc.expected)
    else:  # pragma: no cover - Lark has no other kinds for LALR
        return DslSyntaxError(str(exc), None, None, "R100")
    tok_line = None if tok.type == "$END" else tok.line
    at_end = tok_line is None
    if opened and (tok_line is None or tok_line > _line(opened[-1])):
        return _bracket_error(
            source, tok if not at_end else Token("$END", "end of file"), opened[-1]
        )
    span = _end_span(source) if at_end else _tok_span(source, tok)
    misplaced_not = _misplaced_not(source, tok)
    if misplaced_not is not None:
        return misplaced_not
    entry = _match(lark, exc)
    found = _describe(tok)
    if entry is not None:
        return DslSyntaxError(f"{entry.message} (found {found})", span, entry.hint, entry.code)
    if at_end and "RBRACE" in expected:
        return DslSyntaxError(
            "unexpected end of file: a block is not closed",
            span,
            "add the missing '}'",
            "R104",
        )
    return DslSyntaxError(
        f"unexpected {found}{_expected_words(lark, expected)}",
        span,
        None,
        "R100",
    )
