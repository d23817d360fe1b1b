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
from .imports import Loader
from .parser import parse_source
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
        if isinstance(item, ast.Pde):
            problem = check_pde(item, env, sink)
            if problem is not None:
                problems[item.name] = problem
        elif isinstance(item, ast.Network):
            _blocks.check_network(item, env, sink)
            problems[item.name] = item
        elif isinstance(item, ast.Train):
            _blocks.check_train(item, env, sink)
            problems[item.name] = item
        elif isinstance(item, ast.Bilevel):
            _blocks.check_bilevel(item, env, sink)
            problems[item.name] = item
    sink.raise_if_any()
    return CheckedModule(module.source, problems, env)


def load_text(text: str, name: str = "<string>", base_dir: Path | None = None) -> CheckedModule:
    """Parse and check program text (``name`` is used in diagnostics)."""
    return check_module(parse_source(SourceFile(name, text)), base_dir)


def load_file(path: str | Path) -> CheckedModule:
    """Parse and check a .dsl file; relative imports are resolved beside it."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DslImportError(
            f"cannot read '{p}': {exc.strerror}", None, "check the path", "R250"
        ) from None
    return check_module(parse_source(SourceFile(str(p), text)), p.resolve().parent)
