"""Content-hashed directory of generated sources; files are written atomically, and a module
is compiled and loaded once per cache file however many threads ask for it at once."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..dsl.diagnostics import RuntimeInputError

# the last line of every generated file in the cache: a file without it was cut short (a full
# disk, a copy that stopped, an edit) and is generated again rather than imported
END_MARK = "# end of a ritz generated module\n"

# one lock per cache file: the first use of a module from several threads compiles, writes and
# imports it once, and the others wait for the whole module (never a half-executed one)
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def default_cache_dir() -> Path:
    """``$RITZ_CACHE_DIR``, else ``$XDG_CACHE_HOME/ritz``, else ``~/.cache/ritz``."""
    explicit = os.environ.get("RITZ_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ritz"


def check_cache_dir(cache_dir: Any) -> str | os.PathLike[str] | None:
    """The ``cache_dir`` given to ``ritz.load``/``ritz.compile``: None (``$RITZ_CACHE_DIR`` or
    the default), a str or an os.PathLike, else R516; the directory it names (or the default)
    must be one that can be created or written (R527), checked without creating it."""
    if cache_dir is not None and not isinstance(cache_dir, str | os.PathLike):
        raise RuntimeInputError(
            f"cache_dir must be the path of a directory, got {cache_dir!r}",
            hint="give a str or pathlib.Path, or leave it out for $RITZ_CACHE_DIR "
            "(default ~/.cache/ritz)",
            code="R516",
        )
    root = cache_root(cache_dir)
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "is not a directory" if not existing.is_dir() else "is not writable"
        raise cache_dir_error(root, f"'{existing}' {why}")
    return cache_dir


def cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def cache_dir_error(root: Path, why: str) -> RuntimeInputError:
    """R527 for a cache directory in which generated modules cannot be written."""
    return RuntimeInputError(
        f"cannot write generated modules into the cache directory '{root}': {why}",
        hint="set RITZ_CACHE_DIR to a writable directory (or pass cache_dir= to ritz.load), "
        "e.g. RITZ_CACHE_DIR=/tmp/ritz-cache",
        code="R527",
    )


def cache_path(
    cache_dir: str | os.PathLike[str] | None, backend: str, stem: str, key: str, suffix: str
) -> Path:
    return cache_root(cache_dir) / backend / f"{stem}_{key[:20]}{suffix}"


def key_lock(path: Path) -> threading.RLock:
    """The lock of the cache file ``path`` (reentrant: a module may compile another)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.RLock())


def load_generated(
    path: Path, module_name: str, source: Callable[[], str], loader: Callable[[Path, str], Any]
) -> Any:
    """The module of the cache file ``path``, loaded by ``loader(path, module_name)``; the file
    is written first (from ``source()``) where it is missing, and written again where it is
    not whole (no END_MARK) or does not import. One thread at a time per file: the others wait
    and get the same, fully executed module."""
    with key_lock(path):
        for attempt in (1, 2):
            if not _complete(path):
                _write_module(path, source(), module_name)
            try:
                return loader(path, module_name)
            except (SyntaxError, ImportError, AttributeError, NameError):
                if attempt == 2:
                    raise
                _write_module(path, source(), module_name)  # damaged in some other way
    raise AssertionError("unreachable")


def _complete(path: Path) -> bool:
    """Whether the cache file ``path`` exists and ends with END_MARK (it was written whole)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            mark = END_MARK.encode()
            if size < len(mark):
                return False
            fh.seek(size - len(mark))
            return fh.read() == mark
    except OSError:
        return False


def _write_module(path: Path, text: str, module_name: str) -> None:
    """Write a generated module (with END_MARK) into the cache, forgetting any module of that
    name already imported from an older, damaged file; R527 where the directory is unusable."""
    sys.modules.pop(module_name, None)
    body = text if text.endswith("\n") else text + "\n"
    try:
        write_atomic(path, body + END_MARK)
    except OSError as exc:
        root = path.parent.parent
        raise cache_dir_error(root, exc.strerror or str(exc)) from None


@contextmanager
def atomic_target(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write into; it replaces ``path`` only when the block
    ends without an error, so readers see either no file or the whole file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=suffix or path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would leave: the old file's, else 0666 less the
    umask (mkstemp makes its files 0600, private to the owner, which an output must not be)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see atomic_target)."""
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def output_file(
    path: str, option: str, suffix: str, inputs: Iterable[str] = (), example: str | None = None
) -> Path:
    """Where ``--out`` or ``--plot`` will write, checked before anything runs, so that a long
    solve never ends in a file it cannot write. The name must end in ``suffix`` (R528; the file
    is written under exactly that name, never with a suffix added) and must not be one of the
    run's inputs, the program above all (R528); its directory must exist and be writable (R527,
    probed by creating a file there: permission bits do not tell for /proc or a read-only
    mount). Shared by the command line and ``Solution.save``; ``example`` is the hint's example
    of a good name (default: ``{option} result{suffix}``)."""
    target = Path(path)
    if target.suffix.lower() != suffix:
        raise RuntimeInputError(
            f"{option} '{path}' is not a {suffix} file name",
            hint=f"give a name ending in {suffix}, e.g. {example or f'{option} result{suffix}'}",
            code="R528",
        )
    for source in inputs:
        if target.exists() and Path(source).exists() and os.path.samefile(target, source):
            raise RuntimeInputError(
                f"{option} '{path}' is the input file '{source}': it would be overwritten",
                hint="write the output to another file",
                code="R528",
            )
    if target.is_dir():
        raise RuntimeInputError(
            f"{option} '{path}' is a directory", hint="give a file name", code="R527"
        )
    writable_dir(target.parent, option)
    return target


def writable_dir(directory: Path, option: str) -> None:
    """R527 unless ``directory`` is an existing directory in which a file can be created."""
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise RuntimeInputError(
            f"{option}: cannot create a file in '{directory}': it {what}",
            hint="give a path in an existing directory",
            code="R527",
        )
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".ritz_probe_")
    except OSError as exc:
        raise RuntimeInputError(
            f"{option}: cannot create a file in '{directory}' ({exc.strerror or exc})",
            hint="give a path in a directory you can write to",
            code="R527",
        ) from None
    os.close(fd)
    os.unlink(probe)
