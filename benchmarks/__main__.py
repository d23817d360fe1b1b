"""``python -m benchmarks``: run the suite, print the table, write the JSON.

Thread counts must be fixed before Numba, OpenMP (Devito) or BLAS start their pools, so this
module sets the environment first and imports the workloads afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys

WORKS = ("triad", "heat", "gray_scott", "adjoint", "mlp", "pinn", "bilevel", "compile")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test (< 1 min)")
    p.add_argument(
        "--json", default=None, help="where to write results (default benchmarks/results.json)"
    )
    p.add_argument(
        "--only", default=",".join(WORKS), help=f"comma-separated subset of {', '.join(WORKS)}"
    )
    p.add_argument("--threads", type=int, default=2, help="threads for every peer (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per row (best is kept)")
    p.add_argument("--gpu", action="store_true", help="run the GPU suite instead (needs CuPy)")
    return p.parse_args(argv)


def _pin_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ.setdefault("DEVITO_LANGUAGE", "openmp")
    os.environ.setdefault("DEVITO_LOGGING", "ERROR")
    # One thread pool: BLAS threads would compete with the parallel loops.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    if args.gpu:
        from . import gpu

        return gpu.main(
            args.quick, args.json or os.path.join(here, "results_gpu.json"), args.repeats
        )
    only = {w.strip().replace("-", "_") for w in args.only.split(",") if w.strip()}
    unknown = only - set(WORKS)
    if unknown:
        print(f"unknown --only entries: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    _pin_threads(args.threads)

    from . import adjoint, bilevel, compile_times, cpu_stencils, mlp, pinn, report, triad
    from .workloads import FULL, QUICK

    sizes = QUICK if args.quick else FULL
    repeats = args.repeats or sizes.repeats
    print(
        f"ritz benchmarks ({'quick' if args.quick else 'full'}), {args.threads} threads, "
        f"{report.cpu_model()}",
        flush=True,
    )

    def log(msg: str) -> None:
        print(msg, flush=True)

    load = _load()
    if load is not None and load >= 0.5:
        log(
            f"  warning: load average {load:.2f} before the first row: other processes share the "
            "cores, and parallel rows can slow down many times over. Rerun on an idle machine."
        )

    rows = []
    if "triad" in only:
        log("  triad ...")
        rows.append(triad.run(sizes.triad_n, repeats))
    if "heat" in only:
        rows += cpu_stencils.heat(sizes.heat, repeats, log)
    if "gray_scott" in only:
        rows += cpu_stencils.gray_scott(sizes.gray_scott, repeats, log)
    if "adjoint" in only:
        rows += adjoint.run(sizes.heat, sizes.gray_scott, repeats, log)
    if "mlp" in only:
        rows += mlp.run(args.quick, args.threads, log)
    if "pinn" in only:
        rows += pinn.run(args.quick, args.threads, repeats, log)
    if "bilevel" in only:
        rows += bilevel.run(args.quick, repeats, log)
    if "compile" in only:
        log("  compile times ...")
        programs = {"heat2d": sizes.heat.source(), "gray_scott": sizes.gray_scott.source()}
        rows += compile_times.run(args.quick, programs)
    triad_gbs = next((r.gbs for r in rows if r.work == "triad" and r.gbs), None)
    print()
    print(report.table(rows, triad_gbs))
    print()
    print(report.LEGEND)
    path = args.json or os.path.join(here, "results.json")
    meta = {
        "suite": "cpu",
        "quick": args.quick,
        "threads": args.threads,
        "repeats": repeats,
        "triad_gb_per_s": triad_gbs,
        "load_average_before": load,
        "load_average_after": _load(),
    }
    report.write_json(path, rows, meta)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
