"""Content-hashed directory of generated sources; files are written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def default_cache_dir() -> Path:
    """``$RITZ_CACHE_DIR``, else ``$XDG_CACHE_HOME/ritz``, else ``~/.cache/ritz``."""
    explicit = os.environ.get("RITZ_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ritz"


def cache_path(
    cache_dir: Path | str | None, backend: str, stem: str, key: str, suffix: str
) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / backend / f"{stem}_{key[:20]}{suffix}"


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
