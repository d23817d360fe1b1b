"""ritz: a compiler for numerical problems written in one small declarative language."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RitzError", "__version__", "compile", "load"]

if TYPE_CHECKING:
    from .runtime.api import CompiledModule


def load(path: str, backend: str = "numba", **kwargs: Any) -> CompiledModule:
    """Compile the .dsl file at ``path`` for ``backend`` ("numba" or "cupy")."""
    from .runtime.api import load as _load

    return _load(path, backend=backend, **kwargs)


def compile(
    source: str | bytes, backend: str = "numba", name: str = "<string>", **kwargs: Any
) -> CompiledModule:
    """Compile program text (a str, or UTF-8 bytes) for ``backend``; imports resolve relative
    to the working directory."""
    from .runtime.api import compile_text

    return compile_text(source, backend=backend, name=name, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "RitzError":
        from .dsl.diagnostics import RitzError

        return RitzError
    raise AttributeError(name)
