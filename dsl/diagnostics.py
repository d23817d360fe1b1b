"""One error tree for every phase; each error carries Diagnostics with stable codes.

Codes: R1xx syntax, R2xx names and imports, R3xx types and shapes, R4xx unsupported
(valid but not compiled yet), R5xx run time, R9xx internal compiler errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .source import Span


@dataclass(frozen=True)
class Diagnostic:
    """A message about a span of a program, with what to do about it."""

    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    notes: tuple[tuple[str, Span | None], ...] = field(default=())

    def render(self) -> str:
        """``FILE:LINE:COL: error[CODE]: message``, the source line, a caret and the hint.
        Control characters of a program are made visible, never sent to the terminal:
        escaped in the message, hint and notes; one '?' each in a quoted source line, so that
        the caret stays under its column."""
        where = _printable(f"{self.span}: ") if self.span is not None else ""
        out = [f"{where}error[{self.code}]: {escaped(self.message)}"]
        if self.span is not None and self.span.source is not None:
            out.append(_printable(self.span.caret()))
        if self.hint:
            out.append(f"  hint: {escaped(self.hint)}")
        for text, span in self.notes:
            out.append(f"  note: {escaped(text)}" + (_printable(f" (at {span})") if span else ""))
            if span is not None and span.source is not None:
                out.append(_printable(span.caret()))
        return "\n".join(out)


def escaped(text: str) -> str:
    """``text`` with every non-printable character written as its escape (``\\x00``), so a
    NUL or a terminal escape of a program shows in a message instead of acting."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _printable(lines: str) -> str:
    """Source lines and file names with each non-printable character (but tabs and line ends)
    as '?'."""
    return "".join(c if c.isprintable() or c in "\t\n" else "?" for c in lines)


class RitzError(Exception):
    """Base of every error ritz raises for a program or its inputs."""

    default_code = "R000"

    def __init__(
        self,
        message: str | None = None,
        span: Span | None = None,
        hint: str | None = None,
        code: str | None = None,
        *,
        diagnostics: Iterable[Diagnostic] | None = None,
    ) -> None:
        diags = list(diagnostics or [])
        if message is not None:
            diags.insert(0, Diagnostic(code or self.default_code, message, span, hint))
        if not diags:
            raise ValueError("RitzError needs a message or diagnostics")
        self.diagnostics: list[Diagnostic] = diags
        super().__init__(self.render())

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]

    @property
    def code(self) -> str:
        return self.first.code

    @property
    def message(self) -> str:
        return self.first.message

    @property
    def hint(self) -> str | None:
        return self.first.hint

    @property
    def span(self) -> Span | None:
        return self.first.span

    @property
    def file(self) -> str | None:
        return self.span.file if self.span else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.col if self.span else None

    def render(self) -> str:
        """All diagnostics as the CLI prints them."""
        return "\n".join(d.render() for d in self.diagnostics)


class DslSyntaxError(RitzError):
    default_code = "R100"


class DslNameError(RitzError):
    default_code = "R200"


class DslImportError(RitzError):
    default_code = "R250"


class DslTypeError(RitzError):
    default_code = "R300"


class UnsupportedError(RitzError):
    default_code = "R400"


class RuntimeInputError(RitzError):
    default_code = "R500"


class InternalCompilerError(RitzError):
    default_code = "R900"


_KIND_BY_CODE = (
    ("R1", DslSyntaxError),
    ("R25", DslImportError),
    ("R2", DslNameError),
    ("R3", DslTypeError),
    ("R4", UnsupportedError),
    ("R5", RuntimeInputError),
    ("R9", InternalCompilerError),
)


def error_class(code: str) -> type[RitzError]:
    """The RitzError subclass that reports diagnostics of ``code``."""
    for prefix, cls in _KIND_BY_CODE:
        if code.startswith(prefix):
            return cls
    return RitzError


class DiagnosticSink:
    """Collects diagnostics so several errors are reported together, then fails once."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, hint))

    def add(self, diag: Diagnostic) -> None:
        self.items.append(diag)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raise one RitzError holding every collected diagnostic, sorted by position."""
        if not self.items:
            return
        items = sorted(
            self.items,
            key=lambda d: (d.span.file, d.span.line, d.span.col) if d.span else ("", 0, 0),
        )
        raise error_class(items[0].code)(diagnostics=items)


def shape_text(shape: Iterable[object]) -> str:
    """A shape as a program writes it, ``[N, 1]`` (not Python's ``['N', 1]``)."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint for a misspelt name, or None if nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def names_hint(kind: str, names: Iterable[str], plural: str | None = None) -> str:
    """``'fields are: u, v'``, or, where there are none, that none is declared: a hint never
    ends in an empty list."""
    listed = ", ".join(names)
    return f"{plural or kind + 's'} are: {listed}" if listed else f"no {kind} is declared"
