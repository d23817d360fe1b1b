"""Regressions of networks and train blocks: identical weight-making calls in one statement,
size names in a loss, empty data, optimizer names and options, recursive networks, messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ritz
from ritz.dsl import load_text
from ritz.dsl.diagnostics import RitzError
from ritz.runtime.cli import main

# Each dense() and bias() makes its own weights, numbered in source order: `dense(y, 4)` is
# written first, so it is `h`; the two identical `dense(x, 4)` are two layers; the three
# biases of the return line are three scalars (not 0 and not one shared `out.2.b`).
TWINS = """\
network twins(x: [2], y: [3]) -> [2] {
    h = dense(y, 4) + dense(x, 4)
    g = dense(x, 4) * dense(x, 4)
    return dense(tanh(h) * g, 2) + bias() - bias() + bias()
}
train t {
    net f = twins
    data x: [N, 2], y: [N, 3], z: [N, 2]
    loss mean((f(x, y) - z)^2)
    dtype float64
}
"""

TWIN_SHAPES = {
    "f.h.W": (3, 4),
    "f.h.b": (4,),
    "f.h.2.W": (2, 4),
    "f.h.2.b": (4,),
    "f.g.W": (2, 4),
    "f.g.b": (4,),
    "f.g.2.W": (2, 4),
    "f.g.2.b": (4,),
    "f.out.W": (4, 2),
    "f.out.b": (2,),
    "f.out.2.b": (),
    "f.out.3.b": (),
    "f.out.4.b": (),
}


def _twins_torch(torch, p: dict, x, y):
    def dense(h, stem: str):
        return h @ p[f"f.{stem}.W"] + p[f"f.{stem}.b"]

    h = dense(y, "h") + dense(x, "h.2")
    g = dense(x, "g") * dense(x, "g.2")
    return dense(torch.tanh(h) * g, "out") + p["f.out.2.b"] - p["f.out.3.b"] + p["f.out.4.b"]


def test_identical_layers_in_one_statement_are_separate_and_in_source_order() -> None:
    torch = pytest.importorskip("torch")
    fit = ritz.compile(TWINS).t
    params = fit.init(seed=0)
    assert {k: np.shape(v) for k, v in params.items()} == TWIN_SHAPES
    assert list(params) == list(TWIN_SHAPES)  # the layers are made in source order
    assert not np.allclose(params["f.g.W"], params["f.g.2.W"])
    rng = np.random.default_rng(3)
    params = {k: np.asarray(v + 0.3 * rng.normal(size=np.shape(v))) for k, v in params.items()}
    data = {
        "x": rng.normal(size=(9, 2)),
        "y": rng.normal(size=(9, 3)),
        "z": rng.normal(size=(9, 2)),
    }
    loss, grads = fit.loss_and_grad(params, **data)

    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    x, y, z = (torch.tensor(data[k]) for k in "xyz")
    out = _twins_torch(torch, tp, x, y)
    ref = ((out - z) ** 2).mean()
    ref.backward()
    assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
    for k, t in tp.items():
        assert t.grad is not None
        np.testing.assert_allclose(grads[k], t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    # the forward pass of the trained net is the same function
    res = fit.train(params=params, steps=1, optimizer="sgd", lr=0.0, **data)
    with torch.no_grad():
        np.testing.assert_allclose(res.nets["f"](data["x"], data["y"]), out.numpy(), rtol=1e-12)


def test_a_difference_of_identical_layers_is_not_zero() -> None:
    program = """\
network diff2(x: [2]) -> [2] {
    return dense(x, 2) - dense(x, 2)
}
network b0(x: [2]) -> [1] {
    return bias() - bias()
}
"""
    m = ritz.compile(program)
    p = m.diff2.init(seed=0)
    assert sorted(p) == ["out.2.W", "out.2.b", "out.W", "out.b"]
    x = np.random.default_rng(0).normal(size=(5, 2))
    want = x @ (p["out.W"] - p["out.2.W"]) + p["out.b"] - p["out.2.b"]
    np.testing.assert_allclose(m.diff2(p, x), want, rtol=1e-5, atol=1e-6)
    q = m.b0.init(seed=0)
    assert sorted(q) == ["out.2.b", "out.b"]
    q = {"out.b": np.float32(0.75), "out.2.b": np.float32(0.25)}
    np.testing.assert_allclose(m.b0(q, x), np.full((5, 1), 0.5), rtol=1e-6)


def test_repeat_and_identical_sub_networks_make_new_layers() -> None:
    program = """\
