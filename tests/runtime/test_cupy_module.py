"""The generated CuPy module's host side, without a GPU: a stand-in ``cupy`` runs each CUDA kernel
as the Numba kernel of the same name, after checking every argument against the kernel's CUDA
signature. What this checks: argument order and types, launch shapes, the device clock (stage
times), graph capture and replay of step pairs, odd steps, buffer roles and the fallback when
capture fails. The CUDA bodies themselves are checked by nvcc (tests/gpu/test_nvcc.py) and, on a
GPU, by tests/gpu/test_parity.py."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from ritz.compiler.driver import FdOptions, compile_pde
from ritz.dsl import load_file
from ritz.runtime.loader import import_path

ROOT = Path(__file__).resolve().parents[2]
C_TYPES = {"double": np.float64, "float": np.float32, "int": np.int32}
SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')


class ndarray(np.ndarray):  # the name of CuPy's array class
    """A host array that passes for a device array: ``.data.ptr`` is its address."""

    @property
    def data(self):  # type: ignore[override]
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])


class FakeCupy(types.ModuleType):
    """Just enough of CuPy for a generated module: kernels run through ``run`` at once, or are
    recorded while a stream captures."""

    def __init__(self, source: str, run) -> None:
        super().__init__("cupy")
        self.ndarray = ndarray
        self.signatures = {
            name: [p.rsplit(" ", 1) for p in params.split(", ")]
            for name, params in SIGNATURE.findall(source)
        }
        self.run = run
        self.recording: list | None = None
        self.captures = self.graph_launches = self.direct_launches = 0
        self.capture_fails = False
        fake = self

        class Graph:
            def __init__(self, launches: list) -> None:
                self.launches = launches

            def launch(self, stream=None) -> None:
                fake.graph_launches += 1
                for name, args in self.launches:
                    fake.run(name, args)

        class Stream:
            def __init__(self, non_blocking: bool = False) -> None:
                self.ptr = 7

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                return None

            def begin_capture(self) -> None:
                if fake.capture_fails:
                    raise RuntimeError("stream capture is not supported here")
                fake.recording = []

            def end_capture(self) -> Graph:
                launches, fake.recording = fake.recording, None
                fake.captures += 1
                return Graph(launches)

        runtime = types.SimpleNamespace(getDevice=lambda: 0)
        self.cuda = types.SimpleNamespace(
            runtime=runtime, Stream=Stream, get_current_stream=lambda: types.SimpleNamespace(ptr=0)
        )

    def zeros(self, shape, dtype) -> ndarray:
        return np.zeros(shape, dtype=dtype).view(ndarray)

    def asnumpy(self, a) -> np.ndarray:
        return np.array(a)

    def RawModule(self, code: str, options: tuple) -> types.SimpleNamespace:
        assert "-std=c++17" in options
        return types.SimpleNamespace(get_function=self._function)

    def _function(self, name: str):
        params = self.signatures[name]

        def launch(grid, block, args) -> None:
            assert len(grid) == 3 and len(block) == 3 and all(g >= 1 for g in grid)
            assert block[0] * block[1] * block[2] <= 1024
            assert len(args) == len(params), (name, len(args), params)
            for (ctype, pname), arg in zip(params, args, strict=True):
                base = ctype.replace("const ", "").replace("__restrict__", "").strip()
                if base.endswith("*"):
                    assert isinstance(arg, ndarray), (name, pname)
                    assert arg.dtype == C_TYPES[base[:-1]], (name, pname, arg.dtype)
                else:
                    assert type(arg) is C_TYPES[base], (name, pname, type(arg))
            named = {pname: arg for (_, pname), arg in zip(params, args, strict=True)}
            if self.recording is not None:
                self.recording.append((name, named))
            else:
                self.direct_launches += 1
                self.run(name, named)

        return launch


def _write(path: Path, text: str) -> Path:
    """Write only on change, so Numba's on-disk cache (keyed by path and mtime) stays warm."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def _modules(example: str, dtype: str, tmp_path: Path, cache_dir: Path):
    problem = next(iter(load_file(ROOT / "examples" / example).problems.values()))
    opts = FdOptions(dtype=dtype)
    cupy_art = compile_pde(problem, opts, "cupy")
    numba_art = compile_pde(problem, opts, "numba")
    numba_path = _write(cache_dir / f"test_cupy_module_{problem.name}_{dtype}.py", numba_art.source)
    ref = import_path(numba_path, f"ritz_test_ref_{problem.name}_{dtype}")
    cuda = re.search(r'CUDA_SOURCE = r"""(.*?)"""', cupy_art.source, re.S).group(1)
    sig = {k.name: k for k in cupy_art.group.kernels}

    def run(name: str, a: dict) -> None:
        """One CUDA kernel, done by the Numba kernel of the same name."""
        if name == "clock_set":
            a["clock"][:] = (a["t0"], 0.0)
        elif name == "clock_tick":
            a["clock"][1] += 1.0
        elif sig[name].kind == "wrap":
            getattr(ref, name)(np.asarray(a["a"]))
        else:
            k = sig[name]
            arrays = [np.asarray(a[p]) for p in a if p.startswith(("f_", "q", "r_", "v_", "jv_"))]
            dt = float(a["dt"])
            t = (a["clock"][0] + a["clock"][1] * dt) + a["tc"] * dt
            values = [t if s == "t" else a[s] for s in k.scalars]
            getattr(ref, name)(*arrays, *values)

    fake = FakeCupy(cuda, run)
    sys.modules["cupy"] = fake
    try:
        path = tmp_path / f"{problem.name}_{dtype}_cupy.py"
        path.write_text(cupy_art.source)
        mod = import_path(path, f"ritz_test_cupy_{problem.name}_{dtype}")
    finally:
        del sys.modules["cupy"]
    return problem, ref, mod, fake


