"""Post-lexer: newlines end statements only outside ( ) and [ ], and `;` is a newline.

Like Lark's Indenter it sees every token between lexer and parser. It also remembers the
brackets that are open, so an unclosed bracket is reported where it was opened.
"""

from __future__ import annotations

from collections.abc import Iterator

from lark import Token
from lark.lark import PostLex

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB"}
_CLOSERS = {"RPAR", "RSQB"}


class BracketMismatch(Exception):
    """A closing bracket that does not match the innermost open one (or none is open)."""

    def __init__(self, token: Token, opener: Token | None) -> None:
        super().__init__(str(token))
        self.token = token
        self.opener = opener


class StatementLexer(PostLex):
    """Drops newlines inside brackets, merges runs of newlines, and tracks open brackets.

    For syntax messages it also keeps the kinds of the open blocks (the word that starts each
    block's header: ``pde``, ``train``, ``repeat``, ...) and the tokens of the statement being
    read, so a misspelt statement keyword can be told from a malformed expression."""

    always_accept = ("_NL", "SEMI")

    def __init__(self) -> None:
        self.open_brackets: list[Token] = []
        self.blocks: list[str] = []
        self.statement: list[Token] = []
        self.ended = False

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.open_brackets, self.blocks, self.statement = [], [], []
        self.ended = False
        last_was_nl = False
        for tok in stream:
            kind = tok.type
            if kind in ("_NL", "SEMI"):
                if self.open_brackets:
                    if kind == "SEMI":
                        yield tok  # the parser rejects it with its position
                    continue
                self.ended = True  # the statement stays readable for an error at its end
                if last_was_nl:
                    continue
                last_was_nl = True
                yield Token.new_borrow_pos("_NL", tok.value, tok)
                continue
            last_was_nl = False
            self._track_statement(tok)
            if kind in _OPENERS:
                self.open_brackets.append(tok)
            elif kind in _CLOSERS:
                top = self.open_brackets[-1] if self.open_brackets else None
                if top is None or _OPENERS[top.type] != kind:
                    raise BracketMismatch(tok, top)
                self.open_brackets.pop()
            elif kind in ("LBRACE", "RBRACE") and self.open_brackets:
                raise BracketMismatch(tok, self.open_brackets[-1])
            yield tok

    def _track_statement(self, tok: Token) -> None:
        """Open and close blocks at braces outside brackets; collect the statement's tokens."""
        if self.ended:
            self.statement, self.ended = [], False
        if tok.type == "LBRACE" and not self.open_brackets:
            self.blocks.append(str(self.statement[0]) if self.statement else "")
            self.statement = []
        elif tok.type == "RBRACE" and not self.open_brackets:
            if self.blocks:
                self.blocks.pop()
            self.statement = []
        else:
            self.statement.append(tok)
