"""The printed table and the JSON file."""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata
from pathlib import Path

from .harness import Row

REFERENCE_WORK = ("triad", "d2d copy")  # the bandwidth rows the others are divided by
HEADER = (
    "work",
    "implementation",
    "time",
    "Mpts/s",
    "GB/s*",
    "of triad",
    "ratio",
    "rel diff",
    "note",
)


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.3f} s"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table(rows: list[Row], triad_gbs: float | None, ref_label: str = "of triad") -> str:
    """A fixed-width table; ratio = this row's time / ritz's time (> 1: ritz is faster)."""
    lines = []
    for r in rows:
        frac = r.gbs / triad_gbs if r.gbs and triad_gbs and r.work not in REFERENCE_WORK else None
        is_stencil = r.work not in ("compile",)
        lines.append(
            (
                r.work,
                r.impl,
                _fmt_time(r.seconds),
                _num(r.mpts if is_stencil else None, ".0f"),
                _num(r.gbs if is_stencil else None, ".1f"),
                _num(frac, ".2f"),
                _num(r.ratio, ".2f"),
                _num(r.rel_diff, ".1e"),
                r.note,
            )
        )
    header = (*HEADER[:5], ref_label, *HEADER[6:])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    widths[-1] = 0
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * max(w, 4) for w in widths))
    out += [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    return "\n".join(out)


LEGEND = """\
time: best of N wall times after a warm-up run (compilation excluded).
Mpts/s: grid-point updates (triad: elements) per second.
GB/s*: minimum memory traffic / time (heat: read u + write u; Gray-Scott: read u, v + write
  u, v per step; triad: 3 arrays); 'of triad' divides it by the measured triad bandwidth.
ratio: this row's time / ritz's time, so > 1.00 means ritz is faster (target >= 1.00).
rel diff: max |fields - reference fields| / max |reference| after the timed steps; the
  reference is ritz (or the first row when ritz is missing).
compile rows: time = cold compile (fresh process, empty cache); note gives the warm time."""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("numpy", "numba", "devito", "ritz", "cupy", "jax", "torch"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_json(path: str, rows: list[Row], meta: dict) -> None:
    data = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        **meta,
        "rows": [
            {
                "work": r.work,
                "impl": r.impl,
                "seconds": r.seconds,
                "mpts_per_s": r.mpts,
                "gb_per_s_min_traffic": r.gbs,
                "ratio_to_ritz": r.ratio,
                "rel_diff": r.rel_diff,
                "note": r.note,
                **r.extra,
            }
            for r in rows
        ],
    }
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