import std.nn as nn
network r(x: [2]) -> [1] {
    h = x
    repeat 2 { h = tanh(dense(h, 3)) * dense(h, 3) }
    return dense(h, 1)
}
network s(x: [2]) -> [1] {
    h = nn.mlp(x, width = 3, depth = 1) - nn.mlp(x, width = 3, depth = 1)
    return h
}
"""
    m = ritz.compile(program)
    r = m.r.init(seed=0)
    assert [k for k in r if k.endswith(".W")] == ["h.W", "h.2.W", "h.3.W", "h.4.W", "out.W"]
    s = m.s.init(seed=0)
    assert sorted(s) == sorted(
        [f"h.{n}" for n in ("h.W", "h.b", "out.W", "out.b")]
        + [f"h.2.{n}" for n in ("h.W", "h.b", "out.W", "out.b")]
    )
    x = np.random.default_rng(1).normal(size=(4, 2))

    def mlp(prefix: str) -> np.ndarray:
        hidden = np.tanh(x @ s[f"{prefix}h.W"] + s[f"{prefix}h.b"])
        return hidden @ s[f"{prefix}out.W"] + s[f"{prefix}out.b"]

    np.testing.assert_allclose(m.s(s, x), mlp("h.") - mlp("h.2."), rtol=1e-5, atol=1e-6)


SIZES = """\
import std.nn as nn
train t {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 1], y: [N, 1], c: [M]
    loss mean((f(x) - y)^2) * M
    dtype float64
}
train plain {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    dtype float64
}
train rows {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 1]
    loss N + 1e-300 * mean(f(x))^2
}
"""


def test_a_size_name_used_only_in_the_loss_is_bound_from_its_data() -> None:
    m = ritz.compile(SIZES)
    rng = np.random.default_rng(2)
    x, y, c = rng.normal(size=(10, 1)), rng.normal(size=(10, 1)), np.zeros(3)
    p = m.t.init(seed=0)
    loss, grads = m.t.loss_and_grad(p, x=x, y=y, c=c)
    ref, ref_grads = m.plain.loss_and_grad(p, x=x, y=y)
    assert loss == pytest.approx(3 * ref, rel=1e-12)
    for k, g in ref_grads.items():
        np.testing.assert_allclose(grads[k], 3 * g, rtol=1e-12, atol=1e-14)
    assert m.t.loss(p, x=x, y=y, c=np.zeros(5)) == pytest.approx(5 * ref, rel=1e-12)
    res = m.t.train(x=x, y=y, c=c, steps=3, batch=4, optimizer="sgd", lr=1e-3)
    assert len(res.loss_history) == 3 and np.isfinite(res.loss_history).all()
    assert m.rows.loss(m.rows.init(seed=0), x=x) == 10.0


EMPTY = """\
import std.nn as nn
train fit {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    steps 2
}
"""


def test_empty_data_is_an_input_error(tmp_path: Path) -> None:
    fit = ritz.compile(EMPTY, name="empty.dsl").fit
    x, y = np.zeros((0, 1)), np.zeros((0, 1))
    p = fit.init(seed=0)
    for call in (
        lambda: fit.loss_and_grad(p, x=x, y=y),
        lambda: fit.loss(p, x=x, y=y),
        lambda: fit.train(x=x, y=y),
    ):
        with pytest.raises(RitzError) as err:
            call()
        assert err.value.code == "R536", err.value.render()
        assert "'x' has no rows" in err.value.message
        assert err.value.line == 4
    program = tmp_path / "empty.dsl"
    program.write_text(EMPTY)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(program),
            "--data",
            f"x={tmp_path / 'x.npy'}",
            "--data",
            f"y={tmp_path / 'y.npy'}",
        ],
    )
    assert result.exit_code != 0
    assert "R536" in result.output and "no rows" in result.output
    assert "Traceback" not in result.output


PINN = """\
import std.nn as nn
pde p {
    space x in [0, 1]
    time t in [0, 1]
    field u
    dt(u) = diff(u, x, 2)
    boundary u = 0 at all
    initial u = sin(pi * x)
    solve pinn(net = nn.mlp(width = 4, depth = 1), points = 20, boundary_points = 2,
               initial_points = 4, optimizer = OPT, steps = 2)
}
"""


@pytest.mark.parametrize(
    ("opt", "code", "col", "text"),
    [
        ("rmsprop(lr = 1)", "R206", 48, "unknown optimizer 'rmsprop'"),
        ("adam(lr = 1, momentum = 0.9)", "R537", 61, "'momentum' is not an option of adam"),
    ],
)
def test_pinn_line_optimizer_is_checked(
    tmp_path: Path, opt: str, code: str, col: int, text: str
) -> None:
    """Checked with the program, as a train block's optimizer is; the run-time check of an
    optimizer given from Python gives R537 for both."""
    source = PINN.replace("OPT", opt)
    with pytest.raises(RitzError) as err:
        ritz.compile(source, name="pinn.dsl")
    e = err.value
    assert (e.code, e.line, e.column) == (code, 10, col), e.render()
    assert text in e.message and "^" in e.render()
    program = tmp_path / "pinn.dsl"
    program.write_text(source)
    result = CliRunner().invoke(main, ["check", str(program)])
    assert result.exit_code != 0
    assert f"pinn.dsl:10:{col}: error[{code}]" in result.output
    assert "Traceback" not in result.output
    handle = ritz.compile(PINN.replace("OPT", "adam(lr = 1e-3)"), name="pinn.dsl").p
    with pytest.raises(RitzError) as err:
        handle.solve(optimizer="rmsprop")
    assert err.value.code == "R537" and "unknown optimizer 'rmsprop'" in err.value.message


def test_train_block_optimizer_options_are_checked() -> None:
    program = EMPTY.replace("    steps 2\n", "    optimizer adam(lr = 1e-3, momentum = 0.9)\n")
    with pytest.raises(RitzError) as err:
        load_text(program, "t.dsl")
    e = err.value
    assert (e.code, e.line, e.column) == ("R537", 6, 31), e.render()
    assert "'momentum' is not an option of adam" in e.message
    bad = EMPTY.replace("    steps 2\n", "    optimizer sgd(lr = -1)\n")
    with pytest.raises(RitzError) as err:
        load_text(bad, "t.dsl")
    assert err.value.code == "R537" and "non-negative" in err.value.message
    good = EMPTY.replace("    steps 2\n", "    optimizer sgd(lr = 1e-3, momentum = 0.9)\n")
    load_text(good, "t.dsl")


def test_recursive_networks_are_located_errors() -> None:
    with pytest.raises(RitzError) as err:
        load_text("network a(x: [2]) -> [2] {\n    return a(x)\n}\n", "r.dsl")
    e = err.value
    assert (e.code, e.line, e.column) == ("R205", 1, 1), e.render()
    assert "recursive network: a -> a" in e.message
    mutual = (
        "network a(x: [2]) -> [2] {\n    h = b(x)\n    return h\n}\n"
        "network b(x: [2]) -> [2] {\n    repeat 1 { h = a(x) }\n    return h\n}\n"
    )
    with pytest.raises(RitzError) as err:
        load_text(mutual, "r.dsl")
    assert err.value.code == "R205" and "a -> b -> a" in err.value.message
    # through an option (act = b) it can only be seen when the network is applied
    via_option = (
        "network a(x: [2], act = tanh) -> [2] {\n    return act(x)\n}\n"
        "network b(x: [2]) -> [2] {\n    return a(x, act = b)\n}\n"
    )
    m = ritz.compile(via_option, name="r.dsl")
    with pytest.raises(RitzError) as err:
        m.b.init(seed=0)
    assert "b -> a -> b" in err.value.message
    assert err.value.code == "R205"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            "repeat -1 { h = dense(x, 2) }\n    return dense(x, 2)",
            "a repeat count must be a non-negative whole number, got -1",
        ),
        (
            "return dense(x, 2.5)",
            "the width of dense() must be a positive whole number, got 2.5",
        ),
    ],
)
def test_whole_number_messages(body: str, text: str) -> None:
    with pytest.raises(RitzError) as err:  # literal ones are found by the check
        m = ritz.compile(f"network n(x: [2]) -> [2] {{\n    {body}\n}}\n", name="n.dsl")
        m.n.init(seed=0)
    assert err.value.code == "R343"
    assert text in err.value.message, err.value.message
    assert "2.50000" not in err.value.message


# A data array used whole (`a`, its own size M) declared between two batched ones: the
# training loops take the batched arrays first, and must still hand them to loss_and_grad
# in declaration order (they were passed as (x, y, a) to a loss taking (x, a, y)).
ANCHORED = """\
import std.nn as nn
train anchored {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 1], a: [M, 1], y: [N, 1]
    loss mean((f(x) - y)^2) + 0.1 * mean(f(a)^2)
    optimizer sgd(lr = 0.1)
    steps 3, batch 4
    dtype float64
}
"""


def test_training_passes_data_in_declaration_order() -> None:
    block = ritz.compile(ANCHORED).anchored
    rng = np.random.default_rng(0)
    x, y, a = rng.normal(size=(8, 1)), rng.normal(size=(8, 1)), rng.normal(size=(4, 1))
    p0 = block.init(x=x, a=a, y=y)
    result = block.train(x=x, a=a, y=y, params=p0)
    # the same three SGD steps by hand, on the rows the trainer draws (permutations, seed + 1)
    w = {k: v.copy() for k, v in p0.items()}
    history = []
    draws = np.random.default_rng(1)
    queue = np.empty(0, dtype=np.int64)
    for _ in range(3):
        while queue.size < 4:
            queue = np.concatenate([queue, draws.permutation(8)])
        rows, queue = queue[:4], queue[4:]
        loss, grad = block.loss_and_grad(w, x=x[rows], a=a, y=y[rows])
        history.append(loss)
        w = {k: w[k] - 0.1 * grad[k] for k in w}
    np.testing.assert_allclose(result.loss_history, history, rtol=1e-12)
    for k in w:
        np.testing.assert_allclose(result.params[k], w[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("adam(beta1 = 1.5)", "'beta1' must be a number in [0, 1)"),
        ("adam(beta2 = 1)", "'beta2' must be a number in [0, 1)"),
        ("lbfgs(history = 0)", "'history' must be a whole number of at least 1"),
        ("lbfgs(history = 2.5)", "'history' must be a whole number"),
    ],
)
def test_optimizer_option_ranges(setting: str, words: str) -> None:
    """Adam with beta1 > 1 ran (its bias correction changes sign) and lbfgs with history 0
    stopped after one evaluation; both are R537 on the line and from Python, as PyTorch
    refuses them."""
    with pytest.raises(RitzError) as err:
        load_text(EMPTY.replace("    steps 2\n", f"    optimizer {setting}\n"), "t.dsl")
    assert err.value.code == "R537" and words in err.value.message, err.value.render()
    from ritz.runtime.optimizers import parse_optimizer

    name, option = setting.split("(")[0], setting.split("(")[1].split(" = ")
    with pytest.raises(RitzError) as err:
        parse_optimizer(None, name, {option[0]: float(option[1].rstrip(")"))})
    assert err.value.code == "R537" and words in err.value.message


# A weight whose gradient is identically zero: a loss term switched off by a zero factor, and
# a layer that reaches the output only through a comparison (whose derivative is 0). The
# generated loss_and_grad wrote the simplified scalar 0 with `.ravel()` (AttributeError).
ZERO_GRADIENTS = """\
import std.nn as nn
const lam = 0
train off {
    net f = nn.mlp(width = 3, depth = 1)
    net g = nn.mlp(width = 3, depth = 1)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2) + lam * mean((g(x) - y)^2)
    dtype float64
}
network gate(x: [1]) -> [1] {
    h = dense(x, 1)
    return x * (h > 0)
}
train gated {
    net f = gate
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - 2 * y)^2)
    dtype float64
}
"""


def test_identically_zero_gradients_are_zeros_of_the_weights_shape() -> None:
    m = ritz.compile(ZERO_GRADIENTS)
    x = np.linspace(-1, 1, 6)[:, None]
    for name, zero in (("off", "g."), ("gated", "f.")):
        block = m[name]
        p = block.init(seed=0)
        loss, grads = block.loss_and_grad(p, x=x, y=x)
        assert np.isfinite(loss) and loss > 0
        for k, v in p.items():
            assert grads[k].shape == v.shape, k
            if k.startswith(zero):
                assert not grads[k].any(), k
        for options in ({"optimizer": "adam", "batch": 4}, {"optimizer": "lbfgs"}):
            res = block.train(x=x, y=x, steps=2, **options)
            assert np.isfinite(res.loss_history).all()
    assert np.abs(grads["f.h.W"]).max() == 0.0  # `gated`: only through the comparison


# A layer whose value nothing uses: its weights are still the net's (init returns them) and
# get gradient zero, as in PyTorch; they were a raw ValueError "no Input or Param named ...".
# Its pinn (an affine net: second derivatives that no longer read the point) raised one too.
UNUSED = """\
network un(x: [n_in]) -> [1] {
    h = tanh(dense(x, 3))
    return dense(x, 1)
}
train t {
    net f = un
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    dtype float64
}
pde p {
    space x in [0, 1]
    field u
    -diff(u, x, 2) = pi^2 * sin(pi * x)
    boundary u = 0 at all
    solve pinn(net = un, points = 16, steps = 2, dtype = float64)
}
"""


def test_an_unused_layer_gets_zero_gradients_and_trains() -> None:
    m = ritz.compile(UNUSED)
    x = np.linspace(-1, 1, 6)[:, None]
    p = m.t.init(seed=0)
    assert {"f.h.W", "f.h.b", "f.out.W", "f.out.b"} <= set(p)
    loss, grads = m.t.loss_and_grad(p, x=x, y=2 * x)
    assert grads["f.h.W"].shape == (1, 3) and not grads["f.h.W"].any()
    assert not grads["f.h.b"].any() and grads["f.out.W"].any()
    res = m.t.train(x=x, y=2 * x, params=p, steps=3, optimizer="sgd", lr=0.1)
    np.testing.assert_array_equal(res.params["f.h.W"], p["f.h.W"])
    assert res.loss_history[-1] < loss
    history = m.p.solve().info["loss_history"]
    assert len(history) == 2 and np.isfinite(history).all()


# A log barrier that L-BFGS's line search steps across: the loss is NaN beyond f(x) = 3.
BARRIER = """\
network lin(x: [1]) -> [1] { return dense(x, 1) }
train barrier {
    net f = lin
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2) - mean(log(3 - f(x)))
    optimizer lbfgs
    steps 30
    dtype float64
}
"""


def test_lbfgs_backs_off_non_finite_losses_and_refuses_a_non_finite_start() -> None:
    """lbfgs took NaN losses for values and returned weights where the loss is NaN; a
    non-finite point is now a bad one its line search backs away from, and a non-finite loss
    at the start (or end) is R540, as for adam and sgd."""
    block = ritz.compile(BARRIER).barrier
    x, y = np.ones((4, 1)), np.full((4, 1), 10.0)
    res = block.train(x=x, y=y)
    assert not np.isfinite(res.loss_history).all()  # the line search did step across
    assert np.isfinite(block.loss(res.params, x=x, y=y))
    assert res.net(x)[0, 0] == pytest.approx(2.929, abs=2e-3)  # 2 (f - 10) = -1 / (3 - f)
    with pytest.raises(RitzError) as err:
        block.train(x=x, y=y, params={"f.out.W": np.full((1, 1), 5.0), "f.out.b": np.zeros(1)})
    assert err.value.code == "R540" and "initial weights" in err.value.message


# Probe rows: y = 4^i, so the loss sum(y) + 1e8 N names the rows of each batch and counts them.
BATCH_PROBE = """\
network cst(x: [1]) -> [1] { return dense(x, 1) }
train probe {
    net f = cst
    data x: [N, 1], y: [N, 1]
    loss sum(y) + 1e-300 * sum(f(x)) + 100000000 * N
    optimizer sgd(lr = 0)
    dtype float64
}
"""


def test_a_batch_never_holds_a_row_twice() -> None:
    """Batches ran across epoch boundaries (a row could be in one batch twice); now each
    epoch is one permutation whose rest forms a smaller last batch (10 rows, batch 4: 4 4 2)."""
    block = ritz.compile(BATCH_PROBE).probe
    n = 10
    x, y = np.zeros((n, 1)), (4.0 ** np.arange(n))[:, None]
    res = block.train(x=x, y=y, steps=9, batch=4)
    batches = []
    for loss in res.loss_history:
        count, code = divmod(round(float(loss)), 100_000_000)
        digits = [(code >> (2 * i)) & 3 for i in range(n)]
        assert max(digits) == 1 and sum(digits) == count, (loss, digits)
        batches.append({i for i in range(n) if digits[i]})
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    for epoch in range(3):
        assert set().union(*batches[3 * epoch : 3 * epoch + 3]) == set(range(n))


DIVIDES_BY_ZERO = """\
network lin(x: [1]) -> [1] {
    return dense(x, 1)
}
train s {
    net f = lin
    data x: [N, 1]
    loss sqrt(mean(f(x)^2))
    optimizer adam(lr = 0.1)
    steps 5
    dtype float64
}
"""


def test_a_division_by_zero_in_the_loss_is_r540_not_a_python_exception() -> None:
    """d sqrt(m)/dm = 1/(2 sqrt(0)) at a zero network: the generated code raised Python's
    ZeroDivisionError; with IEEE division it is inf, which the non-finite check reports."""
    train = ritz.compile(DIVIDES_BY_ZERO).s
    loss, grads = train.loss_and_grad(train.init(seed=0), x=np.zeros((4, 1)))
    assert loss == 0.0 and not all(np.all(np.isfinite(g)) for g in grads.values())
    with pytest.raises(RitzError) as err:
        train.train(x=np.zeros((4, 1)))
    assert err.value.code == "R540"


BIAS_ONLY = """\
network bn(x: [1]) -> [1] {
    return bias()
}
train c {
    net g = bn
    data x: [N, 1]
    loss sum(g(x)) + mean((g(x) - 1)^2)
    dtype float64
}
"""


def test_a_network_of_no_input_gives_one_row_per_sample() -> None:
    """return bias() is one value per row: sum(g(x)) over 10 rows is 10 b (it was b)."""
    train = ritz.compile(BIAS_ONLY).c
    loss, grads = train.loss_and_grad({"g.out.b": np.array(2.0)}, x=np.ones((10, 1)))
    assert loss == pytest.approx(10 * 2 + 1) and float(grads["g.out.b"]) == pytest.approx(12)
    assert train.init(seed=0)["g.out.b"].shape == ()


def test_lbfgs_with_a_batch_given_at_run_time_is_refused() -> None:
    """The block's own batch with lbfgs is R537 at check; given from Python it was ignored."""
    train = ritz.compile(ANCHORED).anchored
    data = {"x": np.ones((6, 1)), "a": np.ones((2, 1)), "y": np.ones((6, 1))}
    with pytest.raises(RitzError) as err:
        train.train(optimizer="lbfgs", batch=3, steps=2, **data)
    assert err.value.code == "R537" and "batch" in err.value.message


