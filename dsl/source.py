"""Source files and spans: positions travel with every AST node so diagnostics can point."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceFile:
    """A program text and the name it is reported under (a path or ``<string>``)."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        """The 1-based ``line`` without its newline, or '' past the end."""
        # the lexer counts lines by "\n" only: splitlines() would also break at \f, \v, \x85,
        # U+2028, ... and quote the wrong line after them
        lines = self.text.split("\n")
        return lines[line - 1].rstrip("\r") if 1 <= line <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A region of a source file; 1-based lines and columns, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    source: SourceFile | None = field(default=None, compare=False, repr=False, hash=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def text(self) -> str:
        """The source text covered by the span (first line only for multi-line spans)."""
        if self.source is None:
            return ""
        line = self.source.line_text(self.line)
        end = self.end_col - 1 if self.end_line == self.line else len(line)
        return line[self.col - 1 : end]

    def caret(self) -> str:
        """The source line followed by a caret line under the spanned columns."""
        if self.source is None:
            return ""
        line = self.source.line_text(self.line)
        width = (
            (self.end_col - self.col) if self.end_line == self.line else len(line) - self.col + 1
        )
        width = max(1, width)
        lead = "".join(ch if ch == "\t" else " " for ch in line[: self.col - 1])
        return f"    {line}\n    {lead}{'^' * width}"


def point_span(source: SourceFile, line: int, col: int, width: int = 1) -> Span:
    """A span of ``width`` columns at a single position."""
    return Span(source.name, line, col, line, col + width, source)
