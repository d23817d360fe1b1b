"""Content-hashed directory of generated sources; files are written atomically."""

from __future__ import annotations

import os
import tempfile
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


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that readers see either no file or the whole file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