def test_weights_of_another_dtype_than_the_blocks_are_refused() -> None:
    """A float32 block given float64 weights used to cast them silently (float32 numbers came
    back for float64 inputs); integer arrays, and a mix, likewise."""
    block = ritz.compile(SIZES).plain  # dtype float64
    x, y = np.zeros((4, 1)), np.zeros((4, 1))
    params = block.init(seed=0)
    assert block.loss(params, x=x, y=y) >= 0
    for bad in (np.float32, np.int64):
        mixed = dict(params)
        mixed["f.h.W"] = params["f.h.W"].astype(bad)
        with pytest.raises(RitzError) as err:
            block.loss_and_grad(mixed, x=x, y=y)
        assert err.value.code == "R532" and "computes in float64" in err.value.message


def test_lbfgs_given_at_run_time_trains_on_the_whole_data() -> None:
    """Naming lbfgs from Python (or --set) for a block with a batch trains on every row, as
    documented, and res.info says so (batch None)."""
    program = """
import std.nn as nn
train t {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    steps 5, batch 4
}
"""
    block = ritz.compile(program).t
    x = np.linspace(0, 1, 16)[:, None]
    res = block.train(x=x, y=x**2, optimizer="lbfgs")
    assert res.info["optimizer"] == "lbfgs" and res.info["batch"] is None
    with pytest.raises(RitzError) as err:  # a batch given with it at run time is refused
        block.train(x=x, y=x**2, optimizer="lbfgs", batch=4)
    assert err.value.code == "R537"


