"""ritz as a benchmarked implementation, coded against the embedding contract.

``ritz.compile(text, cache_dir=...)`` -> module; ``module.<problem>.prepare(cells=..., dt=...,
scheme=..., dtype=...)`` -> simulation (compiles, allocates, sets the initial state);
``sim.advance(steps)`` runs the time loop in compiled code; ``sim.state[name]`` is the interior.
"""

from __future__ import annotations

import numpy as np

from .harness import Impl, Unavailable
from .workloads import GrayScott, Heat


def _ritz():
    try:
        import ritz
    except Exception as exc:  # not built yet, or broken: the peers still run
        raise Unavailable(f"ritz is not importable ({type(exc).__name__}: {exc})") from exc
    return ritz


def _host(a) -> np.ndarray:
    """A host copy of a NumPy or CuPy array."""
    return np.array(a.get() if hasattr(a, "get") and not isinstance(a, dict) else a)


def _impl(
    case: Heat | GrayScott,
    problem: str,
    scheme: str,
    names: tuple[str, ...],
    backend: str | None = None,
    dtype: str = "float64",
) -> Impl:
    ritz = _ritz()
    kwargs = {"backend": backend} if backend else {}
    try:
        prob = getattr(ritz.compile(case.source(), cache_dir=None, **kwargs), problem)
    except Exception as exc:
        raise Unavailable(f"ritz could not compile {problem}: {type(exc).__name__}: {exc}") from exc

    def setup():
        return prob.prepare(cells=case.n, dt=case.dt, scheme=scheme, dtype=dtype)

    def run(sim, steps):
        sim.advance(steps)
        return sim

    def fields(sim):
        return {nm: _host(sim.state[nm]) for nm in names}

    return Impl("ritz", setup, run, fields, note=f"ritz {getattr(ritz, '__version__', '?')}")


def heat(case: Heat, **kw) -> Impl:
    return _impl(case, "heat2d", "euler", ("u",), **kw)


def gray_scott(case: GrayScott, **kw) -> Impl:
    return _impl(case, "gray_scott", "rk4", ("u", "v"), **kw)
