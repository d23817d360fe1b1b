"""Solutions of PDE solves: output times, grid coordinates, field snapshots, interpolation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from ..dsl.diagnostics import RuntimeInputError, did_you_mean
from .inputs import real_array

# How far outside its domain (relative to the axis's or the time span's size, or to the size of
# its end points where larger) a coordinate given to ``at`` may lie: rounding of a coordinate
# computed to lie on a face, not extrapolation.
AT_TOLERANCE = 1e-9


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
        bounds: dict[str, tuple[float, float]],
        info: dict[str, Any] | None = None,
    ) -> None:
        self.problem = problem
        self.t = t
        self.coords = coords
        self.fields = fields
        self.periodic = periodic
        self.info = info or {}
        self.bounds = bounds  # the domain [a, b] of each axis
        self.adjoint: Any = None  # set by the solve that made this solution
        # "dt(u)" -> snapshots of the velocity of a second-order equation: read by sol["dt(u)"]
        # (the state the reduction to first order adds), not one of the fields
        self.velocities: dict[str, np.ndarray] = {}

    def vjp(
        self,
        cotangents: dict[str, Any] | None = None,
        params: list[str] | str | None = None,
        checkpoints: int | None = None,
        **unknown: Any,
    ) -> Any:
        """The discrete adjoint of the solve: for ``cotangents`` = {field: d loss / d field}
        (at the final time, or one frame per output time), a Gradient with ``params[name]``
        and ``initial[field]`` (d loss / d initial state). ``params`` limits the parameters
        differentiated (default: all); ``checkpoints`` is how many states the forward sweep
        keeps (default ceil(sqrt(steps)); as many as the steps: no recomputation)."""
        if unknown:
            name = next(iter(unknown))
            raise RuntimeInputError(
                f"vjp has no option '{name}'",
                hint=did_you_mean(name, ["params", "checkpoints"])
                or "vjp takes the cotangents, params=[...] and checkpoints=K",
                code="R503",
            )
        if cotangents is None:
            raise RuntimeInputError(
                "vjp needs the cotangents: a dict field -> d loss / d field",
                hint="e.g. sol.vjp({'u': dloss_du}) with dloss_du of the final field's shape",
                code="R513",
            )
        if self.adjoint is None:
            raise RuntimeInputError(
                "this solution was not made by a solve that ritz can differentiate",
                hint="call vjp on the result of problem.solve(...)",
                code="R513",
            )
        from .backends import threads_for

        cells = int(np.prod(self.info.get("cells", (0,))))
        with threads_for(self.info.get("backend", ""), cells):
            return self.adjoint(cotangents, params, checkpoints)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.velocities:
            return self.velocities[name]
        try:
            return self.fields[name]
        except KeyError:
            raise RuntimeInputError(
                f"the solution has no field '{name}'",
                hint=f"fields: {', '.join([*self.fields, *self.velocities])}",
                code="R510",
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.fields or name in self.velocities

    def __iter__(self):
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        shape = next(iter(self.fields.values())).shape if self.fields else ()
        return f"Solution({self.problem}: fields {list(self.fields)}, shape {shape})"

    def at(self, t: Any = None, **points: Any) -> dict[str, np.ndarray]:
        """Field values at arbitrary points of the domain: multilinear in space between cell
        centres (linear extrapolation from the outermost centres up to the faces, wrap-around
        on periodic axes), linear in time between the output times. A point outside the domain
        or a time outside ``[t[0], t[-1]]`` is R511: the solution is not known there."""
        coords, shape = self._query(t, points)
        times = np.zeros(1) if self.t is None else self.t
        ts = coords.pop() if self.t is not None else np.zeros(coords[0].shape)
        out = {}
        for name, data in self.fields.items():
            frames = data[None] if self.t is None else data
            out[name] = self._interp(frames, coords, ts, times).reshape(shape)
        return out

    def _query(self, t: Any, points: dict[str, Any]) -> tuple[list[np.ndarray], tuple[int, ...]]:
        """The points of ``at``, checked (R511): one flat float array per axis in axis order
        (periodic coordinates wrapped into [a, b)), then the times unless the solution is
        steady, all broadcast to one shape, which is returned with them."""
        missing = [a for a in self.coords if a not in points]
        unknown = [a for a in points if a not in self.coords]
        if missing or unknown:
            raise RuntimeInputError(
                f"at() needs one array per axis ({', '.join(self.coords)}) and optionally t",
                hint=f"missing: {missing}, unknown: {unknown}",
                code="R511",
            )
        names = list(self.coords)
        arrays = [self._coordinate(a, points[a]) for a in names]
        if self.t is None:
            if t is not None:
                raise RuntimeInputError(
                    f"at() got a time, but '{self.problem}' is steady: its solution has none",
                    hint=f"give the coordinates only ({', '.join(names)})",
                    code="R511",
                )
        else:
            arrays.append(self._time(self.t[-1] if t is None else t))
            names.append("t")
        try:
            grids = np.broadcast_arrays(*arrays)
        except ValueError:
            shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in zip(names, arrays, strict=True))
            raise RuntimeInputError(
                f"the coordinates given to at() must have the same shape (or shapes that "
                f"broadcast); got {shapes}",
                hint="give arrays of one shape, or a scalar for a coordinate held fixed; "
                "np.meshgrid(..., indexing='ij') makes a grid of points",
                code="R511",
            ) from None
        return [g.ravel() for g in grids], grids[0].shape if grids else ()

    def _coordinate(self, axis: str, value: Any) -> np.ndarray:
        """The ``axis`` coordinates given to ``at``: real and finite, inside [a, b] (up to a
        rounding), or wrapped into [a, b) on a periodic axis (R511)."""
        x = real_array(value, f"coordinate {axis} of at()", "R511", booleans=False)
        lo, hi = (float(b) for b in self.bounds[axis])
        if self.periodic.get(axis):
            return lo + np.mod(x - lo, hi - lo)
        return _inside(x, lo, hi, axis, f"the domain of axis {axis}")

    def _time(self, value: Any) -> np.ndarray:
        assert self.t is not None
        t = real_array(value, "the time t of at()", "R511", booleans=False)
        return _inside(t, float(self.t[0]), float(self.t[-1]), "t", "the solved time span")

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
        """Write ``t``, coordinates and fields (``field_u``; a second-order equation's velocity
        as ``field_dt(u)``) to the ``.npz`` file ``path``, whole or not at all, and return its
        path. As ``ritz run --out``: the name must end in ``.npz`` (R528, nothing is appended)
        and its directory must exist and be writable (R527)."""
        from .cache import atomic_target, output_file

        if not isinstance(path, str | os.PathLike):
            raise RuntimeInputError(
                f"save takes the path of an .npz file, got {path!r}",
                hint="e.g. sol.save('result.npz')",
                code="R528",
            )
        target = output_file(os.fspath(path), "save", ".npz", example="sol.save('result.npz')")
        # Any: as ** keywords the arrays must also fit savez_compressed's allow_pickle flag
        arrays: dict[str, Any] = {"t": np.zeros(0) if self.t is None else self.t}
        arrays.update({f"coord_{a}": c for a, c in self.coords.items()})
        arrays.update({f"field_{f}": v for f, v in self.fields.items()})
        arrays.update({f"field_{f}": v for f, v in self.velocities.items()})  # field_dt(u)
        with atomic_target(target) as tmp:
            np.savez_compressed(tmp, **arrays)
        return target


def _inside(x: np.ndarray, lo: float, hi: float, var: str, where: str) -> np.ndarray:
    """``x`` (the values of ``var``) if it lies in [lo, hi] up to AT_TOLERANCE (values within
    it are moved onto the end points), else R511 naming the first value outside ``where``."""
    tol = AT_TOLERANCE * max(hi - lo, abs(lo), abs(hi))
    outside = (x < lo - tol) | (x > hi + tol)
    if np.any(outside):
        first = float(x[outside].flat[0])
        count = int(np.sum(outside))
        more = f" ({count} of {x.size} values)" if x.size > 1 else ""
        raise RuntimeInputError(
            f"at() got {var} = {first!r}, outside {where} [{lo:g}, {hi:g}]{more}: the solution is "
            "not known there",
            hint=f"give {lo:g} <= {var} <= {hi:g}",
            code="R511",
        )
    return np.clip(x, lo, hi)