def test_a_network_called_with_its_input_as_a_keyword_says_inputs_go_by_position() -> None:
    """mod.mlp(p, x=X) said "takes 1 input array(s), got 0"; it now says what a trained net's
    call says (one check serves both): inputs go by position. Options stay keywords."""
    mod = ritz.compile("import std.nn as nn\n" + TWINS)
    net = mod["twins"]
    p = net.init(seed=0, dtype="float64")
    x, y = np.ones((3, 2)), np.ones((3, 3))
    with pytest.raises(RitzError) as err:
        net(p, x, y=y)
    assert err.value.code == "R503"
    assert (
        err.value.message
        == "network 'twins' takes its input arrays by position; got the keyword 'y'"
    )
    assert err.value.hint == "call it as twins(params, x, y)"
    with pytest.raises(RitzError) as err:
        net(p, x)
    assert err.value.code == "R533" and "takes 2 input array(s), got 1" in err.value.message
    assert net(p, x, y).shape == (3, 2)
    m = ritz.compile("network m(x: [2], k = 3) -> [1] { return dense(tanh(dense(x, k)), 1) }").m
    assert m(m.init(seed=0, dtype="float64", k=4), x, k=4).shape == (3, 1)  # an option
    res = mod.t.train(x=x, y=y, z=np.zeros((3, 2)), steps=1)
    with pytest.raises(RitzError) as err:
        res.net(x=x, y=y)
    assert err.value.code == "R503" and "by position; got the keyword 'x'" in err.value.message


