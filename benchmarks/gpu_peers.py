"""GPU peers: CuPy slicing, a naive hand CUDA kernel (cupy.RawKernel), JAX jit, PyTorch eager.

Every factory raises ``Unavailable`` when its library or a GPU is missing. Every ``run``
synchronises the device before it returns, so wall-clock timing is honest.
"""

from __future__ import annotations

import numpy as np

from . import peers_numpy
from .harness import Impl, Unavailable
from .workloads import G0, G1, GrayScott, Heat

# One thread per interior point; the ghosts of u = 0 on the faces (G0 * first + G1 * second
# cell, as in ritz) are folded into the loads, so a step is one launch. Naive on purpose: no
# shared memory, no blocking.
HEAT_CUDA = r"""
extern "C" __global__ void heat_step_{T}(const {T}* __restrict__ u, {T}* __restrict__ w,
                                         const int n, const {T} c)
{{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= n || j >= n) return;
    const long k = (long)i * n + j;
    const {T} uc = u[k];
    const {T} g0 = ({T})({G0!r}), g1 = ({T})1 / ({T})3;
    const {T} up = (i > 0) ? u[k - n] : g0 * uc + g1 * u[k + n];
    const {T} dn = (i < n - 1) ? u[k + n] : g0 * uc + g1 * u[k - n];
    const {T} lf = (j > 0) ? u[k - 1] : g0 * uc + g1 * u[k + 1];
    const {T} rt = (j < n - 1) ? u[k + 1] : g0 * uc + g1 * u[k - 1];
    w[k] = uc + c * (up + dn + lf + rt - ({T})4 * uc);
}}
"""


def cuda_sources() -> dict[str, str]:
    """The hand kernel's CUDA source per dtype (also compiled with nvcc in the README check)."""
    return {t: HEAT_CUDA.format(T=t, G0=G0) for t in ("double", "float")}


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        raise Unavailable(f"cupy is not importable ({exc})") from exc
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise Unavailable("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise Unavailable(f"no usable CUDA device ({exc})") from exc
    return cupy


def cupy_sync() -> None:
    _cupy().cuda.get_current_stream().synchronize()


class CupyArrays(peers_numpy.Arrays):
    name = "cupy slicing"

    def device(self, a):
        return _cupy().asarray(a)

    def host(self, a):
        return _cupy().asnumpy(a)

    def zeros_like(self, a):
        return _cupy().zeros_like(a)


class TorchArrays(peers_numpy.Arrays):
    name = "pytorch eager"

    def __init__(self):
        try:
            import torch
        except ImportError as exc:
            raise Unavailable(f"torch is not importable ({exc})") from exc
        if not torch.cuda.is_available():
            raise Unavailable("torch sees no CUDA device")
        self.torch = torch

    def device(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a)).cuda()

    def host(self, a):
        return a.cpu().numpy()

    def zeros_like(self, a):
        return self.torch.zeros_like(a)


def _synced(impl: Impl, sync) -> Impl:
    run = impl.run

    def run_synced(state, steps):
        state = run(state, steps)
        sync()
        return state

    impl.run = run_synced
    return impl


def slicing(problem: str, case, dtype, lib: str) -> Impl:
    """CuPy slicing or PyTorch eager: the same array code as the NumPy peer."""
    if lib == "cupy":
        _cupy()
        xp, sync = CupyArrays(), cupy_sync
    else:
        xp = TorchArrays()
        sync = xp.torch.cuda.synchronize
    return _synced(getattr(peers_numpy, problem)(case, xp=xp, dtype=dtype), sync)


def heat_cuda(case: Heat, dtype) -> Impl:
    """The naive hand kernel, launched once per step from Python."""
    cp = _cupy()
    t = "double" if np.dtype(dtype) == np.float64 else "float"
    kernel = cp.RawKernel(cuda_sources()[t], f"heat_step_{t}")
    n, block = case.n, (32, 8)
    grid = ((n + block[0] - 1) // block[0], (n + block[1] - 1) // block[1])
    c = np.dtype(dtype).type(case.c)

    def setup():
        u = cp.asarray(case.initial(dtype)["u"])
        return u, cp.empty_like(u)

    def run(state, steps):
        u, w = state
        for _ in range(steps):
            kernel(grid, block, (u, w, np.int32(n), c))
            u, w = w, u
        cupy_sync()
        return u, w

    return Impl("cuda (hand, naive)", setup, run, lambda s: {"u": cp.asnumpy(s[0])})


def _jax(dtype):
    try:
        import jax
    except ImportError as exc:
        raise Unavailable(f"jax is not importable ({exc})") from exc
    if not any(d.platform == "gpu" for d in jax.devices()):
        raise Unavailable("jax sees no GPU")
    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)
    return jax, jax.numpy


def heat_jax(case: Heat, dtype) -> Impl:
    jax, jnp = _jax(dtype)
    c = case.c

    def step(_, u):
        up = jnp.concatenate([G0 * u[:1] + G1 * u[1:2], u[:-1]], axis=0)
        dn = jnp.concatenate([u[1:], G0 * u[-1:] + G1 * u[-2:-1]], axis=0)
        lf = jnp.concatenate([G0 * u[:, :1] + G1 * u[:, 1:2], u[:, :-1]], axis=1)
        rt = jnp.concatenate([u[:, 1:], G0 * u[:, -1:] + G1 * u[:, -2:-1]], axis=1)
        return u + c * (up + dn + lf + rt - 4.0 * u)

    advance = jax.jit(lambda u, steps: jax.lax.fori_loop(0, steps, step, u), static_argnums=1)

    def run(u, steps):
        return advance(u, steps).block_until_ready()

    return Impl(
        "jax jit",
        lambda: jnp.asarray(case.initial(dtype)["u"]),
        run,
        lambda u: {"u": np.asarray(u)},
        note="fori_loop",
    )


def gray_scott_jax(case: GrayScott, dtype) -> Impl:
    jax, jnp = _jax(dtype)
    cu, cv, f, fk, dt = case.du / case.h**2, case.dv / case.h**2, case.f, case.f + case.k, case.dt

    def lap(a):
        return (
            jnp.roll(a, 1, 0)
            + jnp.roll(a, -1, 0)
            + jnp.roll(a, 1, 1)
            + jnp.roll(a, -1, 1)
            - 4.0 * a
        )

    def rhs(u, v):
        uvv = u * v * v
        return cu * lap(u) - uvv + f * (1.0 - u), cv * lap(v) + uvv - fk * v

    def step(_, s):
        u, v = s
        k1 = rhs(u, v)
        k2 = rhs(u + 0.5 * dt * k1[0], v + 0.5 * dt * k1[1])
        k3 = rhs(u + 0.5 * dt * k2[0], v + 0.5 * dt * k2[1])
        k4 = rhs(u + dt * k3[0], v + dt * k3[1])
        return tuple(
            a + dt / 6.0 * (p + 2.0 * (q + r) + w)
            for a, p, q, r, w in zip(s, k1, k2, k3, k4, strict=True)
        )

    advance = jax.jit(lambda s, steps: jax.lax.fori_loop(0, steps, step, s), static_argnums=1)

    def setup():
        init = case.initial(dtype)
        return jnp.asarray(init["u"]), jnp.asarray(init["v"])

    def run(s, steps):
        return jax.block_until_ready(advance(s, steps))

    return Impl(
        "jax jit",
        setup,
        run,
        lambda s: {"u": np.asarray(s[0]), "v": np.asarray(s[1])},
        note="fori_loop",
    )
