"""Pictures of solutions: 1-D fields as lines over time, 2-D fields as images, 3-D as slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cache import atomic_target
from .results import Solution


def plot_solution(sol: Solution, path: str | Path) -> Path:
    """Write a PNG with one panel per field; the file appears whole or not at all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    names = list(sol.fields)
    axes_names = list(sol.coords)
    ndim = len(axes_names)
    fig, panels = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.2), squeeze=False)
    times = np.zeros(1) if sol.t is None else sol.t
    for ax, name in zip(panels[0], names, strict=True):
        data = sol[name][None] if sol.t is None else sol[name]
        if ndim == 1:
            x = sol.coords[axes_names[0]]
            cmap = plt.get_cmap("viridis")
            count = len(times)
            for k in range(count):
                ax.plot(
                    x,
                    data[k],
                    color=cmap(k / max(1, count - 1)),
                    lw=1.2,
                    label=f"t = {times[k]:.4g}" if k in (0, count - 1) else None,
                )
            ax.set_xlabel(axes_names[0])
            ax.set_ylabel(name)
            ax.legend(loc="best", fontsize=8)
        else:
            frame = data[-1]
            if ndim == 3:
                frame = frame[:, :, frame.shape[2] // 2]
            x, y = sol.coords[axes_names[0]], sol.coords[axes_names[1]]
            image = ax.imshow(
                frame.T,
                origin="lower",
                extent=(x[0], x[-1], y[0], y[-1]),
                cmap="viridis",
                aspect="auto",
            )
            fig.colorbar(image, ax=ax, shrink=0.85)
            ax.set_xlabel(axes_names[0])
            ax.set_ylabel(axes_names[1])
        title = f"{sol.problem}: {name}"
        if ndim > 1:
            title += "" if sol.t is None else f" at t = {sol.t[-1]:.4g}"
            if ndim == 3:
                title += f" ({axes_names[2]} mid-plane)"
        ax.set_title(title)
        if not np.all(np.isfinite(data)):
            ax.text(0.5, 0.5, "non-finite values", transform=ax.transAxes, ha="center", color="red")
    fig.tight_layout()
    try:
        with atomic_target(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path