ROWS_TWICE = """\
import std.nn as nn
train bc {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 2], y: [N]
    loss mean((f(x) - y)^2)
    dtype float64
}
"""


@pytest.mark.parametrize(
    ("old", "new", "col", "words", "fix"),
    [
        (
            "",
            "",
            23,
            "the rows of 'y' (shape [N]) line up with a size-1 axis of 'f(x)' (shape "
            "[N, 1]): broadcasting makes [N, N]",
            "declare y: [N, 1] (a net's output",
        ),
        # the other way round, with a size name that is not N and data that is not y
        (
            "N",
            "rows",
            20,
            "the rows of 'f(x)' (shape [rows]) line up with a size-1 axis of 'y' (shape [rows, 1])",
            "declare y: [rows]",
        ),
        # two data arrays, the rows of one against a middle axis of the other: [N, N, 1]
        (
            "loss mean((f(x) - y)^2)",
            "loss mean(f(x)) + mean(w * y)",
            32,
            "the rows of 'y' (shape [N, 1]) line up with a size-1 axis of 'w' (shape [N, 1, 1]): "
            "broadcasting makes [N, N, 1]",
            "declare y: [N, 1, 1];",
        ),
    ],
)
def test_rows_broadcast_against_a_size_1_axis_are_refused_at_check_time(
    tmp_path: Path, old: str, new: str, col: int, words: str, fix: str
) -> None:
    """f(x): [N, 1] minus y: [N] broadcast to [N, N] (every row against every row; the mean of
    the outer difference was the loss, PyTorch's MSELoss warns): R344 at ritz check, at the
    operand whose rows moved to a later axis, and from Python as at run time."""
    text = ROWS_TWICE
    if old == "N":
        text = text.replace("data x: [N, 2], y: [N]", "data x: [rows, 2], y: [rows, 1]")
        text = text.replace("(f(x) - y)", "(y - f(x))")
        text = text.replace("nn.mlp(width = 4, depth = 1)", "g").replace(
            "train bc", "network g(x: [2]) -> [] { return sum(tanh(dense(x, 3))) }\ntrain bc"
        )
    elif old:
        text = text.replace(old, new).replace("y: [N]", "y: [N, 1], w: [N, 1, 1]")
    line = 6 if old == "N" else 5
    program = tmp_path / "bc.dsl"
    program.write_text(text)
    result = CliRunner().invoke(main, ["check", str(program)])
    assert result.exit_code == 1
    assert f"bc.dsl:{line}:{col}: error[R344]: {words}" in result.output, result.output
    assert f"  hint: {fix}" in result.output
    assert "to pair every row with every row on purpose" in result.output
    block = ritz.compile(text).bc
    with pytest.raises(RitzError) as err:
        block.init(seed=0)
    assert err.value.code == "R344" and (err.value.span.line, err.value.span.col) == (line, col)


