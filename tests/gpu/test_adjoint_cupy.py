"""The discrete adjoint on the CuPy backend: the same adjoint kernels (gathers and folds) as
CUDA, driven by the same reverse sweep, agree with the Numba backend's gradient (parameters of
boundary conditions included: their fold kernels write the parameters' cotangents). Runs on the CPU
emulator of the CUDA kernels and, where CuPy sees one, on a real GPU (see conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

import ritz

ROBIN_2D = """
pde rob {
    space x in [0, 1]
    space y in [0, 2] periodic
    time t in [0, 0.01]
    field u, v
    param k = 0.7, a = 2.0
    dt(u) = k * lap(u) + a * u * (1 - v)
    dt(v) = 0.2 * lap(v) - u * diff(v, x)
    boundary diff(u, x) + 3 * k * u = a * sin(5 * t) at x = 0
    boundary u = 1 at x = 1
    boundary v = 0 at all
    initial u = a * cos(x) * sin(pi * y) / 4
    initial v = x * (1 - x)
    solve fd(cells = [13, 11], scheme = rk4, dt = 2e-4)
}
"""


@pytest.mark.parametrize("order", [2, 4])
def test_cupy_adjoint_matches_numba(order: int, device) -> None:
    rng = np.random.default_rng(4)
    w = {f: rng.standard_normal((13, 11)) for f in ("u", "v")}
    grads = {}
    for backend in ("numba", "cupy"):
        sol = ritz.compile(ROBIN_2D, backend=backend)["rob"].solve(order=order)
        grads[backend] = sol.vjp(w)
    ref, got = grads["numba"], grads["cupy"]
    for p in ("k", "a"):
        assert got.params[p] == pytest.approx(ref.params[p], rel=1e-11)
    for f in ("u", "v"):
        np.testing.assert_allclose(got.initial[f], ref.initial[f], rtol=1e-11, atol=1e-13)


STEADY = """
pde p {
    space x in [0, 1]
    field u
    param k = 2, s = 1
    -diff(u, x, 2) + k * u^3 = s * sin(pi * x)
    boundary u = 0 at x = 0
    boundary diff(u, x) + k * u = 0.5 * s at x = 1
    solve fd(cells = 37, tol = 1e-13)
}
"""


def test_cupy_steady_adjoint_matches_numba(device) -> None:
    w = {"u": np.random.default_rng(6).standard_normal(37)}
    grads = {b: ritz.compile(STEADY, backend=b)["p"].solve().vjp(w) for b in ("numba", "cupy")}
    for p in ("k", "s"):
        assert grads["cupy"].params[p] == pytest.approx(grads["numba"].params[p], rel=1e-10)


IMEX = """
pde ac {
    space x in [0, 1] periodic
    space y in [0, 1]
    time t in [0, 0.4]
    field u
    param D = 1e-2
    dt(u) = D * lap(u) + u - u^3
    boundary diff(u, y) + u = 0.1 at y = 0
    boundary u = 0 at y = 1
    initial u = 0.3 * sin(2 * pi * x) * cos(pi * y)
    solve fd(cells = [11, 9], scheme = imex, dt = 0.1, every = 0.15)
}
"""


@pytest.mark.parametrize("scheme", ["imex", "cn"])
def test_cupy_implicit_adjoint_matches_numba(scheme: str, device) -> None:
    rng = np.random.default_rng(7)
    w = {"u": rng.standard_normal((4, 11, 9))}
    grads = {
        b: ritz.compile(IMEX, backend=b)["ac"].solve(scheme=scheme).vjp(w)
        for b in ("numba", "cupy")
    }
    assert grads["cupy"].params["D"] == pytest.approx(grads["numba"].params["D"], rel=1e-10)
    np.testing.assert_allclose(
        grads["cupy"].initial["u"], grads["numba"].initial["u"], rtol=1e-10, atol=1e-12
    )
