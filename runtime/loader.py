"""Import generated modules by path, so that Numba's on-disk cache (cache=True) works."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

# one lock per module name: a thread asking for a module another thread is importing waits
# for it to finish, rather than taking the half-executed module from sys.modules
_LOCKS: dict[str, threading.RLock] = {}
_GUARD = threading.Lock()
_DONE = "__ritz_loaded__"  # set on a module once its whole body has run


def import_path(path: Path, name: str) -> ModuleType:
    """Import the Python file at ``path`` as module ``name`` (reused if already imported)."""
    with _GUARD:
        lock = _LOCKS.setdefault(name, threading.RLock())
    with lock:
        existing = sys.modules.get(name)
        if (
            existing is not None
            and getattr(existing, "__file__", None) == str(path)
            and getattr(existing, _DONE, False)
        ):
            return existing
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import generated module {path}")
        module = importlib.util.module_from_spec(spec)
        # published before it runs, as importlib does (Numba's cache finds functions through
        # their module); readers wait on the lock above and check _DONE
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        setattr(module, _DONE, True)
        return module
