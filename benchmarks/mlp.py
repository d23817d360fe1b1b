"""MLP training steps per second: ritz's compiled Adam loop against PyTorch (CPU) in the same run.

The workload of BENCHMARKS.md: an MLP 2 -> 64 -> 64 -> 64 -> 1 with tanh, mean squared error,
Adam, batch 4096 (every step sees all 4096 rows), float32 and float64. Both sides start from the
same weights; the row's rel_diff is the difference of the final losses after the timed steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .harness import Row

SOURCE = """\
import std.nn as nn
train mlp_fit {
    net f = nn.mlp(width = 64, depth = 3)
    data x: [N, 2], y: [N, 1]
    loss mean((f(x) - y)^2)
    optimizer adam(lr = 1e-3)
    dtype DTYPE
}
"""


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(n, 2))
    return x, np.sin(3 * x[:, :1]) * np.cos(2 * x[:, 1:])


def _torch(params: dict, x: np.ndarray, y: np.ndarray, steps: int, threads: int, dtype: str):
    import torch

    torch.set_num_threads(threads)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt, yt = torch.tensor(x.astype(dtype)), torch.tensor(y.astype(dtype))
    names = ["f.h", "f.h.2", "f.h.3"]
    opt = torch.optim.Adam(list(t.values()), lr=1e-3)

    def step() -> float:
        opt.zero_grad()
        h = xt
        for n in names:
            h = torch.tanh(h @ t[f"{n}.W"] + t[f"{n}.b"])
        loss = ((h @ t["f.out.W"] + t["f.out.b"] - yt) ** 2).mean()
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        last = step()
    return time.perf_counter() - start, last


def run(quick: bool, threads: int, log: Callable[[str], None]) -> list[Row]:
    import ritz

    n, steps = (1024, 50) if quick else (4096, 200)
    x, y = _data(n)
    rows: list[Row] = []
    for dtype in ("float32", "float64"):
        log(f"  mlp training ({dtype}) ...")
        fit = ritz.compile(SOURCE.replace("DTYPE", dtype)).mlp_fit
        init = fit.init(seed=0, x=x, y=y)
        fit.train(x=x, y=y, steps=3, params=init)  # compiles
        # start the timed runs from the same weights, 3 steps in (as the peers are warmed up)
        start = time.perf_counter()
        res = fit.train(x=x, y=y, steps=steps + 3, params=init)
        seconds = (time.perf_counter() - start) * steps / (steps + 3)
        work = f"mlp 2-64-64-64-1 tanh, adam, batch {n}, {dtype}"
        ours = Row(
            work,
            "ritz train",
            seconds,
            float(steps),
            note=f"{steps / seconds:.0f} steps/s",
            extra={"steps_per_s": steps / seconds},
        )
        rows.append(ours)
        try:
            import torch  # noqa: F401
        except ImportError:
            log("    (PyTorch not installed: no peer row)")
            continue
        t_s, t_loss = _torch(init, x, y, steps, threads, dtype)
        rows.append(
            Row(
                work,
                "pytorch eager",
                t_s,
                float(steps),
                ratio=t_s / seconds,
                rel_diff=abs(t_loss - float(res.loss_history[-1])) / abs(t_loss),
                note=f"{steps / t_s:.0f} steps/s; ritz / pytorch = {t_s / seconds:.2f}",
                extra={"steps_per_s": steps / t_s},
            )
        )
    return rows
