"""Imports: ``import std.x`` reads stdlib/x.dsl, ``import "f.dsl" as m`` a file beside the importer.

Modules are loaded depth first; a module that is still being loaded when it is imported
again closes a cycle, which is reported at the import that closes it.
"""

from __future__ import annotations

from pathlib import Path

from . import ast as A
from .diagnostics import DiagnosticSink, DslImportError, DslSyntaxError, RitzError
from .parser import parse_source
from .resolve import ModuleEnv, build_env
from .source import SourceFile, Span

STDLIB_DIR = Path(__file__).resolve().parent.parent / "stdlib"


def stdlib_modules() -> list[str]:
    """Names of the std modules (``std.nn`` ...)."""
    return sorted(f"std.{p.stem}" for p in STDLIB_DIR.glob("*.dsl"))


def read_program(p: Path) -> str:
    """The text of a program file (``decode_program``)."""
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DslImportError(
            f"cannot read '{p}': {exc.strerror}", None, "check the path", "R250"
        ) from None
    return decode_program(data, str(p))


def decode_program(data: bytes, name: str) -> str:
    """Program bytes read as text mode reads them (CRLF and CR become LF). They must be UTF-8
    (R126 at the first byte that is not, shown in its line); a leading byte-order mark is
    dropped: some editors write one, and it is no program text."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1  # where the bad byte's line starts
        end = data.find(b"\n", exc.start)
        col = len(data[start : exc.start].decode("utf-8", errors="replace")) + 1
        # the line is shown (bad bytes as U+FFFD) unless it is a binary file's endless one
        shown = None
        if (end if end >= 0 else len(data)) - start <= 200:
            shown = SourceFile(name, data.decode("utf-8", errors="replace"))
        span = Span(name, line, col, line, col + 1, shown)
        raise DslSyntaxError(
            f"the program is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            span,
            "a program is a text file; save it with the UTF-8 encoding",
            "R126",
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def import_path(imp: A.Import, base_dir: Path) -> Path:
    """The file an import refers to (it may not exist)."""
    if imp.is_path:
        return (base_dir / imp.module).resolve()
    parts = imp.module.split(".")
    if parts[0] != "std" or len(parts) < 2:
        raise DslImportError(
            f"unknown module '{imp.module}': only std modules can be imported by name",
            imp.span,
            f"available: {', '.join(stdlib_modules())}; import a file as 'import \"f.dsl\" as m'",
            "R252",
        )
    return STDLIB_DIR.joinpath(*parts[1:]).with_suffix(".dsl").resolve()


PRELUDE = STDLIB_DIR / "nn.dsl"
_prelude_cache: dict[tuple[Path, int], ModuleEnv] = {}


def prelude() -> ModuleEnv:
    """std.nn, whose fns (the activations: relu, sigmoid, ...) every module outside the
    standard library sees by their bare names unless it defines the name itself, as
    LANGUAGE.md writes them (``act = relu``, ``fn swish(z) = z * sigmoid(z)``). Loaded once
    per process (and again if the file changes)."""
    key = (PRELUDE, PRELUDE.stat().st_mtime_ns)
    if key not in _prelude_cache:
        source = SourceFile(str(PRELUDE), read_program(PRELUDE))
        _prelude_cache.clear()
        _prelude_cache[key] = Loader().env_of(parse_source(source), STDLIB_DIR, PRELUDE)
    return _prelude_cache[key]


class Loader:
    """Loads modules and their imports once each, detecting import cycles."""

    def __init__(self) -> None:
        self.done: dict[Path, ModuleEnv] = {}
        self.loading: list[Path] = []

    def env_of(self, module: A.Module, base_dir: Path, path: Path | None = None) -> ModuleEnv:
        """The environment of ``module``, loading its imports first."""
        sink = DiagnosticSink()
        if path is not None:
            self.loading.append(path)
        try:
            imports: list[tuple[A.Import, ModuleEnv]] = []
            for item in module.items:
                if isinstance(item, A.Import):
                    try:
                        imports.append((item, self._load(item, base_dir)))
                    except RitzError as exc:
                        for d in exc.diagnostics:
                            sink.add(d)
            # an import that failed leaves its names unknown: stop before reporting each use
            sink.raise_if_any()
            in_stdlib = path is not None and path.resolve().parent == STDLIB_DIR
            env = build_env(module, imports, sink, None if in_stdlib else prelude())
        finally:
            if path is not None:
                self.loading.pop()
        sink.raise_if_any()
        return env

    def _load(self, imp: A.Import, base_dir: Path) -> ModuleEnv:
        path = import_path(imp, base_dir)
        if path in self.loading:
            cycle = [*self.loading[self.loading.index(path) :], path]
            names = " -> ".join(p.name for p in cycle)
            raise DslImportError(
                f"import cycle: {names}",
                imp.span,
                "move the shared definitions into a third file that both import",
                "R251",
            )
        if path in self.done:
            return self.done[path]
        if path == PRELUDE:  # std.nn is built once per process, as the prelude
            self.done[path] = prelude()
            return self.done[path]
        if not path.is_file():
            hint = (
                f"available std modules: {', '.join(stdlib_modules())}"
                if not imp.is_path
                else f"the path is relative to the importing file's folder ({base_dir})"
            )
            raise DslImportError(
                f"cannot find module '{imp.module}' ({path})", imp.span, hint, "R250"
            )
        source = SourceFile(str(path), read_program(path))
        env = self.env_of(parse_source(source), path.parent, path)
        self.done[path] = env
        return env
