"""Ridge hypergradient (BENCHMARKS.md): d validation loss / d lam at a train set of 2000 x 200
and a validation set of 1000 x 200, against the NumPy closed form in the same run.

ritz's ``implicit``: Newton-CG on derived Hessian-vector products for the lower level, one CG
solve with the transposed Jacobian for the adjoint, no matrix ever formed. ``unroll(k = 500)``:
reverse mode through 500 gradient steps, against the same 500 steps differentiated by hand in
NumPy (forward mode, one extra matrix-vector pair per step). ``penalty``: the extrapolated
value-function penalty (first derivatives only).
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


def _unrolled(d: dict[str, np.ndarray], lam: float, k: int, eta: float) -> float:
    """dF/dlam of k gradient steps from w = 0, forward mode by hand."""
    X, y, Xv, yv = d["X"], d["y"], d["Xv"], d["yv"]
    w, dw = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    c = np.exp(lam)
    for _ in range(k):
        w, dw = w - eta * (X.T @ (X @ w - y) + c * w), dw - eta * (X.T @ (X @ dw) + c * (w + dw))
    return float((Xv @ w - yv) @ (Xv @ dw))


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
    k, eta = 500, 1.0 / np.linalg.norm(d["X"], 2) ** 2
    unroll_s, unrolled = _best(
        lambda: handle.hypergrad(lam=0.3, method="unroll", k=k, inner_lr=eta, **d)["lam"], repeats
    )
    by_hand_s, by_hand = _best(lambda: _unrolled(d, 0.3, k, eta), repeats)
    penalty_s, penalised = _best(
        lambda: handle.hypergrad(lam=0.3, method="penalty", **d)["lam"], repeats
    )
    work = f"ridge hypergradient {n}x{p}, val {m}x{p}"

    def rel(value: object, to: object = exact) -> float:
        return abs(float(value) - float(to)) / abs(float(to))  # type: ignore[arg-type]

    return [
        Row(
            work,
            "ritz hypergrad (implicit)",
            ours_s,
            note=f"rel. error {rel(ours):.1e} vs closed form",
            extra={"rel_error": rel(ours)},
        ),
        Row(
            work,
            "numpy closed form",
            closed_s,
            ratio=closed_s / ours_s,
            note="two dense solves (LAPACK)",
        ),
        Row(
            work,
            f"ritz unroll(k = {k})",
            unroll_s,
            note=f"rel. error {rel(unrolled):.1e} vs closed form, "
            f"{rel(unrolled, by_hand):.1e} vs the same steps by hand",
            extra={"rel_error": rel(unrolled), "vs_by_hand": rel(unrolled, by_hand)},
        ),
        Row(
            work,
            f"numpy unrolled by hand (k = {k})",
            by_hand_s,
            ratio=by_hand_s / unroll_s,
            note="forward mode, 2 matrix-vector pairs per step",
        ),
        Row(
            work,
            "ritz penalty (rho auto)",
            penalty_s,
            note=f"rel. error {rel(penalised):.1e} vs closed form",
            extra={"rel_error": rel(penalised)},
        ),
    ]
