"""ritz.dsl: program text -> checked module (parse, resolve imports and names, check blocks).

Public entry points: ``load_file``, ``load_text``, ``parse_source``, ``check_module``.
"""

from __future__ import annotations

from pathlib import Path

from . import ast as ast
from .ast import CheckedModule, Module
from .check import blocks as _blocks
from .check.pde import check_pde
from .diagnostics import (
    Diagnostic,
    DiagnosticSink,
    DslImportError,
    DslNameError,
    DslSyntaxError,
    DslTypeError,
    InternalCompilerError,
    RitzError,
    RuntimeInputError,
    UnsupportedError,
)
from .imports import Loader, read_program
from .parser import parse_source
from .resolve import ModuleEnv, too_deep
from .source import SourceFile, Span

__all__ = [
    "CheckedModule",
    "Diagnostic",
    "DslImportError",
    "DslNameError",
    "DslSyntaxError",
    "DslTypeError",
    "InternalCompilerError",
    "Module",
    "RitzError",
    "RuntimeInputError",
    "SourceFile",
    "Span",
    "UnsupportedError",
    "check_module",
    "load_file",
    "load_text",
    "parse_source",
]


def check_module(module: Module, base_dir: Path | None = None) -> CheckedModule:
    """Resolve imports and names and check every block; raises RitzError with all problems.

    Args:
        module: a parsed module (``parse_source``).
        base_dir: folder for relative imports; default: the folder of the module's file,
            or the current directory for text without a file.
    """
    path = Path(module.source.name)
    is_file = path.is_file()
    if base_dir is None:
        base_dir = path.resolve().parent if is_file else Path.cwd()
    env = Loader().env_of(module, base_dir, path.resolve() if is_file else None)
    sink = DiagnosticSink()
    problems: dict[str, ast.PdeProblem | ast.Network | ast.Train | ast.Bilevel] = {}
    for item in module.items:
        if not isinstance(item, ast.Pde | ast.Network | ast.Train | ast.Bilevel):
            continue
        try:
            checked = _check_block(item, env, sink)
        except RecursionError:
            too_deep(sink, item.span)
            continue
        if checked is not None:
            problems[item.name] = checked
    sink.raise_if_any()
    return CheckedModule(module.source, problems, env)


def _check_block(
    item: ast.Pde | ast.Network | ast.Train | ast.Bilevel, env: ModuleEnv, sink: DiagnosticSink
) -> ast.PdeProblem | ast.Network | ast.Train | ast.Bilevel | None:
    """Check one block; its checked form (None for a pde block with errors)."""
    if isinstance(item, ast.Pde):
        return check_pde(item, env, sink)
    if isinstance(item, ast.Network):
        _blocks.check_network(item, env, sink)
    elif isinstance(item, ast.Train):
        _blocks.check_train(item, env, sink)
    else:
        _blocks.check_bilevel(item, env, sink)
    return item


def load_text(text: str, name: str = "<string>", base_dir: Path | None = None) -> CheckedModule:
    """Parse and check program text (``name`` is used in diagnostics)."""
    return check_module(parse_source(SourceFile(name, text)), base_dir)


def load_file(path: str | Path) -> CheckedModule:
    """Parse and check a .dsl file; relative imports are resolved beside it.

    The file must be UTF-8 text (R126 at the first byte that is not, shown in its line). A
    leading byte-order mark is dropped: some editors write one, and it is no program text.
    Line ends are read as text mode reads them (CRLF and CR become LF).
    """
    p = Path(path)
    text = read_program(p)
    return check_module(parse_source(SourceFile(str(p), text)), p.resolve().parent)
