"""Checks of values given from Python that every handle shares: real arrays (data, initial
values, cotangents, coordinates), dtypes, backends and program text.

Each check raises a RuntimeInputError with the caller's code, never a NumPy error: a complex
array is refused, not cast (NumPy would drop its imaginary part with only a warning), and so are
text, None and objects that are no numbers.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..dsl.diagnostics import RuntimeInputError

BACKENDS = ("numba", "cupy")
DTYPES = ("float32", "float64")


def _describe(value: Any) -> str:
    """A short name of what was given instead of numbers or text."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return f"the text {value[:20]!r}" + ("..." if len(value) > 20 else "")
    if isinstance(value, np.ndarray):
        return "an array of text" if value.dtype.kind in "USa" else f"an array of {value.dtype}"
    if isinstance(value, list | tuple):
        try:
            kind = np.asarray(value).dtype.kind
        except (TypeError, ValueError):
            kind = "O"
        holds = "text" if kind in "USa" else "mixed values" if kind == "O" else ""
        return f"a {type(value).__name__}" + (f" of {holds}" if holds else "")
    shown = repr(value)
    return f"{type(value).__name__} {shown[:40]}" + ("..." if len(shown) > 40 else "")


def _boolean(value: Any) -> bool:
    """Whether ``value`` is True/False or an array (or list) of them."""
    if isinstance(value, bool | np.bool_):
        return True
    try:
        return np.asarray(value).dtype.kind == "b"
    except (TypeError, ValueError):
        return False


