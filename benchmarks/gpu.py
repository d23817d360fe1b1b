"""The GPU suite (``python -m benchmarks --gpu``): CuPy, hand CUDA, JAX, PyTorch and ritz.

Rows: device-to-device copy bandwidth (the roofline), 2-D heat 8192^2 x100 Euler steps in
float64 and float32, Gray-Scott RK4 4096^2 in float64 and float32, and the per-step time of a
long 256^2 heat run (launch-bound: what CUDA graphs of many steps must fix), then the cold and
warm start of every example on the cupy backend. Without CuPy or a GPU it prints why and exits
cleanly.
"""

from __future__ import annotations

import time

import numpy as np

from . import compile_times, gpu_peers, report, ritz_side
from .harness import Row, Unavailable, compare
from .workloads import GrayScott, Heat

# Steps sized so one timed run is long enough to time but the slowest peer stays short.
# dt keeps nu*dt/h^2 (heat) and Du*dt*8/h^2 (RK4) inside the stability limits.
FULL = {
    "copy": 1 << 28,
    "heat": Heat(8192, 100, dt=1e-9),
    "gs": GrayScott(4096, 20, dt=2**-8),
    "small": Heat(256, 2000, dt=1e-6),
    "repeats": 5,
}
QUICK = {
    "copy": 1 << 24,
    "heat": Heat(1024, 20, dt=5e-8),
    "gs": GrayScott(512, 5, dt=2**-4),
    "small": Heat(256, 200, dt=1e-6),
    "repeats": 3,
}


def gpu_name() -> str:
    cp = gpu_peers._cupy()
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def copy_bandwidth(n: int, repeats: int) -> Row:
    """Device-to-device copy of n float64 values; traffic counts the read and the write."""
    cp = gpu_peers._cupy()
    a = cp.ones(n, dtype=cp.float64)
    b = cp.empty_like(a)
    row = Row("d2d copy", "cupy memcpy", points=float(n), bytes=2.0 * a.nbytes)
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    b.data.copy_from_device(a.data, a.nbytes)
    best = float("inf")
    for _ in range(max(repeats, 10)):
        start.record()
        b.data.copy_from_device(a.data, a.nbytes)
        stop.record()
        stop.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, stop) / 1e3)
    row.seconds = best
    row.note = f"{a.nbytes / 2**20:.0f} MiB"
    return row


def _ritz(problem: str, case, dtype):
    impl = getattr(ritz_side, problem)(case, backend="cupy", dtype=np.dtype(dtype).name)
    return gpu_peers._synced(impl, gpu_peers.cupy_sync)


def _impls(problem: str, case, dtype, log) -> tuple[list, list[Row], str]:
    tag = "f64" if np.dtype(dtype) == np.float64 else "f32"
    if problem == "heat":
        work = f"heat {case.n}^2 x{case.steps} {tag}"
        makers = [
            ("ritz", lambda: _ritz("heat", case, dtype)),
            ("cuda (hand, naive)", lambda: gpu_peers.heat_cuda(case, dtype)),
            ("jax jit", lambda: gpu_peers.heat_jax(case, dtype)),
            ("pytorch eager", lambda: gpu_peers.slicing("heat", case, dtype, "torch")),
            ("cupy slicing", lambda: gpu_peers.slicing("heat", case, dtype, "cupy")),
        ]
    else:
        work = f"gray-scott {case.n}^2 rk4 x{case.steps} {tag}"
        makers = [
            ("ritz", lambda: _ritz("gray_scott", case, dtype)),
            ("jax jit", lambda: gpu_peers.gray_scott_jax(case, dtype)),
            ("cupy slicing", lambda: gpu_peers.slicing("gray_scott", case, dtype, "cupy")),
        ]
    impls, skipped = [], []
    for label, make in makers:
        try:
            impls.append(make())
        except Unavailable as exc:
            log(f"  {work}: {label} skipped: {exc}")
            skipped.append(Row(work, label, note=f"skipped: {exc}"))
        except Exception as exc:
            log(f"  {work}: {label} failed to build: {exc}")
            skipped.append(Row(work, label, note=f"failed: {type(exc).__name__}: {exc}"))
    return impls, skipped, work


def stencils(problem: str, case, dtype, repeats: int, log) -> list[Row]:
    impls, skipped, work = _impls(problem, case, dtype, log)
    n2, size = float(case.n) ** 2, np.dtype(dtype).itemsize
    traffic = (2 if problem == "heat" else 4) * size * n2
    return compare(work, impls, skipped, case.steps, repeats, n2, traffic, log)


def per_step(case: Heat, repeats: int, log) -> list[Row]:
    """A long small-grid run: time per step shows the launch overhead, not bandwidth."""
    rows = stencils("heat", case, np.float64, repeats, log)
    for r in rows:
        if r.seconds:
            r.note = f"{r.seconds / case.steps * 1e6:.2f} us/step; {r.note}".rstrip("; ")
    return rows


def main(quick: bool, json_path: str, repeats: int | None) -> int:
    try:
        gpu_peers._cupy()
    except Unavailable as exc:
        print(
            f"GPU suite skipped: {exc}. It needs CuPy and a CUDA GPU "
            "(JAX, PyTorch and ritz rows are added when those import)."
        )
        return 0
    sizes = QUICK if quick else FULL
    repeats = repeats or sizes["repeats"]
    name = gpu_name()
    print(f"ritz GPU benchmarks ({'quick' if quick else 'full'}) on {name}", flush=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    t0 = time.perf_counter()
    rows = [copy_bandwidth(sizes["copy"], repeats)]
    for dtype in (np.float64, np.float32):
        rows += stencils("heat", sizes["heat"], dtype, repeats, log)
    for dtype in (np.float64, np.float32):
        rows += stencils("gray_scott", sizes["gs"], dtype, repeats, log)
    rows += per_step(sizes["small"], repeats, log)
    log("  compile times (cupy backend, fresh interpreters) ...")
    rows += compile_times.run(False, {}, backend="cupy")  # every example, also when quick
    copy_gbs = rows[0].gbs
    print()
    print(report.table(rows, copy_gbs, ref_label="of copy"))
    print()
    print(report.LEGEND.replace("triad", "copy"))
    report.write_json(
        json_path,
        rows,
        {
            "suite": "gpu",
            "gpu": name,
            "quick": quick,
            "repeats": repeats,
            "copy_gb_per_s": copy_gbs,
            "wall_s": time.perf_counter() - t0,
        },
    )
    print(f"\nwrote {json_path}")
    return 0
