"""The generated CuPy module's host side, on the CPU emulator of the CUDA kernels (see
emulator.py): the same kernels in the same order as the Numba module, so float64 results agree
bit for bit. What this checks beyond test_parity.py: graph capture and replay of step pairs (how
many graphs, how many replays), odd steps, buffer roles, the fallback when capture fails, and
the steady entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ritz.compiler.driver import FdOptions, compile_pde
from ritz.dsl import load_file
from ritz.runtime.loader import import_path

ROOT = Path(__file__).resolve().parents[2]


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
    path = tmp_path / f"{problem.name}_{dtype}_cupy.py"
    path.write_text(cupy_art.source)
    mod = import_path(path, f"ritz_gen_test_{problem.name}_{dtype}")
    return problem, ref, mod


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
def test_module_steps_like_numba(
    example: str, dtype: str, tmp_path: Path, cache_dir: Path, emulated
) -> None:
    problem, ref, mod = _modules(example, dtype, tmp_path, cache_dir)
    got = _drive(mod, problem, emulated.zeros, dtype, COUNTS)
    want = _drive(ref, problem, lambda s, d: np.zeros(s, dtype=d), dtype, COUNTS)
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            if dtype == "float64":
                # the same operations in the same order (no FMA on the emulator): bit for bit
                np.testing.assert_array_equal(a, b)
            else:  # CUDA forms float32 coordinates in float, Numba in double
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())
    # graphs hold pairs of steps: 2 -> [2]; 7 -> [4, 2] + 1 plain step (buffers in the roles the
    # first odd step left, so the 2-step graph is reused); 70 -> [64, 4, 2] in the other roles;
    # the second 70 replays those three, for t is not baked in
    assert emulated.captures == 1 + 1 + 3
    assert emulated.graph_launches == 1 + 2 + 3 + 3
    assert mod.graph_status["enabled"]


def test_module_falls_back_to_plain_launches(tmp_path: Path, cache_dir: Path, emulated) -> None:
    problem, ref, mod = _modules("heat1d.dsl", "float64", tmp_path, cache_dir)
    emulated.capture_fails = True
    got = _drive(mod, problem, emulated.zeros, "float64", (6, 3))
    want = _drive(ref, problem, lambda s, d: np.zeros(s, dtype=d), "float64", (6, 3))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g[0], w[0])
    assert emulated.graph_launches == 0
    assert not mod.graph_status["enabled"]
    assert "not supported" in mod.graph_status["reason"]


def test_blocks_cover_every_pair(tmp_path: Path, cache_dir: Path, emulated) -> None:
    _, _, mod = _modules("heat1d.dsl", "float64", tmp_path, cache_dir)
    for pairs in range(0, 200):
        blocks = mod._blocks(pairs)
        assert sum(blocks) == pairs
        assert all(b in (1, 2, 4, 8, 16, 32) for b in blocks)


def test_steady_entries_match_numba(tmp_path: Path, cache_dir: Path, emulated) -> None:
    """residual and jvp of the CuPy module (a steady problem) equal the Numba module's."""
    problem, ref, mod = _modules("poisson.dsl", "float64", tmp_path, cache_dir)
    cells = [10, 12]
    bounds = [(a.lo, a.hi) for a in problem.axes]
    scalars = [np.float64(s) for s in mod.scalars({}, bounds, cells, 0.0, 0.0)]
    plan = mod.PLAN
    shape = tuple(n + 2 * plan["halo"] for n in cells)
    rng = np.random.default_rng(3)
    state = {b: rng.standard_normal(shape) for b in plan["buffers"]}
    bufs = [emulated.asarray(state[b]) for b in plan["buffers"]]
    mod.residual(*bufs, *scalars)
    mod.jvp(*bufs, *scalars)
    mine = [state[b].copy() for b in plan["buffers"]]
    ref.residual(*mine, *scalars)
    ref.jvp(*mine, *scalars)
    for b, got, want in zip(plan["buffers"], bufs, mine, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=b)


