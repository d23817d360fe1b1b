"""Inverse problems with compiled gradients: recover a diffusivity from noisy observations.

ritz compiles inverse_heat.dsl; scipy's L-BFGS-B drives the fit, and every gradient comes
from ``sol.vjp``, the discrete adjoint that ritz derives. Two fits:

1. the scalar ``nu`` (one parameter: ``g.params["nu"]``);
2. the coefficient field ``kappa(x)`` (64 unknowns: ``g.initial["kappa"]``, as kappa is a
   field that stays constant in time), with a smoothness penalty, since observations of u
   say little about kappa where u is flat.

Run ``python examples/inverse_heat.py`` (about half a minute on a laptop, most of it the first
compilation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize

import ritz

HERE = Path(__file__).resolve().parent


def observations(heat, noise: float, seed: int, **truth) -> np.ndarray:
    """u at every output time of a solve with the true coefficients, plus Gaussian noise."""
    clean = heat.solve(**truth)["u"]
    rng = np.random.default_rng(seed)
    return clean + noise * np.abs(clean).max() * rng.standard_normal(clean.shape)


def fit_nu(heat, observed: np.ndarray, start: float = 1.0) -> tuple[float, int]:
    """Least squares over the scalar nu, bounded to [1e-3, 5]."""

    def loss_and_grad(p: np.ndarray) -> tuple[float, np.ndarray]:
        sol = heat.solve(nu=float(p[0]))
        r = sol["u"] - observed
        g = sol.vjp({"u": r}, params=["nu"])  # d/dnu of 0.5 * sum(r^2)
        return 0.5 * float(np.sum(r**2)), np.array([g.params["nu"]])

    res = minimize(loss_and_grad, [start], jac=True, method="L-BFGS-B", bounds=[(1e-3, 5.0)])
    return float(res.x[0]), int(res.nfev)


def fit_kappa(heat, observed: np.ndarray, penalty: float) -> tuple[np.ndarray, int]:
    """Least squares over kappa(x) > 0, plus penalty/2 * sum((kappa[i+1] - kappa[i])^2)."""
    cells = observed.shape[-1]

    def loss_and_grad(k: np.ndarray) -> tuple[float, np.ndarray]:
        sol = heat.solve(initial={"kappa": k})
        r = sol["u"] - observed
        g = sol.vjp({"u": r}, params=[])
        jumps = np.diff(k)
        smooth = np.zeros_like(k)
        smooth[:-1] -= jumps
        smooth[1:] += jumps
        value = 0.5 * float(np.sum(r**2)) + 0.5 * penalty * float(np.sum(jumps**2))
        return value, g.initial["kappa"] + penalty * smooth

    res = minimize(
        loss_and_grad,
        np.ones(cells),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.1, 5.0)] * cells,
        options={"maxiter": 200},
    )
    return res.x, int(res.nfev)


def main(noise: float = 0.01) -> dict[str, float]:
    heat = ritz.load(HERE / "inverse_heat.dsl").inverse_heat
    x = heat.solve().coords["x"]  # the first solve also compiles

    observed = observations(heat, noise, seed=0, nu=0.3)
    nu, evaluations = fit_nu(heat, observed)
    print(f"nu: true 0.3, recovered {nu:.5f} ({evaluations} solves with gradients)")

    kappa_true = 1.0 + 0.5 * np.sin(2 * np.pi * x)
    observed = observations(heat, noise, seed=1, initial={"kappa": kappa_true})
    kappa, evaluations = fit_kappa(heat, observed, penalty=1e-2)
    error = np.abs(kappa - kappa_true)
    rms, worst = float(np.sqrt(np.mean(error**2))), float(error.max())
    print(
        f"kappa(x) in [0.5, 1.5]: rms error {rms:.3f}, max {worst:.3f} after {evaluations} "
        f"solves with gradients (noise {noise:.0%} of max |u|)"
    )
    return {"nu": nu, "kappa_rms": rms, "kappa_max": worst}


if __name__ == "__main__":
    main()
