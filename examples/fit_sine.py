"""Train the two blocks of fit_sine.dsl from Python and check what they learned.

fit_sine: an MLP fitted to sin on [-pi, pi]. antiderivative: a DeepONet that maps a function u
(sampled at 20 points) to its antiderivative at a query point y, trained on random smooth u and
tested on functions it never saw, e.g. u = cos(2 pi x), whose antiderivative is sin(2 pi y)/(2 pi).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import ritz

HERE = Path(__file__).resolve().parent
M = 20  # sensors of u on [0, 1]


def random_functions(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Random smooth u (a few Fourier modes) at the sensors, and their exact antiderivative
    coefficients, so that G(u)(y) can be evaluated anywhere."""
    k = np.arange(1, 5)
    a = rng.normal(size=(count, 4)) / k
    b = rng.normal(size=(count, 4)) / k
    return a, b


def u_at(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    k = np.arange(1, 5)
    w = 2 * np.pi * k
    return (
        a[:, None, :] * np.cos(w * x[..., None]) + b[:, None, :] * np.sin(w * x[..., None])
    ).sum(-1)


def antiderivative_at(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> np.ndarray:
    k = np.arange(1, 5)
    w = 2 * np.pi * k
    return (a * np.sin(w * y) / w + b * (1 - np.cos(w * y)) / w).sum(-1, keepdims=True)


def operator_data(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    a, b = random_functions(rng, count)
    sensors = np.linspace(0, 1, M)
    y = rng.uniform(0, 1, size=(count, 1))
    return {"u": u_at(a, b, sensors), "y": y, "s": antiderivative_at(a, b, y)}


def main(steps_scale: float = 1.0) -> dict[str, float]:
    mod = ritz.load(HERE / "fit_sine.dsl")

    x = np.linspace(-np.pi, np.pi, 1000)[:, None]
    fit = mod.fit_sine.train(x=x, y=np.sin(x), steps=int(2000 * steps_scale))
    sine_error = float(np.abs(fit.net(x) - np.sin(x)).max())
    print(
        f"fit_sine: loss {fit.loss_history[0]:.3g} -> {fit.loss_history[-1]:.3g}, "
        f"max |f(x) - sin(x)| = {sine_error:.3f}"
    )

    rng = np.random.default_rng(0)
    train = operator_data(rng, 20000)
    op = mod.antiderivative.train(**train, steps=int(3000 * steps_scale))
    test = operator_data(np.random.default_rng(1), 2000)
    rel = float(
        np.sqrt(np.mean((op.net(test["u"], test["y"]) - test["s"]) ** 2) / np.mean(test["s"] ** 2))
    )
    ys = np.linspace(0, 1, 101)[:, None]
    cos_u = np.repeat(np.cos(2 * np.pi * np.linspace(0, 1, M))[None], len(ys), axis=0)
    cos_error = float(np.abs(op.net(cos_u, ys) - np.sin(2 * np.pi * ys) / (2 * np.pi)).max())
    print(
        f"antiderivative: loss {op.loss_history[0]:.3g} -> {op.loss_history[-1]:.3g}, "
        f"relative test error {rel:.3f}, max error on u = cos(2 pi x): {cos_error:.4f}"
    )
    return {"sine_error": sine_error, "operator_rel_error": rel, "cos_error": cos_error}


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
