"""Bad input to the Python API (LANGUAGE.md section 7) is a RitzError with its R5xx code, never a
NumPy or Python traceback and never a silently wrong number: points and times outside a
solution's domain, arrays that are complex, text or None, arguments of the wrong kind (backend,
program text, dtype, checkpoints, keywords), and data given to a block that takes none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ritz
from ritz.dsl import RitzError, RuntimeInputError
from ritz.runtime.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "examples" / "heat1d.dsl"  # x in [0, 1], t in [0, 0.1]
FIT = ROOT / "examples" / "fit_sine.dsl"

RING = """
pde ring {
    space x in [0, 1] periodic
    time  t in [0, 0.1]
    field u
    param c = 1
    dt(u) = -c * diff(u, x)
    initial u = sin(2 * pi * x)
    solve fd(cells = 16, scheme = rk4, dt = 1e-2)
}
"""

PLATE = """
pde plate {
    space x in [0, 1]
    space y in [0, 2]
    field u
    -lap(u) = 1
    boundary u = 0 at all
    solve fd(cells = [8, 8])
}
"""

SPREAD = """
pde spread {
    space x in [0, 1]
    time  t in [0, 0.5]
    field u
    param k = 0.1
    dt(u) = k * diff(u, x, 2)
    boundary u = 0 at x = 0, x = 1
    initial u = x * (1 - x)
    solve pinn(net = nn.mlp(width = 4, depth = 1, act = tanh), points = 64,
               boundary_points = 8, initial_points = 8, steps = 2, dtype = float64)
}
"""

# a data size (d) that is not a number: the net's weights take their shape from the data
FREE_WIDTH = """
train fitd {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, d], y: [N, 1]
    loss mean((f(x) - y)^2)
    steps 3
}
"""


def code_of(call, *args, **kwargs) -> RitzError:
    with pytest.raises(RitzError) as err:
        call(*args, **kwargs)
    return err.value


@pytest.fixture(scope="module")
def heat():
    return ritz.load(str(HEAT)).heat1d


@pytest.fixture(scope="module")
def sol(heat):
    return heat.solve(cells=20, dt=1e-3)


@pytest.fixture(scope="module")
def fit():
    return ritz.load(str(FIT)).fit_sine


@pytest.fixture(scope="module")
def sine_data():
    x = np.linspace(0, 3, 32)[:, None]
    return x, np.sin(x)


@pytest.fixture(scope="module")
def trained(fit, sine_data):
    x, y = sine_data
    return fit.train(x=x, y=y, steps=3)


# -- W1: at() inside the domain only -----------------------------------------------------------


@pytest.mark.parametrize(
    "point",
    [
        {"x": 2.0, "t": 0.1},
        {"x": -0.01},
        {"x": 0.5, "t": 5.0},
        {"x": 0.5, "t": -1e-3},
        {"x": np.array([0.2, 0.5, 1.5])},
        {"x": np.nan},
        {"x": np.inf},
    ],
)
def test_at_outside_the_domain_is_refused(sol, point) -> None:
    err = code_of(sol.at, **point)
    assert err.code == "R511" and isinstance(err, RuntimeInputError)
    assert err.hint


def test_at_names_the_domain(sol) -> None:
    err = code_of(sol.at, x=2.0, t=0.1)
    assert "x = 2" in err.message and "[0, 1]" in err.message
    err = code_of(sol.at, x=0.5, t=5.0)
    assert "t = 5" in err.message and "[0, 0.1]" in err.message


def test_at_inside_still_interpolates(sol) -> None:
    x, u = sol.coords["x"], sol["u"]
    np.testing.assert_allclose(sol.at(x=x, t=0.1)["u"], u[-1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(sol.at(x=x, t=0.05)["u"], 0.5 * (u[0] + u[1]), atol=1e-14)
    # the faces and a coordinate rounded just past one are inside (extrapolated from the
    # outermost centres), as is the last time rounded just past the end
    faces = sol.at(x=np.array([0.0, 1.0, 1.0 + 1e-13]), t=0.1 + 1e-15)["u"]
    np.testing.assert_allclose(
        faces[:2], [1.5 * u[-1][0] - 0.5 * u[-1][1], 1.5 * u[-1][-1] - 0.5 * u[-1][-2]], atol=1e-12
    )
    assert faces[2] == pytest.approx(faces[1], abs=1e-12)


def test_at_shapes_must_broadcast(sol) -> None:
    err = code_of(sol.at, x=np.array([0.1, 0.2, 0.3]), t=np.array([0.1, 0.05]))
    assert err.code == "R511" and "same shape" in err.message
    assert "x [3]" in err.message and "t [2]" in err.message
    # shapes that broadcast are fine: a grid of points by times
    got = sol.at(x=np.array([[0.1], [0.2], [0.3]]), t=np.array([0.0, 0.1]))["u"]
    assert got.shape == (3, 2)


@pytest.mark.parametrize("value", [np.array([0.5 + 1j]), ["a"], None])
def test_at_coordinates_must_be_real_numbers(sol, value) -> None:
    assert code_of(sol.at, x=value).code == "R511"


def test_at_periodic_axis_wraps() -> None:
    ring = ritz.compile(RING, name="ring.dsl").ring.solve()
    inside = ring.at(x=np.array([0.25, 0.0, 0.5]))["u"]
    for shift in (1.0, -1.0, 3.0):
        wrapped = ring.at(x=np.array([0.25, 0.0, 0.5]) + shift)["u"]
        np.testing.assert_allclose(wrapped, inside, rtol=0, atol=1e-12)
    assert code_of(ring.at, x=0.5, t=0.2).code == "R511"  # time is not periodic


def test_at_steady_takes_no_time() -> None:
    plate = ritz.compile(PLATE, name="plate.dsl").plate.solve()
    assert plate.at(x=0.5, y=1.0)["u"] > 0
    assert code_of(plate.at, x=0.5, y=1.0, t=0.0).code == "R511"
    assert code_of(plate.at, x=0.5, y=2.5).code == "R511"


def test_pinn_at_is_refused_outside_the_domain() -> None:
    sol = ritz.compile("import std.nn as nn\n" + SPREAD, name="spread.dsl").spread.solve()
    inside = sol.at(x=np.array([0.25, 0.75]), t=0.5)["u"]
    assert inside.shape == (2,) and np.all(np.isfinite(inside))
    for point in ({"x": 1.5}, {"x": 0.5, "t": 0.7}, {"x": 0.5, "t": -0.1}):
        assert code_of(sol.at, **point).code == "R511"
    err = code_of(sol.at, x=np.array([0.1, 0.2, 0.3]), t=np.array([0.1, 0.2]))
    assert err.code == "R511" and "same shape" in err.message


# -- C3: a trained net checks its inputs ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "code", "words"),
    [
        ((np.ones((4, 1)), np.ones((4, 1))), {}, "R533", "takes 1 input array(s), got 2"),
        ((), {}, "R533", "takes 1 input array(s), got 0"),
        ((np.ones((4, 3)),), {}, "R533", "per-sample shape [1]"),
        ((np.ones(4),), {}, "R533", "needs 2 axes (batch first)"),
        ((np.ones((4, 2, 1)),), {}, "R533", "needs 2 axes (batch first)"),
        ((np.ones((4, 1)) + 1j,), {}, "R533", "complex"),
        ((), {"x": np.ones((4, 1))}, "R503", "by position"),
    ],
)
def test_trained_net_checks_its_inputs(trained, args, kwargs, code, words) -> None:
    for net in (trained.net, trained.nets["f"]):
        err = code_of(net, *args, **kwargs)
        assert err.code == code and words in err.message, err.message


def test_trained_net_evaluates(trained, sine_data) -> None:
    x, _ = sine_data
    assert trained.net(x).shape == (32, 1)


def test_trained_net_with_a_data_size_that_is_a_name() -> None:
    """The net runs in the module it was trained with, whose input width the data fixed."""
    block = ritz.compile("import std.nn as nn\n" + FREE_WIDTH, name="fitd.dsl").fitd
    x = np.random.default_rng(0).normal(size=(10, 3))
    res = block.train(x=x, y=x[:, :1])
    assert res.net(x).shape == (10, 1)
    assert code_of(res.net, x[:, :2]).code == "R533"


# -- C4: arguments of the wrong kind ----------------------------------------------------------


def test_initial_must_be_a_dict(heat) -> None:
    err = code_of(heat.solve, cells=20, dt=1e-3, initial=np.zeros(20))
    assert err.code == "R514" and "dict" in err.message


def test_vjp_unknown_keyword(sol) -> None:
    err = code_of(sol.vjp, {"u": np.ones(20)}, foo=1)
    assert err.code == "R503" and "'foo'" in err.message
    err = code_of(sol.vjp, {"u": np.ones(20)}, checkpoint=3)
    assert err.code == "R503" and "checkpoints" in (err.hint or "")
    assert code_of(sol.vjp).code == "R513"  # no cotangents at all


def test_data_by_position(fit, sine_data) -> None:
    x, y = sine_data
    params = fit.init(seed=0)
    for entry in (fit.loss_and_grad, fit.loss):
        err = code_of(entry, params, x, y)
        assert err.code == "R535" and "keywords" in err.message and "x=" in (err.hint or "")


# -- C6: backend and program text ---------------------------------------------------------------


@pytest.mark.parametrize("backend", [None, 3, "gpu", "NUMBA"])
def test_backend_is_checked_at_load(backend) -> None:
    assert code_of(ritz.load, str(HEAT), backend=backend).code == "R506"
    assert code_of(ritz.compile, HEAT.read_text(), backend=backend).code == "R506"


@pytest.mark.parametrize("source", [3, None, ["pde"]])
def test_program_text_must_be_text(source) -> None:
    assert code_of(ritz.compile, source).code == "R516"


def test_program_bytes_that_are_not_utf8_are_located() -> None:
    err = code_of(ritz.compile, b"const a = 1\nconst c = \xff\n", name="p.dsl")
    assert (err.code, err.line, err.column) == ("R126", 2, 11)


def test_program_bytes_are_read_as_utf8() -> None:
    text = HEAT.read_text()
    a = ritz.compile(text.encode("utf-8"), name="heat1d.dsl")
    b = ritz.compile(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode(), name="heat1d.dsl")
    assert a.names == b.names == ["heat1d"]


def test_load_path_and_name_kinds() -> None:
    assert code_of(ritz.load, None).code == "R516"
    assert code_of(ritz.load, 3).code == "R516"
    assert code_of(ritz.compile, HEAT.read_text(), name=3).code == "R516"


# -- C7: initial values and cotangents are real, numeric and finite ------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (np.ones(20) + 1j, "complex"),
        (["a"] * 20, "real numbers"),
        (np.full(20, np.nan), "NaN"),
        (None, "None"),
        (np.array([None] * 20), "real numbers"),  # NumPy would read the Nones as NaN
    ],
)
def test_initial_values_are_real(heat, value, words) -> None:
    err = code_of(heat.solve, cells=20, dt=1e-3, initial={"u": value})
    assert err.code == "R514" and words in err.message


def test_initial_value_too_large_for_float32(heat) -> None:
    err = code_of(heat.solve, cells=20, dt=1e-3, dtype="float32", initial={"u": np.full(20, 1e300)})
    assert err.code == "R514" and "too large for float32" in err.message


@pytest.mark.parametrize(
    ("value", "words"),
    [(np.ones(20) + 1j, "complex"), (["a"] * 20, "real numbers"), (np.full(20, np.inf), "NaN")],
)
def test_cotangents_are_real(sol, value, words) -> None:
    err = code_of(sol.vjp, {"u": value})
    assert err.code == "R513" and words in err.message


def test_steady_cotangents_are_real() -> None:
    plate = ritz.compile(PLATE, name="plate.dsl").plate.solve()
    assert code_of(plate.vjp, {"u": np.ones((8, 8)) + 1j}).code == "R513"


# -- D4: params, checkpoints, dtype --------------------------------------------------------------


def test_vjp_params_as_one_name(sol) -> None:
    w = {"u": np.ones(20)}
    assert sol.vjp(w, params="nu").params == sol.vjp(w, params=["nu"]).params
    assert code_of(sol.vjp, w, params=3).code == "R513"
    err = code_of(sol.vjp, w, params=["mu"])
    assert err.code == "R513" and "'mu'" in err.message


@pytest.mark.parametrize("checkpoints", [1.5, 0, -2, True, "4"])
def test_checkpoints_whole_and_positive(sol, checkpoints) -> None:
    err = code_of(sol.vjp, {"u": np.ones(20)}, checkpoints=checkpoints)
    assert err.code == "R513" and "whole number" in err.message


def test_checkpoints_numpy_integer(sol) -> None:
    g = sol.vjp({"u": np.ones(20)}, checkpoints=np.int64(3))
    assert g.info["checkpoints"] >= 1


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float32"), "float32"])
def test_numpy_dtypes(heat, dtype) -> None:
    assert heat.solve(cells=20, dt=1e-3, dtype=dtype)["u"].dtype == np.float32


def test_network_init_dtype() -> None:
    mod = ritz.compile("import std.nn as nn\nnetwork m2(x: [2]) -> [1] { return dense(x, 1) }")
    weights = mod.m2.init(seed=0, dtype=np.float64)
    assert all(w.dtype == np.float64 for w in weights.values())
    for bad in ("int32", "float16", 3, "foo"):
        assert code_of(mod.m2.init, seed=0, dtype=bad).code == "R538"


# -- D3: data that is None or 0-d -----------------------------------------------------------------


def test_data_none_and_zero_dimensional(fit, sine_data) -> None:
    x, _ = sine_data
    params = fit.init(seed=0)
    err = code_of(fit.loss_and_grad, params, x=x, y=None)
    assert err.code == "R533" and "None" in err.message and "NaN" not in err.message
    err = code_of(fit.loss_and_grad, params, x=x, y=np.array(1.0))
    assert err.code == "R536" and "got shape []" in err.message


# -- M3: a pde block takes no --data ------------------------------------------------------------


def test_cli_data_for_a_pde_block(tmp_path) -> None:
    np.save(tmp_path / "X.npy", np.zeros(20))
    result = CliRunner().invoke(
        main, ["run", str(HEAT), "--no-progress", "--data", f"u={tmp_path / 'X.npy'}"]
    )
    assert result.exit_code == 1, result.output
    assert "error[R503]" in result.output and "takes no data" in result.output
    assert "Traceback" not in result.output


STEADY = """
pde lap2 {
    space x in [0, 1]
    field u
    -diff(u, x, 2) = 1
    boundary u = 0 at all
}
"""


@pytest.mark.parametrize("option", [{"scheme": "rk4"}, {"dt": 0.5}, {"every": 0.1}, {"t1": 3.0}])
def test_time_options_of_a_steady_problem_are_refused(option: dict) -> None:
    """On a solve line they are R206; given at run time they were dropped without a word (a
    user passing t1 believes the problem is time dependent)."""
    handle = ritz.compile(STEADY).lap2
    with pytest.raises(ritz.RitzError) as err:
        handle.solve(**option)
    assert err.value.code == "R503" and "steady" in err.value.message
    assert handle.solve(cells=16)["u"].shape == (16,)


# -- values by position, weights that are no dict of one dtype, a network's seed ----------------

BOX = """
bilevel box {
    upper a = 0.5
    lower w = 0.0
    lower minimize (w - a)^2
    upper minimize (w - 0.8)^2
}
"""


def test_values_by_position_are_refused(heat) -> None:
    """solve(0.3) once set `progress`, and hypergrad(0.3) was a raw TypeError."""
    box = ritz.compile(BOX).box
    for call in (box.solve, box.hypergrad, heat.solve):
        err = code_of(call, 0.3)
        assert err.code == "R535" and "keywords" in err.message, err.render()
    assert "a=..." in code_of(box.hypergrad, 0.3).render()


def test_weights_are_a_dict_of_one_dtype() -> None:
    mod = ritz.compile("network m2(x: [2]) -> [1] { return dense(x, 1) }")
    weights = mod.m2.init(seed=0, dtype="float64")
    x = np.ones((3, 2))
    assert code_of(mod.m2, list(weights.values()), x).code == "R532"
    mixed = {**weights, "out.W": weights["out.W"].astype(np.float32)}
    err = code_of(mod.m2, mixed, x)
    assert err.code == "R532" and "mix float32 and float64" in err.message
    bad = {**weights, "out.b": np.array([np.nan])}
    err = code_of(mod.m2, bad, x)
    assert err.code == "R532" and "'out.b'" in err.message and "NaN" in err.message
    for seed in ("a", -1, 1.5):
        assert code_of(mod.m2.init, seed=seed).code == "R538"


def test_loss_with_params_that_are_no_dict(fit, sine_data) -> None:
    x, y = sine_data
    assert code_of(fit.loss, None, x=x, y=y).code == "R532"


MIXED_LEADS = """
import std.nn as nn
train share {
    net f = nn.mlp(width = 3, depth = 1)
    data z: [2], x: [N, 1], y: [N, 1]
    loss mean((f(x) * z[0] - y)^2) + z[1]
    optimizer sgd(lr = 0.1)
    steps 2, batch 4
    dtype float64
}
"""


def test_batches_follow_the_first_size_name_whatever_the_order() -> None:
    """`z: [2]` declared first once made the block train on all rows at every step."""
    block = ritz.compile(MIXED_LEADS).share
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(10, 1)), rng.normal(size=(10, 1)), np.array([0.7, 0.2])
    p0 = block.init(x=x, y=y, z=z)
    result = block.train(x=x, y=y, z=z, params=p0)
    rows = np.random.default_rng(1).permutation(10)[:4]  # the first mini-batch (seed + 1)
    first = block.loss(p0, x=x[rows], y=y[rows], z=z)
    assert result.loss_history[0] == pytest.approx(first, rel=1e-12)
    assert result.info["batch"] == 4


def test_every_that_would_fill_the_memory_is_refused() -> None:
    """1e-12 would keep 1e11 snapshots: R538 before anything runs, not an out-of-memory kill."""
    heat = ritz.load(HEAT).heat1d
    with pytest.raises(RuntimeInputError) as err:
        heat.solve(every=1e-12)
    assert err.value.code == "R538" and "snapshots" in err.value.message
    assert err.value.span is None  # given from Python: no place in the file
    assert len(heat.solve(every=0.01, cells=16).t) == 11
    text = HEAT.read_text().replace("dt = 2e-5)", "dt = 2e-5, every = 1e-12)")
    with pytest.raises(RuntimeInputError) as err:
        ritz.compile(text, name="h.dsl").heat1d.solve()
    assert err.value.code == "R538" and err.value.line == 11


def test_module_names_and_getattr() -> None:
    mod = ritz.load(HEAT)
    assert getattr(mod, "nope", None) is None and not hasattr(mod, "nope")
    assert hasattr(mod, "heat1d")
    with pytest.raises(RuntimeInputError) as err:
        _ = mod.heat1
    assert err.value.code == "R501" and "did you mean 'heat1d'?" in str(err.value)
    for key in (0, None):
        with pytest.raises(RuntimeInputError) as err:
            mod[key]  # type: ignore[index]
        assert err.value.code == "R501" and "named by text" in err.value.message


def test_initial_value_that_is_not_finite_is_reported_at_the_initial_line() -> None:
    text = HEAT.read_text().replace("initial  u = sin(pi * x)", "initial  u = log(x - 0.5)")
    heat = ritz.compile(text, name="h.dsl").heat1d
    with pytest.raises(RuntimeInputError) as err:
        heat.solve(cells=20)
    e = err.value
    assert e.code == "R540" and "initial value of 'u' is not finite at 10 of 20" in e.message
    assert e.span is not None and "initial" in e.span.text()


def test_a_few_steps_far_beyond_the_stable_step_are_refused() -> None:
    """Heat with 50 cells is stable up to dt ~ 4.8e-3 (rk4): a run at 1.25x or 20x that step
    returns garbage (max 17, max 3 against the exact 0.95) that never reaches the blow-up test."""
    heat = ritz.load(HEAT).heat1d
    for dt in (0.1, 0.006):
        with pytest.raises(RuntimeInputError) as err:
            heat.solve(cells=50, dt=dt)
        assert err.value.code == "R540" and "beyond the stable step" in err.value.message
    assert float(heat.solve(cells=50, dt=0.004)["u"][-1].max()) == pytest.approx(0.9514, 1e-3)


def test_a_coefficient_that_removes_the_field_is_named_as_the_cause() -> None:
    """-k u'' = f with Dirichlet faces and k = 0: no equation depends on u. It used to get the
    advice for pure Neumann problems (add a Dirichlet condition), which it has."""
    text = """
