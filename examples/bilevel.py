"""The three bilevel blocks of bilevel.dsl, each checked against what is known in closed form.

ridge: the hypergradient d(validation loss)/d(lam) against the exact formula, then the tuned
penalty. cournot and oligopoly: the Stackelberg quantities (a - c) / 2b for the leader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import ritz

HERE = Path(__file__).resolve().parent


def ridge_data(seed: int = 0, n: int = 200, m: int = 100, p: int = 50) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=p)
    X, Xv = rng.normal(size=(n, p)), rng.normal(size=(m, p))
    noise = 4.0
    return {
        "X": X,
        "y": X @ w_true + noise * rng.normal(size=n),
        "Xv": Xv,
        "yv": Xv @ w_true + noise * rng.normal(size=m),
    }


def exact_hypergrad(d: dict[str, np.ndarray], lam: float) -> float:
    X, y, Xv, yv = d["X"], d["y"], d["Xv"], d["yv"]
    A = X.T @ X + np.exp(lam) * np.eye(X.shape[1])
    w = np.linalg.solve(A, X.T @ y)
    return float((Xv @ w - yv) @ (Xv @ -np.linalg.solve(A, np.exp(lam) * w)))


def main() -> dict[str, float]:
    mod = ritz.load(HERE / "bilevel.dsl")
    d = ridge_data()
    h = mod.ridge.hypergrad(lam=0.3, **d)["lam"]
    exact = exact_hypergrad(d, 0.3)
    res = mod.ridge.solve(**d)
    print(
        f"ridge: d upper / d lam at lam = 0.3: {h:.10g} (exact {exact:.10g}); tuned lam = "
        f"{res.upper['lam']:.6f} in {res.info['iterations']} L-BFGS-B steps, validation loss "
        f"{res.history[0]:.4g} -> {res.history[-1]:.4g}"
    )
    c = mod.cournot.solve()
    print(
        f"cournot: leader q1 = {c.upper['q1']:.6f} (45), follower q2 = {c.lower['q2']:.6f} (22.5)"
    )
    o = mod.oligopoly.solve()
    print(
        f"oligopoly: leader q0 = {o.upper['q0']:.6f} (45), followers q1 = {o.lower['q1']:.6f}, "
        f"q2 = {o.lower['q2']:.6f} (15)"
    )
    return {
        "ridge_rel_error": abs(h - exact) / abs(exact),
        "lam": res.upper["lam"],
        "q1": c.upper["q1"],
        "q2": c.lower["q2"],
        "q0": o.upper["q0"],
        "followers": o.lower["q1"] + o.lower["q2"],
    }


if __name__ == "__main__":
    main()
