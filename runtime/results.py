"""Solutions of PDE solves: output times, grid coordinates, field snapshots, interpolation."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from ..dsl.diagnostics import RuntimeInputError


class Solution(Mapping):
    """``sol.t``, ``sol.coords[axis]``, ``sol[field]`` (``[k]`` is the field at ``t[k]``).

    A steady solution has ``t = None`` and ``sol[field]`` is the field itself."""

    def __init__(
        self,
        problem: str,
        t: np.ndarray | None,
        coords: dict[str, np.ndarray],
        fields: dict[str, np.ndarray],
        periodic: dict[str, bool],
        info: dict[str, Any] | None = None,
    ) -> None:
        self.problem = problem
        self.t = t
        self.coords = coords
        self.fields = fields
        self.periodic = periodic
        self.info = info or {}
        self.adjoint: Any = None  # set by the solve that made this solution

    def vjp(
        self,
        cotangents: dict[str, Any],
        params: list[str] | None = None,
        checkpoints: int | None = None,
    ) -> Any:
        """The discrete adjoint of the solve: for ``cotangents`` = {field: d loss / d field}
        (at the final time, or one frame per output time), a Gradient with ``params[name]``
        and ``initial[field]`` (d loss / d initial state). ``params`` limits the parameters
        differentiated (default: all); ``checkpoints`` is how many states the forward sweep
        keeps (default ceil(sqrt(steps)); as many as the steps: no recomputation)."""
        if self.adjoint is None:
            raise RuntimeInputError(
                "this solution was not made by a solve that ritz can differentiate",
                hint="call vjp on the result of problem.solve(...)",
                code="R513",
            )
        return self.adjoint(cotangents, params, checkpoints)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.fields[name]
        except KeyError:
            raise RuntimeInputError(
                f"the solution has no field '{name}'",
                hint=f"fields: {', '.join(self.fields)}",
                code="R510",
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __iter__(self):
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        shape = next(iter(self.fields.values())).shape if self.fields else ()
        return f"Solution({self.problem}: fields {list(self.fields)}, shape {shape})"

    def at(self, t: Any = None, **points: Any) -> dict[str, np.ndarray]:
        """Field values at arbitrary points: multilinear in space between cell centres (linear
        extrapolation up to the faces, wrap-around on periodic axes), linear in time."""
        arrays = self._point_arrays(points)
        times = np.zeros(1) if self.t is None else self.t
        tt = np.asarray(times[-1] if t is None else t, dtype=float)
        grids = np.broadcast_arrays(*arrays, tt)
        shape = grids[0].shape
        flat = [a.ravel() for a in grids]
        out = {}
        for name, data in self.fields.items():
            frames = data[None] if self.t is None else data
            out[name] = self._interp(frames, flat[:-1], flat[-1], times).reshape(shape)
        return out

    def _point_arrays(self, points: dict[str, Any]) -> list[np.ndarray]:
        """One float array per axis, in axis order (R511 for a missing or unknown axis)."""
        missing = [a for a in self.coords if a not in points]
        unknown = [a for a in points if a not in self.coords]
        if missing or unknown:
            raise RuntimeInputError(
                f"at() needs one array per axis ({', '.join(self.coords)}) and optionally t",
                hint=f"missing: {missing}, unknown: {unknown}",
                code="R511",
            )
        return [np.asarray(points[a], dtype=float) for a in self.coords]

    def _interp(
        self, data: np.ndarray, xs: list[np.ndarray], ts: np.ndarray, times: np.ndarray
    ) -> np.ndarray:
        if len(times) > 1:
            k = np.clip(np.searchsorted(times, ts, side="right") - 1, 0, len(times) - 2)
            w = (ts - times[k]) / (times[k + 1] - times[k])
            frames = [(k, 1.0 - w), (k + 1, w)]
        else:
            frames = [(np.zeros(ts.shape, dtype=int), np.ones(ts.shape))]
        corners = []
        for axis, x in zip(self.coords, xs, strict=True):
            c = self.coords[axis]
            h = c[1] - c[0] if len(c) > 1 else 1.0
            s = (x - c[0]) / h
            if self.periodic[axis]:
                i0 = np.floor(s).astype(int)
                w1 = s - i0
                corners.append(((i0 % len(c), 1 - w1), ((i0 + 1) % len(c), w1)))
            else:
                i0 = np.clip(np.floor(s).astype(int), 0, max(len(c) - 2, 0))
                w1 = s - i0
                i1 = np.minimum(i0 + 1, len(c) - 1)
                corners.append(((i0, 1 - w1), (i1, w1)))
        result = np.zeros(ts.shape)
        for k, wk in frames:
            for combo in product(*corners):
                idx = (k, *(c[0] for c in combo))
                weight = wk * np.prod([c[1] for c in combo], axis=0)
                result += weight * data[idx]
        return result

    def save(self, path: str | Path) -> Path:
        """Write ``t``, coordinates and fields to an ``.npz`` file."""
        path = Path(path)
        # Any: as ** keywords the arrays must also fit savez_compressed's allow_pickle flag
        arrays: dict[str, Any] = {"t": np.zeros(0) if self.t is None else self.t}
        arrays.update({f"coord_{a}": c for a, c in self.coords.items()})
        arrays.update({f"field_{f}": v for f, v in self.fields.items()})
        np.savez_compressed(path, **arrays)
        return path