pde s {
    space x in [0, 1]
    field u
    param k = 1
    -k * diff(u, x, 2) = pi^2 * sin(pi * x)
    boundary u = 0 at all
    solve fd(cells = 50)
}
"""
    steady = ritz.compile(text).s
    assert float(steady.solve()["u"].max()) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(RuntimeInputError) as err:
        steady.solve(k=0)
    assert err.value.code == "R543" and "no equation depends on 'u'" in err.value.message


def test_set_nan_is_refused_as_not_finite(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(HEAT), "--set", "nu=nan"])
    assert result.exit_code == 1 and "error[R538]" in result.stderr
    assert "finite" in result.stderr, result.stderr


def test_order_is_a_whole_number_as_cells_is() -> None:
    heat = ritz.load(HEAT).heat1d
    for bad in ("2", 2.0, True):
        with pytest.raises(RitzError) as err:
            heat.solve(order=bad, cells=16)
        assert err.value.code == "R405", err.value
    assert heat.solve(order=np.int64(4), cells=16)["u"].shape == (2, 16)


def test_kernels_and_advance_of_steady_and_implicit_problems() -> None:
    text = """
pde s {
    space x in [0, 1]
    field u
    -diff(u, x, 2) = 1
    boundary u = 0 at all
}
"""
    steady = ritz.compile(text).s
    assert isinstance(steady.kernels, dict)
    with pytest.raises(RuntimeInputError) as err:
        steady.prepare().advance(1)
    assert err.value.code == "R503" and "steady" in err.value.message
    cn = ritz.compile(HEAT.read_text().replace("scheme = rk4", "scheme = cn")).heat1d
    assert isinstance(cn.kernels, dict)