def _fresh(mod):
    """The module as a new process would find it: no kernels loaded yet."""
    mod._kernels.clear()
    mod.load_status.update(how="", reason="")
    return mod


def test_kernels_compile_once_to_a_cubin_beside_the_module(
    tmp_path: Path, cache_dir: Path, emulated
) -> None:
    _, _, mod = _modules("heat1d.dsl", "float64", tmp_path, cache_dir)
    _fresh(mod).kernels()
    cubins = sorted(tmp_path.glob("*.cubin"))
    assert [c.name.rsplit(".", 2)[1:] for c in cubins] == [["sm_90", "cubin"]]
    assert cubins[0].name.startswith(Path(mod.__file__).stem + ".")
    assert mod.load_status["how"] == "compiled to " + cubins[0].name
    assert (emulated.nvrtc_compiles, emulated.cubins_loaded, emulated.sources_loaded) == (1, 1, 0)
    # a warm start: the cubin is loaded, nothing compiles
    _fresh(mod).kernels()
    assert mod.load_status["how"] == "loaded " + cubins[0].name
    assert (emulated.nvrtc_compiles, emulated.cubins_loaded, emulated.sources_loaded) == (1, 2, 0)
    assert not list(tmp_path.glob("*.tmp"))


def test_kernels_fall_back_to_cupy_when_nvrtc_fails(
    tmp_path: Path, cache_dir: Path, emulated
) -> None:
    problem, ref, mod = _modules("heat1d.dsl", "float64", tmp_path, cache_dir)
    emulated.nvrtc_fails = True
    _fresh(mod)
    got = _drive(mod, problem, emulated.zeros, "float64", (3,))
    want = _drive(ref, problem, lambda s, d: np.zeros(s, dtype=d), "float64", (3,))
    np.testing.assert_array_equal(got[0][0], want[0][0])
    assert mod.load_status["how"] == "compiled by CuPy"
    assert "gpu-architecture" in mod.load_status["reason"]
    assert not list(tmp_path.glob("*.cubin"))
    assert emulated.sources_loaded == 1


HEAT = """
pde heat {
    space x in [0, 1]
    time t in [0, 0.01]
    field u
    dt(u) = diff(u, x, 2)
    boundary u = 0 at x = 0, x = 1
    initial u = sin(pi * x)
    solve fd(cells = 32, scheme = rk2, dt = 1e-4)
}
"""


def test_a_warm_start_loads_the_cubin_from_the_ritz_cache(tmp_path: Path, emulated) -> None:
    import ritz

    cold = ritz.compile(HEAT, backend="cupy", cache_dir=tmp_path).heat
    first = cold.solve()
    module = Path(cold.module().__file__)
    cubins = list(module.parent.glob(module.stem + ".*.sm_90.cubin"))
    assert len(cubins) == 1 and emulated.nvrtc_compiles == 1
    # a new process: the generated module is imported again and its kernels() table is empty
    emulated.reset_counters()
    with_drop = ritz.compile(HEAT, backend="cupy", cache_dir=tmp_path).heat
    _fresh(with_drop.module())
    again = with_drop.solve()
    assert emulated.nvrtc_compiles == 0 and emulated.cubins_loaded == 1
    np.testing.assert_array_equal(again["u"], first["u"])


def test_an_unreadable_cubin_is_compiled_again(tmp_path: Path, cache_dir: Path, emulated) -> None:
    _, _, mod = _modules("heat1d.dsl", "float64", tmp_path, cache_dir)
    _fresh(mod).kernels()
    (cubin,) = tmp_path.glob("*.cubin")
    cubin.write_bytes(b"\x7fELF truncated")
    _fresh(mod).kernels()
    assert mod.load_status["how"] == "compiled to " + cubin.name
    assert emulated.nvrtc_compiles == 2
    _fresh(mod).kernels()  # and the rewritten file is good
    assert mod.load_status["how"] == "loaded " + cubin.name
