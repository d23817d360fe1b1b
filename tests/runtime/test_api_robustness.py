"""The Python API under conditions a user meets outside a quick script: several threads making
the first solve of a handle at once, a damaged or unusable cache directory, and values of the
wrong kind given where a number, a whole number of steps or an .npz name is expected (each a
RitzError with its R5xx code, never a Python or Numba traceback)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import ritz
from ritz.dsl import RitzError
from ritz.runtime.cache import END_MARK
from ritz.runtime.cli import main

HEAT = """
pde heat {
    space x in [0, 1]
    time  t in [0, 0.01]
    field u
    param nu = 0.5
    dt(u) = nu * diff(u, x, 2)
    boundary u = 0 at x = 0, x = 1
    initial  u = sin(pi * x)
    solve fd(cells = 24, scheme = rk4, dt = 1e-4)
}
"""

BLOCKS = """
import std.nn as nn

network small(x: [2], width = 5) -> [1] {
    h = tanh(dense(x, width))
    return dense(h, 1)
}

train fit {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 2], y: [N, 1]
    loss mean((f(x) - y)^2)
    optimizer adam(lr = 1e-2)
    steps 5, seed 3, dtype float64
}

bilevel rid {
    data X: [n, p], y: [n]
    upper lam = 0.0
    lower w: [p] = 0
    lower minimize 0.5 * sum((X @ w - y)^2) + 0.5 * exp(lam) * sum(w^2)
    upper minimize 0.5 * sum(w^2)
    solve implicit(tol = 1e-12)
}
"""

X = np.random.default_rng(0).standard_normal((12, 2))
Y = np.sin(X[:, :1])


def code_of(call: Any) -> str:
    with pytest.raises(RitzError) as err:
        call()
    return err.value.code


def in_threads(work: Any, count: int = 8) -> list[Any]:
    """``work(i)`` in ``count`` threads started together; their results, or the error raised."""
    out: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # reported below, with what it was
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


# -- 1: the first use of a handle from several threads, with an empty cache --------------------
def test_first_solves_in_threads_equal_serial(tmp_path: Path) -> None:
    heat = ritz.compile(HEAT, name="heat.dsl", cache_dir=tmp_path / "fresh").heat
    got = in_threads(lambda i: heat.solve(cells=20 + i)["u"][-1])
    errors = [g for g in got if isinstance(g, Exception)]
    assert not errors, errors[0]
    serial = ritz.compile(HEAT, name="heat.dsl", cache_dir=tmp_path / "serial").heat
    for i, u in enumerate(got):
        assert np.array_equal(u, serial.solve(cells=20 + i)["u"][-1])


def test_first_train_and_hypergrad_in_threads_equal_serial(tmp_path: Path) -> None:
    mod = ritz.compile(BLOCKS, name="blocks.dsl", cache_dir=tmp_path / "fresh")
    y = X @ np.array([1.0, 2.0])

    def work(i: int) -> float:
        if i % 2:
            w = mod.fit.init(seed=0, x=X, y=Y)
            return mod.fit.loss_and_grad(w, x=X, y=Y)[0]
        return float(mod.rid.hypergrad(lam=0.1, X=X, y=y)["lam"])

    got = in_threads(work)
    errors = [g for g in got if isinstance(g, Exception)]
    assert not errors, errors[0]
    serial = ritz.compile(BLOCKS, name="blocks.dsl", cache_dir=tmp_path / "serial")
    loss = serial.fit.loss_and_grad(serial.fit.init(seed=0, x=X, y=Y), x=X, y=Y)[0]
    grad = float(serial.rid.hypergrad(lam=0.1, X=X, y=y)["lam"])
    assert got == [grad if i % 2 == 0 else loss for i in range(8)]


# -- 4: a damaged cache file is generated again ------------------------------------------------
@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_damaged_cache_file_is_regenerated(tmp_path: Path, damage: str) -> None:
    first = ritz.compile(HEAT, name="heat.dsl", cache_dir=tmp_path).heat.solve()["u"]
    (path,) = (tmp_path / "numba").glob("heat_*.py")
    text = path.read_text()
    assert text.endswith(END_MARK)
    damaged = {
        "truncate": text[:3000],
        "empty": "",
        "garbage": "def broken(:\n" + END_MARK,  # whole-looking, but no Python
    }[damage]
    path.write_text(damaged)
    # a fresh module name: drop the one this process imported from the good file
    import sys

    for name in [n for n in sys.modules if n.startswith("ritz_gen_heat_")]:
        del sys.modules[name]
    again = ritz.compile(HEAT, name="heat.dsl", cache_dir=tmp_path).heat
    assert np.array_equal(again.solve()["u"], first)
    assert path.read_text() == text
    assert again.source() == text.removesuffix(END_MARK)


# -- 5: an unusable cache directory -------------------------------------------------------------
def test_cache_dir_of_wrong_type_is_r516_at_load(tmp_path: Path) -> None:
    program = tmp_path / "heat.dsl"
    program.write_text(HEAT)
    assert code_of(lambda: ritz.load(program, cache_dir=5)) == "R516"
    assert code_of(lambda: ritz.compile(HEAT, cache_dir=5.0)) == "R516"


def test_cache_dir_below_a_file_is_r527_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "heat.dsl"
    program.write_text(HEAT)
    assert code_of(lambda: ritz.load(program, cache_dir=program / "cache")) == "R527"
    monkeypatch.setenv("RITZ_CACHE_DIR", str(program / "cache"))
    with pytest.raises(RitzError) as err:
        ritz.load(program)
    assert err.value.code == "R527"
    assert "RITZ_CACHE_DIR" in err.value.diagnostics[0].hint
    result = CliRunner().invoke(main, ["run", str(program)])
    assert result.exit_code == 1 and "error[R527]" in result.output, result.output


def test_cache_dir_where_nothing_can_be_created_is_r527(monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc passes a permission check (for root too) but refuses every new directory
    monkeypatch.setenv("RITZ_CACHE_DIR", "/proc/ritz-no-cache")
    heat = ritz.compile(HEAT, name="heat.dsl").heat
    assert code_of(heat.solve) == "R527"


# -- 2: Simulation.advance -----------------------------------------------------------------------
@pytest.mark.parametrize("steps", [2.5, "3", None, True, 10**20, np.array(2), -1, np.float64(2.5)])
def test_advance_refuses_what_is_no_whole_number_of_steps(steps: Any) -> None:
    sim = ritz.compile(HEAT, name="heat.dsl").heat.prepare()
    assert code_of(lambda: sim.advance(steps)) == "R538"
    assert sim.t == 0.0 and sim.steps_taken == 0


@pytest.mark.parametrize("dt", ["x", -1e-4, 0.0, float("nan"), True, [1e-4, 2e-4]])
def test_advance_refuses_a_step_that_is_no_positive_number(dt: Any) -> None:
    sim = ritz.compile(HEAT, name="heat.dsl").heat.prepare()
    assert code_of(lambda: sim.advance(1, dt=dt)) == "R538"
    assert sim.t == 0.0


def test_advance_takes_numpy_integers_and_keeps_time_with_state() -> None:
    heat = ritz.compile(HEAT, name="heat.dsl").heat
    a, b = heat.prepare(), heat.prepare()
    a.advance(np.int64(2))
    a.advance(np.float64(1.0), dt=np.float64(1e-4))
    a.advance(0)
    b.advance(3)
    assert a.steps_taken == 3 and isinstance(a.steps_taken, int)
    assert a.t == pytest.approx(3e-4)
    assert np.array_equal(a.interior("u"), b.interior("u"))
    assert code_of(lambda: a.interior("v")) == "R510"


# -- 3: a whole-number parameter beyond 2**64 ----------------------------------------------------
def test_huge_integer_parameter_is_its_float() -> None:
    heat = ritz.compile(HEAT, name="heat.dsl").heat
    assert heat.prepare(nu=2**70).params["nu"] == float(2**70)
    assert code_of(lambda: heat.prepare(nu=10**400)) == "R538"


def test_huge_integer_parameter_from_the_cli(tmp_path: Path) -> None:
    program = tmp_path / "heat.dsl"
    program.write_text(HEAT)
    result = CliRunner().invoke(main, ["run", str(program), "--set", "nu=1180591620717411303424"])
    # a diffusivity of 1e21 is beyond any explicit step: refused as such, not as a bug of ritz
    assert result.exit_code == 1 and "error[R540]" in result.output, result.output
    result = CliRunner().invoke(main, ["run", str(program), "--set", "nu=1" + "0" * 400])
    assert result.exit_code == 1 and "error[R538]" in result.output, result.output


# -- 6 and 8: network options --------------------------------------------------------------------
def test_network_options_take_numpy_integers() -> None:
    small = ritz.compile(BLOCKS, name="blocks.dsl").small
    plain = small.init(seed=0, width=3)
    numpy = small.init(seed=0, width=np.int64(3))
    assert plain.keys() == numpy.keys()
    assert all(np.array_equal(plain[k], numpy[k]) for k in plain)
    assert numpy["h.W"].shape == (2, 3)


@pytest.mark.parametrize("width", ["5", True, None, [3]])
def test_network_option_of_wrong_kind_is_r538_at_run_time(width: Any) -> None:
    small = ritz.compile(BLOCKS, name="blocks.dsl").small
    with pytest.raises(RitzError) as err:
        small.init(seed=0, width=width)
    assert err.value.code == "R538"
    assert err.value.diagnostics[0].span is None  # given from Python: no caret in the file
    assert "given at run time" in err.value.message


# -- 8: values of the wrong kind -----------------------------------------------------------------
@pytest.mark.parametrize("lam", ["0.3", True, np.array(["0.3"]), None])
def test_bilevel_variable_refuses_text_and_booleans(lam: Any) -> None:
    rid = ritz.compile(BLOCKS, name="blocks.dsl").rid
    y = X @ np.array([1.0, 2.0])
    assert code_of(lambda: rid.hypergrad(lam=lam, X=X, y=y)) == "R536"


def test_optimizer_option_refuses_text() -> None:
    fit = ritz.compile(BLOCKS, name="blocks.dsl").fit
    assert code_of(lambda: fit.train(x=X, y=Y, lr="0.1")) == "R537"


@pytest.mark.parametrize("x", [True, [True, False], np.array([False])])
def test_at_refuses_boolean_coordinates(x: Any) -> None:
    sol = ritz.compile(HEAT, name="heat.dsl").heat.solve()
    assert code_of(lambda: sol.at(x=x)) == "R511"
    assert code_of(lambda: sol.at(x=0.5, t=True)) == "R511"


# -- 7: Solution.save ---------------------------------------------------------------------------
def test_save_writes_and_returns_the_name_given(tmp_path: Path) -> None:
    sol = ritz.compile(HEAT, name="heat.dsl").heat.solve()
    target = tmp_path / "out.npz"
    assert sol.save(str(target)) == target
    assert np.array_equal(np.load(target)["field_u"], sol["u"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]  # no temporary left


def test_save_refuses_what_the_cli_refuses(tmp_path: Path) -> None:
    sol = ritz.compile(HEAT, name="heat.dsl").heat.solve()
    assert code_of(lambda: sol.save(tmp_path / "out_sol")) == "R528"  # nothing appended
    (tmp_path / "d.npz").mkdir()
    assert code_of(lambda: sol.save(tmp_path / "d.npz")) == "R527"
    assert code_of(lambda: sol.save(tmp_path / "missing" / "x.npz")) == "R527"
    assert code_of(lambda: sol.save(5)) == "R528"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


# -- 9: --set initial ---------------------------------------------------------------------------
def test_cli_set_initial_says_what_the_cli_can_do(tmp_path: Path) -> None:
    program = tmp_path / "heat.dsl"
    program.write_text(HEAT)
    result = CliRunner().invoke(main, ["run", str(program), "--set", "initial=3"])
    assert result.exit_code == 1 and "error[R503]" in result.output, result.output
    assert "command line" in result.output and "`initial` lines" in result.output
    assert "initial={'u'" not in result.output