def real_array(
    value: Any,
    label: str,
    code: str,
    dtype: str = "float64",
    hint: str | None = None,
    booleans: bool = True,
) -> np.ndarray:
    """``value`` as a C-contiguous real array of ``dtype`` with its own shape (a 0-d array stays
    0-d) and finite values; ``code`` otherwise, with ``label`` (e.g. "'x'", "the initial value
    of 'u'") as the subject of the message. Whole numbers count as numbers, and so do booleans
    unless ``booleans`` is False (a coordinate or a step is no True or False)."""
    if not booleans and _boolean(value):
        raise RuntimeInputError(
            f"{label} must be a real number or an array of them, got {_describe(value)}",
            hint=hint or "give numbers, not True or False",
            code=code,
        )
    if value is None:
        raise RuntimeInputError(
            f"{label} is None, not an array",
            hint=hint or "give an array of real numbers",
            code=code,
        )
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
        raise RuntimeInputError(  # np.asarray would drop the mask and read what it hides
            f"{label} is a masked array with {int(np.ma.count_masked(value))} masked value(s)",
            hint="fill the masked values first (a.filled(0.0)), or give a plain array",
            code=code,
        )
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists, objects NumPy cannot read
        raw = None
    complex_objects = (
        raw is not None
        and raw.dtype.kind == "O"
        and any(isinstance(v, complex | np.complexfloating) for v in raw.flat)
    )
    if raw is not None and (raw.dtype.kind == "c" or complex_objects):
        raise RuntimeInputError(
            f"{label} holds complex numbers",
            hint=hint or "give real numbers (the .real part, if the imaginary part is not needed)",
            code=code,
        )
    out = None
    if raw is not None and raw.dtype.kind in "biufO":
        try:
            if raw.dtype.kind == "O":  # objects that are numbers (Fraction, a SymPy Float)
                if any(v is None for v in raw.flat):  # NumPy would read None as NaN
                    raise TypeError
                raw = raw.astype(np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                out = raw.astype(dtype, copy=False)
        except (TypeError, ValueError, OverflowError):
            out = None
    if out is None:
        raise RuntimeInputError(
            f"{label} must be an array of real numbers, got {_describe(value)}",
            hint=hint or "give a NumPy array (or a list) of real numbers",
            code=code,
        )
    if not np.all(np.isfinite(out)):
        bad = int(np.sum(~np.isfinite(out)))
        if np.all(np.isfinite(np.asarray(raw))):  # finite until cast to a narrower dtype
            raise RuntimeInputError(
                f"{label} holds {bad} value(s) too large for {dtype}",
                hint=f"scale the values, or compute in float64 (the largest {dtype} is "
                f"{np.finfo(dtype).max:.3g})",
                code=code,
            )
        raise RuntimeInputError(
            f"{label} holds NaN or infinite values ({bad} of {out.size})",
            hint=hint or "give finite numbers",
            code=code,
        )
    return np.ascontiguousarray(out) if out.ndim else out


def dtype_name(value: Any) -> Any:
    """A NumPy dtype or scalar type (``np.float32``, ``np.dtype("float64")``, ``float``) as its
    name (``"float32"``); strings and anything else are returned as given, for the caller's
    check to report."""
    if isinstance(value, str):
        return value
    try:
        return np.dtype(value).name
    except (TypeError, ValueError):
        return value


def memory_bytes() -> int:
    """The machine's physical memory (16 GiB where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 16 << 30


def positive_whole(value: Any) -> int | None:
    """``value`` as a positive whole number (a size: ``3``, ``3.0``, ``np.int64(3)``), or None
    where it is not one (``0``, ``2.5``, ``True``, ``"abc"``, nan)."""
    plain = value.item() if isinstance(value, np.generic) else value
    if isinstance(plain, bool) or not isinstance(plain, int | float):
        return None
    if isinstance(plain, int):  # any size: 10**20 is whole, and beyond NumPy's integers
        return plain if plain >= 1 else None
    if not (math.isfinite(plain) and plain.is_integer() and plain >= 1):
        return None
    return int(plain)


def checked_size(value: Any, subject: str, hint: str) -> int:
    """``value`` as a positive whole number (``positive_whole``), else R538 naming
    ``subject`` (a network's input size, a size of a block's data)."""
    whole = positive_whole(value)
    if whole is None:
        raise RuntimeInputError(
            f"{subject} must be a positive whole number, got {value!r}", hint=hint, code="R538"
        )
    return whole


def check_dtype(value: Any, what: str) -> str:
    """``value`` as "float32" or "float64" (NumPy dtypes and types count), else R538."""
    name = dtype_name(value)
    if name not in DTYPES:
        raise RuntimeInputError(
            f"option 'dtype' of {what} must be float32 or float64, got {value!r}",
            hint="give dtype='float32' or dtype='float64' (np.float32 and np.float64 count)",
            code="R538",
        )
    return str(name)


def check_backend(backend: Any) -> str:
    """R506 unless ``backend`` names a backend ("numba" or "cupy"): checked when a program is
    loaded, before anything is compiled. Whether CuPy and a device are present is checked at the
    first run (R530, R531): a program compiled for cupy can still be shown without a GPU."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        shown = f"'{backend}'" if isinstance(backend, str) else repr(backend)
        raise RuntimeInputError(
            f"unknown backend {shown}",
            hint="use backend='numba' (CPU) or backend='cupy' (NVIDIA GPU)",
            code="R506",
        )
    return backend


def program_text(source: Any, name: str = "<string>") -> str:
    """The text given to ``ritz.compile``: a str, or bytes read as a file is (UTF-8, R126 at
    the first byte that is not; a leading byte-order mark dropped, CRLF and CR as LF); anything
    else is R516."""
    if isinstance(source, bytes | bytearray | memoryview):
        from ..dsl.imports import decode_program

        return decode_program(bytes(source), name)
    if not isinstance(source, str):
        raise RuntimeInputError(
            f"ritz.compile takes the program text as a str, got {_describe(source)}",
            hint="pass the text of a program (ritz.load takes the path of a .dsl file)",
            code="R516",
        )
    return source


def program_path(path: Any) -> Any:
    """The path given to ``ritz.load``: a str or an os.PathLike, else R516."""
    import os

    if not isinstance(path, str | os.PathLike):
        raise RuntimeInputError(
            f"ritz.load takes the path of a .dsl file, got {_describe(path)}",
            hint="pass a str or pathlib.Path (ritz.compile takes program text)",
            code="R516",
        )
    return path


def source_name(name: Any) -> str:
    """The ``name`` of ``ritz.compile`` (shown in diagnostics): a str, else R516."""
    if not isinstance(name, str):
        raise RuntimeInputError(
            f"the name of a compiled program must be a str, got {_describe(name)}",
            hint="for example name='model.dsl'",
            code="R516",
        )
    return name


def keywords_only(
    entry: str, args: tuple[Any, ...], example: str, what: str = "its values"
) -> None:
    """R535 for values passed by position to an entry that takes them by name (a value by
    position would otherwise land in the first keyword, e.g. ``progress``, or be a TypeError)."""
    if args:
        raise RuntimeInputError(
            f"{entry} takes {what} as keywords; got {len(args)} by position",
            hint=f"name them, e.g. {example}",
            code="R535",
        )
