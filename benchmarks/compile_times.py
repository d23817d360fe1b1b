"""Cold and warm compile times of ritz programs, each measured in a fresh interpreter.

Cold: an empty cache directory, so parsing, lowering, code generation and Numba compilation
all happen. Warm: the same directory again, so the content-hashed sources and Numba's on-disk
cache are reused. Both clocks run from ``ritz.load`` to the end of the first time step
(``prepare()`` then ``advance(1)``, waiting for the device on a GPU) of every time-dependent
``pde`` in the file; other blocks are only loaded. ``import ritz`` is timed apart. On the cupy
backend, cold includes NVRTC compiling the kernels to a cubin in the cache directory, and warm
loads that cubin.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import Row

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

_PROBE = r"""
import json, re, sys, time
t0 = time.perf_counter()
import ritz
t1 = time.perf_counter()
path, cache, backend = sys.argv[1], sys.argv[2], sys.argv[3]
mod = ritz.load(path, cache_dir=cache, backend=backend)
t2 = time.perf_counter()
text = open(path).read()
stepped = []
for kind, name, body in re.findall(r"^\s*(pde)\s+(\w+)\s*\{(.*?)^\}", text, re.M | re.S):
    if not re.search(r"^\s*time\s", body, re.M):
        continue
    sim = getattr(mod, name).prepare()
    sim.advance(1)
    sim.backend.synchronize()
    stepped.append(name)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "total": t3 - t1, "stepped": stepped}))
"""


def _probe(path: Path, cache: str, timeout: float, backend: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), cache, backend],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(tail[:160])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def programs(root: Path, quick: bool, extra: dict[str, str]) -> list[Path]:
    """The benchmark's own programs (written to ``root``) plus every ``examples/*.dsl``."""
    paths = []
    for name, text in extra.items():
        p = root / f"{name}.dsl"
        p.write_text(text)
        paths.append(p)
    if not quick:
        paths += sorted(EXAMPLES.glob("*.dsl"))
    return paths


def run(
    quick: bool, extra: dict[str, str], timeout: float = 300.0, backend: str = "numba"
) -> list[Row]:
    """One row per program: seconds is the cold time, ``extra['warm']`` the warm one."""
    try:
        import ritz  # noqa: F401
    except Exception as exc:
        return [Row("compile", "ritz", note=f"skipped: ritz is not importable ({exc})")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in programs(Path(tmp), quick, extra):
            name = path.name if path.parent.name == "examples" else f"{path.stem} (bench)"
            row = Row("compile" if backend == "numba" else f"compile ({backend})", name)
            cache = tempfile.mkdtemp(dir=tmp)
            try:
                cold = _probe(path, cache, timeout, backend)
                warm = _probe(path, cache, timeout, backend)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                row.note = f"failed: {exc}"
                rows.append(row)
                continue
            row.seconds = cold["total"]
            row.extra = {
                "cold_s": cold["total"],
                "warm_s": warm["total"],
                "import_s": warm["import"],
                "stepped": cold["stepped"],
            }
            row.note = (
                f"warm {warm['total']:.3f} s, import {warm['import']:.2f} s; "
                f"stepped: {', '.join(cold['stepped']) or 'none'}"
            )
            rows.append(row)
    if not rows:
        rows.append(Row("compile", "ritz", note="no programs found"))
    return rows
