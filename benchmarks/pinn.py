"""Burgers PINN loss + weight gradient (BENCHMARKS.md): the MLP 2 -> 64 -> 64 -> 64 -> 1 (tanh)
on 4096 interior points, u, u_x, u_t, u_xx and the gradient of the mean squared residual with
respect to every weight, against PyTorch autograd (double backward) in the same run.

ritz's loss also holds the boundary and initial terms, on 64 points each (1.5% more points).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .harness import Row

SOURCE = """\
import std.nn as nn
pde burgers {
    space x in [-1, 1]
    time  t in [0, 1]
    field u
    param nu = 0.01 / pi
    dt(u) = -u * diff(u, x) + nu * diff(u, x, 2)
    boundary u = 0 at x = -1, x = 1
    initial  u = -sin(pi * x)
    solve pinn(net = nn.mlp(width = 64, depth = 3, act = tanh), points = POINTS,
               boundary_points = 64, initial_points = 64, steps = 1, dtype = DTYPE)
}
"""


def _torch(x: np.ndarray, params: dict, repeats: int, threads: int, dtype: str) -> float:
    import torch

    torch.set_num_threads(threads)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    pts = torch.tensor(x.astype(dtype))
    nu = 0.01 / np.pi

    def evaluate() -> None:
        p = pts.clone().requires_grad_(True)
        h = p
        for n in ("net.h", "net.h.2", "net.h.3"):
            h = torch.tanh(h @ t[f"{n}.W"] + t[f"{n}.b"])
        u = (h @ t["net.out.W"] + t["net.out.b"])[:, 0]
        du = torch.autograd.grad(u.sum(), p, create_graph=True)[0]
        ux, ut = du[:, 0], du[:, 1]
        uxx = torch.autograd.grad(ux.sum(), p, create_graph=True)[0][:, 0]
        loss = ((ut + u * ux - nu * uxx) ** 2).mean()
        torch.autograd.grad(loss, list(t.values()))

    evaluate()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            evaluate()
        best = min(best, (time.perf_counter() - start) / 5)
    return best


def run(quick: bool, threads: int, repeats: int, log: Callable[[str], None]) -> list[Row]:
    import ritz
    from ritz.runtime.networks import init_weights, pack
    from ritz.runtime.pinn import pinn_inputs

    points = 1024 if quick else 4096
    rows: list[Row] = []
    for dtype in ("float32", "float64"):
        log(f"  pinn loss + gradient ({dtype}) ...")
        src = SOURCE.replace("POINTS", str(points)).replace("DTYPE", dtype)
        handle = ritz.compile(src).burgers
        handle.solve(method="pinn")  # compiles
        key = next(k for k in handle._artifacts if k.startswith("('pinn'"))
        art, mod = handle._artifacts[key], handle._modules[key]
        merged = dict(handle.problem.solves[0].options)
        data = pinn_inputs(art, handle.problem, merged, {"nu": 0.01 / np.pi}, dtype)
        params = init_weights(art.weights, 0, dtype)
        w = pack(params, art)
        g = np.zeros_like(w)
        mod.loss_and_grad(w, g, *data)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(5):
                mod.loss_and_grad(w, g, *data)
            best = min(best, (time.perf_counter() - start) / 5)
        work = f"burgers pinn loss+grad, mlp 2-64-64-64-1, {points} pts, {dtype}"
        rows.append(
            Row(work, "ritz", best, note=f"{1 / best:.1f} evals/s", extra={"evals_per_s": 1 / best})
        )
        try:
            import torch  # noqa: F401
        except ImportError:
            continue
        interior = data[list(art.entries["loss_and_grad"].inputs).index("pts:interior")]
        t_s = _torch(np.asarray(interior), params, repeats, threads, dtype)
        rows.append(
            Row(
                work,
                "pytorch autograd",
                t_s,
                ratio=t_s / best,
                note=f"{1 / t_s:.1f} evals/s; ritz / pytorch = {t_s / best:.2f}",
                extra={"evals_per_s": 1 / t_s},
            )
        )
    return rows