def test_rows_paired_on_purpose_and_row_by_row_still_work() -> None:
    """The refusal is of rows against a size-1 axis only: y: [N, 1] is row by row, and data
    declared [1, N] (the rows on a later axis) pair every row with every row, as written."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 1))
    for decl, yy, want in (("y: [N, 1]", y, lambda f: (f - y) ** 2), ("y: [1, N]", y.T, None)):
        block = ritz.compile(ROWS_TWICE.replace("y: [N]", decl)).bc
        p = {k: v + 0.1 for k, v in block.init(seed=0, x=x, y=yy).items()}
        f = np.tanh(x @ p["f.h.W"] + p["f.h.b"]) @ p["f.out.W"] + p["f.out.b"]
        expect = ((f - y) ** 2).mean() if want else ((f - y.T) ** 2).mean()
        assert f.shape == (7, 1) and block.loss(p, x=x, y=yy) == pytest.approx(expect, rel=1e-14)
    assert ((f - y.T) ** 2).mean() != pytest.approx(((f - y) ** 2).mean(), rel=1e-3)


def test_float32_sums_over_many_rows_of_an_unsplit_loss() -> None:
    """(mean(f(x) - y))^2 is not a sum of per-sample parts, so its rows are not chunked: its
    sums ran over 2^21 rows in float32, one row at a time (loss off by 3e-5, a bias gradient
    by 1e-3). They accumulate in float64 now: float32 rounding of the answer, as the float64
    block computes it from the same float32 weights and data (the weights' gradients are
    matrix products, whose float32 rounding is BLAS's, as in PyTorch)."""
    text = """
import std.nn as nn
train unsplit {
    net f = nn.mlp(width = 2, depth = 1)
    data x: [N, 1], y: [N, 1]
    loss (mean(f(x) - y))^2 + mean((f(x) - y)^2)
    dtype float32
}
"""
    rng = np.random.default_rng(0)
    n = 1 << 21
    x = rng.uniform(size=(n, 1)).astype(np.float32)
    y = (rng.uniform(size=(n, 1)) + 2).astype(np.float32)
    single = ritz.compile(text).unsplit
    double = ritz.compile(text.replace("float32", "float64")).unsplit
    weights = single.init(seed=0)
    loss, grads = single.loss_and_grad(weights, x=x, y=y)
    wide = {k: v.astype(np.float64) for k, v in weights.items()}
    ref_loss, ref_grads = double.loss_and_grad(wide, x=x.astype(np.float64), y=y.astype(np.float64))
    assert loss == pytest.approx(ref_loss, rel=2e-7)
    for name in ("f.h.b", "f.out.b"):  # the weights' gradients are BLAS products (as PyTorch's)
        g = ref_grads[name]
        assert np.max(np.abs(grads[name] - g)) <= 2e-6 * np.max(np.abs(g)), name


LITERAL_ROWS = """\
import std.nn as nn
train lit {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [64, 2], y: [64]
    loss mean((f(x) - y)^2)
    dtype float64
}
"""


def test_rows_against_a_size_1_axis_with_literal_sizes_are_refused_at_check(
    tmp_path: Path,
) -> None:
    """R344 compared size names only: [64, 1] against [64] (every row against every row, the
    mean of a [64, 64] outer difference) passed ritz check. Numbers compare by value."""
    program = tmp_path / "lit.dsl"
    program.write_text(LITERAL_ROWS)
    result = CliRunner().invoke(main, ["check", str(program)])
    assert result.exit_code == 1
    assert (
        "lit.dsl:5:23: error[R344]: the rows of 'y' (shape [64]) line up with a size-1 axis of "
        "'f(x)' (shape [64, 1]): broadcasting makes [64, 64]"
    ) in result.output, result.output
    assert "  hint: declare y: [64, 1] (a net's output" in result.output


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("y: [64]", "y: [64, 1]"),  # row by row
        ("y: [64]", "y: [1, 64]"),  # every pair of rows, on purpose
        ("y: [64]", "y: [64, 1], z: [64, 1]"),  # per-sample weights
        ("mean((f(x) - y)^2)", "mean(f(x)^2) + mean(y^2)"),  # per-sample means, a scalar
        ("x: [64, 2], y: [64]", "x: [1, 2], y: [1]"),  # one sample: [1, 1] - [1] is [1, 1]
        ("x: [64, 2], y: [64]", "x: [2, 2], y: [2, 2]"),  # [N, d] against [N, d], d = N
    ],
)
def test_literal_sizes_that_pair_rows_row_by_row_pass_check(
    tmp_path: Path, old: str, new: str
) -> None:
    text = LITERAL_ROWS.replace(old, new)
    if "z:" in text:
        text = text.replace("mean((f(x) - y)^2)", "mean(z * (f(x) - y)^2)")
    if "y: [2, 2]" in text:
        text = text.replace(
            "nn.mlp(width = 4, depth = 1)", "nn.mlp(width = 4, depth = 1, n_out = 2)"
        )
    program = tmp_path / "ok.dsl"
    program.write_text(text)
    result = CliRunner().invoke(main, ["check", str(program)])
    assert result.exit_code == 0, result.output