def _drive(module, problem, alloc, dtype: str, counts: tuple[int, ...]) -> list:
    cells = [12] * len(problem.axes)
    bounds = [(a.lo, a.hi) for a in problem.axes]
    params = {p.name: p.default for p in problem.params}
    scalars = list(module.scalars(params, bounds, cells, 0.0, 1e-3))
    cast = np.float32 if dtype == "float32" else np.float64
    scalars = [cast(s) for s in scalars]
    plan = module.PLAN
    bufs = [alloc(tuple(n + 2 * plan["halo"] for n in cells), dtype) for _ in plan["buffers"]]
    module.initial(*[bufs[plan["buffers"].index(f)] for f in plan["fields"]], *scalars)
    t_index = plan["scalars"].index("t")
    t = 0.0
    out = []
    for n in counts:
        scalars[t_index] = cast(t)
        bufs = list(module.advance(*bufs, *scalars, n))
        t += n * 1e-3
        out.append([np.array(bufs[plan["buffers"].index(f)]) for f in plan["fields"]])
    return out


COUNTS = (1, 2, 7, 70, 70)


@pytest.mark.parametrize(
    ("example", "dtype"),
    [
        ("heat1d.dsl", "float64"),
        ("gray_scott.dsl", "float64"),
        ("diffusion3d.dsl", "float32"),
    ],
)
def test_module_steps_like_numba(example: str, dtype: str, tmp_path: Path, cache_dir: Path) -> None:
    problem, ref, mod, fake = _modules(example, dtype, tmp_path, cache_dir)
    sys.modules["cupy"] = fake
    try:
        got = _drive(mod, problem, fake.zeros, dtype, COUNTS)
    finally:
        del sys.modules["cupy"]
    want = _drive(ref, problem, lambda s, d: np.zeros(s, dtype=d), dtype, COUNTS)
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            # the same kernels with the same stage times, in the same order: bit for bit
            np.testing.assert_array_equal(a, b)
    # graphs hold pairs of steps: 2 -> [2]; 7 -> [4, 2] + 1 plain step (buffers in the roles the
    # first odd step left, so the 2-step graph is reused); 70 -> [64, 4, 2] in the other roles;
    # the second 70 replays those three, for t is not baked in
    assert fake.captures == 1 + 1 + 3
    assert fake.graph_launches == 1 + 2 + 3 + 3
    assert mod.graph_status["enabled"]


def test_module_falls_back_to_plain_launches(tmp_path: Path, cache_dir: Path) -> None:
    problem, ref, mod, fake = _modules("heat1d.dsl", "float64", tmp_path, cache_dir)
    fake.capture_fails = True
    sys.modules["cupy"] = fake
    try:
        got = _drive(mod, problem, fake.zeros, "float64", (6, 3))
    finally:
        del sys.modules["cupy"]
    want = _drive(ref, problem, lambda s, d: np.zeros(s, dtype=d), "float64", (6, 3))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g[0], w[0])
    assert fake.graph_launches == 0
    assert not mod.graph_status["enabled"]
    assert "not supported" in mod.graph_status["reason"]


def test_blocks_cover_every_pair(tmp_path: Path, cache_dir: Path) -> None:
    _, _, mod, _ = _modules("heat1d.dsl", "float64", tmp_path, cache_dir)
    for pairs in range(0, 200):
        blocks = mod._blocks(pairs)
        assert sum(blocks) == pairs
        assert all(b in (1, 2, 4, 8, 16, 32) for b in blocks)


def test_steady_entries_match_numba(tmp_path: Path, cache_dir: Path) -> None:
    """residual and jvp of the CuPy module (a steady problem) equal the Numba module's."""
    problem, ref, mod, fake = _modules("poisson.dsl", "float64", tmp_path, cache_dir)
    cells = [10, 12]
    bounds = [(a.lo, a.hi) for a in problem.axes]
    scalars = [np.float64(s) for s in mod.scalars({}, bounds, cells, 0.0, 0.0)]
    plan = mod.PLAN
    shape = tuple(n + 2 * plan["halo"] for n in cells)
    rng = np.random.default_rng(3)
    state = {b: rng.standard_normal(shape) for b in plan["buffers"]}
    sys.modules["cupy"] = fake
    try:
        bufs = [state[b].copy().view(ndarray) for b in plan["buffers"]]
        mod.residual(*bufs, *scalars)
        mod.jvp(*bufs, *scalars)
    finally:
        del sys.modules["cupy"]
    mine = [state[b].copy() for b in plan["buffers"]]
    ref.residual(*mine, *scalars)
    ref.jvp(*mine, *scalars)
    for b, got, want in zip(plan["buffers"], bufs, mine, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=b)
