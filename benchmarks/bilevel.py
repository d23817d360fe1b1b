"""Ridge hypergradient (BENCHMARKS.md): d validation loss / d lam at a train set of 2000 x 200
and a validation set of 1000 x 200, against the NumPy closed form in the same run (and JAXopt's
implicit differentiation where it is installed).

ritz's side is ``hypergrad``: Newton-CG on derived Hessian-vector products for the lower level,
one CG solve with the transposed Jacobian for the adjoint, no matrix ever formed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .harness import Row

SOURCE = """\
bilevel ridge {
    data X: [n, p], y: [n], Xv: [m, p], yv: [m]
    upper lam = 0.0
    lower w: [p] = 0
    lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum((Xv @ w - yv)^2)
    solve implicit(tol = 1e-10)
}
"""


def _data(n: int, m: int, p: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    w = rng.normal(size=p)
    X, Xv = rng.normal(size=(n, p)), rng.normal(size=(m, p))
    return {"X": X, "y": X @ w + rng.normal(size=n), "Xv": Xv, "yv": Xv @ w + rng.normal(size=m)}


def _closed(d: dict[str, np.ndarray], lam: float) -> float:
    X, y, Xv, yv = d["X"], d["y"], d["Xv"], d["yv"]
    A = X.T @ X + np.exp(lam) * np.eye(X.shape[1])
    w = np.linalg.solve(A, X.T @ y)
    return float((Xv @ w - yv) @ (Xv @ -np.linalg.solve(A, np.exp(lam) * w)))


def _best(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(quick: bool, repeats: int, log: Callable[[str], None]) -> list[Row]:
    import ritz

    n, m, p = (500, 250, 50) if quick else (2000, 1000, 200)
    d = _data(n, m, p)
    log("  bilevel ridge hypergradient ...")
    handle = ritz.compile(SOURCE).ridge
    ours_s, ours = _best(lambda: handle.hypergrad(lam=0.3, **d)["lam"], repeats)
    closed_s, exact = _best(lambda: _closed(d, 0.3), repeats)
    work = f"ridge hypergradient {n}x{p}, val {m}x{p}"
    rel = abs(float(ours) - float(exact)) / abs(float(exact))  # type: ignore[arg-type]
    return [
        Row(
            work,
            "ritz hypergrad",
            ours_s,
            note=f"rel. error {rel:.1e} vs closed form",
            extra={"rel_error": rel},
        ),
        Row(
            work,
            "numpy closed form",
            closed_s,
            ratio=closed_s / ours_s,
            note="two dense solves (LAPACK)",
        ),
    ]