def test_rows_of_differently_named_sizes_are_refused_when_the_sizes_are_equal() -> None:
    """x: [N, 1] with y: [M] is [N, M]: a pairing of every row with every row once the data
    make M = N. Lowered with the data's sizes (numbers) it is R344 at the operand, with the
    text of ritz check; with M != N (centres of another count) it is what it says."""
    from ritz.compiler.lower.train import lower_loss

    block = ritz.compile(ROWS_TWICE.replace("data x: [N, 2], y: [N]", "data x: [N, 2], y: [M]")).bc
    lower_loss(block.block, block.env, block.dtype, {})  # undecided by the file
    lower_loss(block.block, block.env, block.dtype, {"N": 64, "M": 50})
    with pytest.raises(RitzError) as err:
        lower_loss(block.block, block.env, block.dtype, {"N": 64, "M": 64})
    assert err.value.code == "R344" and (err.value.span.line, err.value.span.col) == (5, 23)
    assert err.value.first.message.startswith(
        "the rows of 'y' (shape [64]) line up with a size-1 axis of 'f(x)' (shape [64, 1])"
    )


def test_rows_of_differently_named_sizes_are_refused_when_the_data_make_them_equal() -> None:
    """x: [N, 1] and y: [M]: at check time N and M may differ (f(x) - y is then a legitimate
    [N, M] table); data with M = N make it [N, N], every row paired with every row: R344
    from loss_and_grad, while M = 50 runs."""
    text = """
import std.nn as nn
train t {
    net f = nn.mlp(width = 8, depth = 1, n_out = 1)
    data x: [N, 1], y: [M]
    loss mean((f(x) - y)^2)
}
"""
    handle = ritz.compile(text).t
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1))
    weights = handle.init(x=x, y=rng.standard_normal(50))
    assert np.isfinite(handle.loss_and_grad(weights, x=x, y=rng.standard_normal(50))[0])
    with pytest.raises(RitzError) as err:
        handle.loss_and_grad(weights, x=x, y=rng.standard_normal(64))
    assert err.value.code == "R344" and "line up with a size-1 axis" in err.value.message
