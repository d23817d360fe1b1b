"""Networks (LANGUAGE.md §4) and training (§5): forward passes against NumPy, gradients against
central differences and PyTorch autograd, and training runs that must actually fit."""

from __future__ import annotations

import numpy as np
import pytest

import ritz
from ritz.dsl.diagnostics import RitzError

MLP2 = """\
network mlp2(x: [2]) -> [1] {
    h = tanh(dense(x, 64))
    h = tanh(dense(h, 64))
    return dense(h, 1)
}
"""

FIT_SINE = """\
import std.nn as nn
train fit_sine {
    net f = nn.mlp(width = 32, depth = 2)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    optimizer adam(lr = 1e-3)
    steps 2000, batch 128
}
"""

# smooth activations only, so that central differences are exact to O(h^2)
SMOOTH = """\
import std.nn as nn
fn swish2(z) = z * nn.sigmoid(z)
train smooth {
    net f = nn.mlp(width = 8, depth = 2, act = swish2)
    net g = nn.deeponet(p = 4, width = 6, depth = 1, act = softplus2)
    data x: [N, 3], y: [N, 1], u: [N, 5]
    loss mean((f(x) - y)^2) + 0.1 * mean(log(cosh(g(u, x) - y)))
    dtype float64
}
fn softplus2(z) = log(1 + exp(z))
"""

# non-smooth pieces (relu, abs, a max in a loss), compared with autograd
KINKS = """\
import std.nn as nn
import std.losses as losses
train kinks {
    net f = nn.mlp(width = 16, depth = 2, act = nn.swish)
    net g = nn.deeponet(p = 8, width = 12, depth = 1)
    data x: [N, 3], y: [N, 1], u: [N, 5]
    loss mean(losses.huber(f(x) - y, 0.5)) + 0.1 * sum(abs(g(u, x)))
    dtype float64
}
"""


def _data(rng: np.random.Generator, n: int = 20) -> dict[str, np.ndarray]:
    return {
        "x": rng.normal(size=(n, 3)),
        "y": rng.normal(size=(n, 1)),
        "u": rng.normal(size=(n, 5)),
    }


def _perturbed(params: dict, rng: np.random.Generator) -> dict:
    """``params`` moved by N(0, 0.2) noise, in their own dtype."""
    return {
        k: np.asarray(v + 0.2 * rng.normal(size=np.shape(v)), dtype=np.asarray(v).dtype)
        for k, v in params.items()
    }


def test_mlp2_names_shapes_and_forward() -> None:
    net = ritz.compile(MLP2).mlp2
    p = net.init(seed=0)
    assert {k: v.shape for k, v in p.items()} == {
        "h.W": (2, 64),
        "h.b": (64,),
        "h.2.W": (64, 64),
        "h.2.b": (64,),
        "out.W": (64, 1),
        "out.b": (1,),
    }
    assert all(v.dtype == np.float32 for v in p.values())  # networks default to float32
    # Glorot-uniform bound sqrt(6 / (fan_in + fan_out)); biases start at zero
    assert np.abs(p["h.2.W"]).max() <= np.sqrt(6 / 128) and np.abs(p["h.2.W"]).max() > 0.2
    assert not p["h.b"].any()
    p = {k: v + np.float32(0.1) for k, v in p.items()}
    x = np.random.default_rng(1).normal(size=(7, 2))
    h = np.tanh(x @ p["h.W"] + p["h.b"])
    h = np.tanh(h @ p["h.2.W"] + p["h.2.b"])
    want = h @ p["out.W"] + p["out.b"]
    y = net(p, x)
    assert y.shape == (7, 1) and y.dtype == np.float32
    assert np.abs(y - want).max() < 1e-5
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    assert np.abs(net(p64, x) - want).max() < 1e-5  # float64 weights run in float64
    assert net(p64, x).dtype == np.float64


def test_init_is_seeded() -> None:
    net = ritz.compile(MLP2).mlp2
    a, b, c = net.init(seed=3), net.init(seed=3), net.init(seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["h.W"], c["h.W"])


def test_network_with_unknown_input_size_needs_it() -> None:
    mod = ritz.compile(
        "import std.nn as nn\nnetwork wrap(x: [n], k = 3) -> [1] {\n"
        "    return nn.mlp(x, width = k, depth = 1)\n}\n"
    )
    with pytest.raises(RitzError) as err:
        mod.wrap.init(seed=0)
    assert err.value.code == "R531" and "n=" in (err.value.hint or "")
    p = mod.wrap.init(seed=0, n=4, k=5)
    assert p["out.h.W"].shape == (4, 5) and p["out.out.W"].shape == (5, 1)


def test_input_sizes_are_numbers_in_the_body() -> None:
    """An autoencoder maps back to its input's size; the size also counts and scales."""
    mod = ritz.compile(
        "network ae(x: [n], k = 4) -> [n] {\n    h = tanh(dense(x, k))\n"
        "    repeat n - 4 { h = h + dense(h, k) }\n    return dense(h, n) + 0 * x / n\n}\n"
    )
    x = np.random.default_rng(0).standard_normal((7, 6))
    p = mod.ae.init(seed=0, n=6)
    assert sorted(k for k in p if k.endswith(".W")) == ["h.2.W", "h.3.W", "h.W", "out.W"]
    h = np.tanh(x @ p["h.W"] + p["h.b"])
    for k in ("h.2", "h.3"):
        h = h + h @ p[f"{k}.W"] + p[f"{k}.b"]
    np.testing.assert_allclose(mod.ae(p, x), h @ p["out.W"] + p["out.b"], rtol=1e-5, atol=1e-6)


def test_gradient_matches_central_differences() -> None:
    fit = ritz.compile(SMOOTH).smooth
    rng = np.random.default_rng(0)
    data = _data(rng)
    p = _perturbed(fit.init(seed=1), rng)
    loss, grad = fit.loss_and_grad(p, **data)
    assert loss == pytest.approx(fit.loss(p, **data), rel=1e-14)
    worst = 0.0
    for name, value in p.items():
        for idx in list(np.ndindex(value.shape))[:4]:
            q = {k: v.copy() for k, v in p.items()}
            h = 1e-5
            q[name][idx] += h
            up = fit.loss(q, **data)
            q[name][idx] -= 2 * h
            down = fit.loss(q, **data)
            fd = (up - down) / (2 * h)
            worst = max(worst, abs(fd - grad[name][idx]) / (abs(fd) + 1e-3))
    assert worst < 1e-7, worst


def _torch_loss(torch, p: dict, data: dict):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}

    def mlp(prefix: str, x, act, depth: int):
        h = x
        for name in ["h", *(f"h.{i}" for i in range(2, depth + 1))]:
            h = act(h @ t[f"{prefix}{name}.W"] + t[f"{prefix}{name}.b"])
        return h @ t[f"{prefix}out.W"] + t[f"{prefix}out.b"]

    x, y, u = (torch.tensor(data[k]) for k in "xyu")
    fx = mlp("f.", x, lambda z: z * torch.sigmoid(z), 2)
    branch = mlp("g.b.", u, torch.relu, 1)
    trunk = torch.relu(mlp("g.k.", x, torch.relu, 1))
    g = (branch * trunk).sum(dim=1, keepdim=True) + t["g.out.b"]
    r = fx - y
    huber = torch.nn.functional.huber_loss(r, torch.zeros_like(r), reduction="none", delta=0.5)
    loss = huber.mean() + 0.1 * g.abs().sum()
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


def test_gradient_matches_autograd() -> None:
    torch = pytest.importorskip("torch")
    fit = ritz.compile(KINKS).kinks
    rng = np.random.default_rng(2)
    data = _data(rng, 40)
    p = _perturbed(fit.init(seed=0), rng)
    loss, grad = fit.loss_and_grad(p, **data)
    want_loss, want = _torch_loss(torch, p, data)
    assert loss == pytest.approx(want_loss, rel=1e-13)
    for k in p:
        scale = np.abs(want[k]).max() + 1e-12
        assert np.abs(grad[k] - want[k]).max() / scale < 1e-12, k


INDEXED = """\
network g(x: [3]) -> [2] {
    h = tanh(dense(x, 8))
    s = x[0] * x[-1] + h[2]
    return dense(h, 2) * s
}
train t {
    net f = g
    data x: [N, 3], y: [N, 2], c: [2, 2]
    loss mean((f(x) - y)^2) + sum(c[1] * f(x))
    dtype float64
}
"""


@pytest.mark.parametrize("rows", [7, 700])
def test_indexing_forward_and_gradient_match_numpy_and_autograd(rows: int) -> None:
    """``x[0]``, ``x[-1]``, ``h[2]`` per sample inside a network, ``c[1]`` of a whole array in
    the loss: the forward pass against NumPy, the gradient against PyTorch (700 rows: through
    the row chunks too)."""
    torch = pytest.importorskip("torch")
    mod = ritz.compile(INDEXED)
    rng = np.random.default_rng(4)
    x, y, c = rng.normal(size=(rows, 3)), rng.normal(size=(rows, 2)), rng.normal(size=(2, 2))
    p = mod.g.init(seed=1, dtype="float64")
    h = np.tanh(x @ p["h.W"] + p["h.b"])
    want = (h @ p["out.W"] + p["out.b"]) * (x[:, 0] * x[:, -1] + h[:, 2])[:, None]
    np.testing.assert_allclose(mod.g(p, x), want, rtol=1e-13)
    p = mod.t.init(seed=0)
    loss, grad = mod.t.loss_and_grad(p, x=x, y=y, c=c)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x)
    th = torch.tanh(tx @ tp["f.h.W"] + tp["f.h.b"])
    out = (th @ tp["f.out.W"] + tp["f.out.b"]) * (tx[:, 0] * tx[:, -1] + th[:, 2])[:, None]
    ref = ((out - torch.tensor(y)) ** 2).mean() + (torch.tensor(c)[1] * out).sum()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    for k in p:
        assert np.abs(grad[k] - tp[k].grad.numpy()).max() < 1e-12 * np.abs(grad[k]).max(), k


def test_a_size_name_is_a_number_in_the_loss() -> None:
    """``N`` in a loss is the number of rows it sees (the mini-batch's when batched), so a
    per-row cross-entropy may divide by it; 900 rows run in chunks, which still divide by
    all of them."""
    mod = ritz.compile(
        """
network clf(x: [4]) -> [3] {
    z = dense(tanh(dense(x, 6)), 3)
    return z - log(sum(exp(z)))
}
train by_n {
    net f = clf
    data x: [N, 4], y: [N, 3]
    loss -sum(y * f(x)) / N
    dtype float64
}
train by_mean {
    net f = clf
    data x: [N, 4], y: [N, 3]
    loss -3 * mean(y * f(x))
    dtype float64
}
"""
    )
    rng = np.random.default_rng(0)
    for rows in (10, 900):
        x, y = rng.normal(size=(rows, 4)), np.eye(3)[rng.integers(0, 3, rows)]
        p = mod.by_n.init(seed=0)
        (a, ga), (b, gb) = (
            mod.by_n.loss_and_grad(p, x=x, y=y),
            mod.by_mean.loss_and_grad(p, x=x, y=y),
        )
        assert a == pytest.approx(b, rel=1e-14)
        for k in p:
            np.testing.assert_allclose(ga[k], gb[k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("act", ["sigmoid", "softplus", "swish", "gelu", "relu"])
def test_stdlib_activations_stay_finite_in_float32(act: str) -> None:
    """Far from 0 (|z| = 300: float32 exp overflows past 88) the stdlib activations and their
    derivatives are finite and agree with PyTorch's; gelu's constant sqrt(2/pi) is a float32
    literal, so its tanh saturates to exactly 1 and its derivative does not grow like z^3."""
    torch = pytest.importorskip("torch")
    mod = ritz.compile(
        "import std.nn as nn\n"
        f"network a(x: [1]) -> [1] {{\n    return nn.{act}(dense(x, 1))\n}}\n"
        "train t {\n    net f = a\n    data x: [N, 1]\n    loss sum(f(x))\n}\n"
    )
    z = np.array([-300, -100, -89.5, -20, -1, 0, 1e-3, 1, 20, 89.5, 100, 300], dtype=np.float32)
    p = {
        k: np.ones_like(v) if k.endswith(".W") else np.zeros_like(v)
        for k, v in mod.t.init(seed=0).items()
    }
    loss, grad = mod.t.loss_and_grad(p, x=z[:, None])
    torch_act = {
        "sigmoid": torch.sigmoid,
        "softplus": torch.nn.functional.softplus,
        "swish": torch.nn.functional.silu,
        "gelu": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
        "relu": torch.relu,
    }[act]
    w = torch.ones(1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    ref = torch_act(torch.tensor(z) * w + b).sum()
    ref.backward()
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grad.values())
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    assert float(grad["f.out.W"].ravel()[0]) == pytest.approx(w.grad.item(), rel=1e-5, abs=1e-6)
    # the bias sees the derivative at z = 0 itself: relu'(0) is 0, as in PyTorch and JAX
    assert float(grad["f.out.b"].ravel()[0]) == pytest.approx(b.grad.item(), rel=1e-5, abs=1e-6)


def test_fit_sine_as_written_in_the_language() -> None:
    """LANGUAGE.md §5, unchanged: 2000 Adam steps at batch 128 fit sin on [-pi, pi]."""
    fit = ritz.compile(FIT_SINE).fit_sine
    x = np.linspace(-np.pi, np.pi, 1000)[:, None]
    y = np.sin(x)
    params = fit.init(seed=0)
    loss0, grads = fit.loss_and_grad(params, x=x, y=y)
    assert set(grads) == set(params)
    res = fit.train(x=x, y=y)
    assert res.loss_history.shape == (2000,)
    assert res.loss_history[0] == pytest.approx(loss0, rel=0.3)  # one batch vs. all rows
    assert res.loss_history[-50:].mean() < 3e-3  # observed 5e-4
    pred = res.net(x)
    assert pred.shape == (1000, 1) and np.abs(pred - y).max() < 0.15  # observed 0.06
    assert fit.loss(res.params, x=x, y=y) < 3e-3
    again = fit.train(x=x, y=y, steps=50)
    assert np.array_equal(again.loss_history, fit.train(x=x, y=y, steps=50).loss_history)


@pytest.mark.parametrize(
    ("optimizer", "options", "bound"),
    [("sgd", {"lr": 0.05, "momentum": 0.9}, 0.02), ("lbfgs", {}, 1e-3)],
)
def test_other_optimizers_fit(optimizer: str, options: dict, bound: float) -> None:
    fit = ritz.compile(FIT_SINE).fit_sine  # the same module as above: compiled once
    x = np.linspace(-np.pi, np.pi, 200)[:, None]
    batch = {"batch": 200} if optimizer != "lbfgs" else {}  # lbfgs takes every row (R537)
    res = fit.train(x=x, y=np.sin(x), optimizer=optimizer, steps=300, **batch, **options)
    assert res.info["optimizer"] == optimizer
    assert res.loss_history[-1] < bound < res.loss_history[0]


def test_train_input_errors() -> None:
    fit = ritz.compile(FIT_SINE, name="fit.dsl").fit_sine
    x = np.zeros((10, 1))
    cases = [
        (lambda: fit.train(x=x), "R535"),
        (lambda: fit.train(x=x, y=np.zeros((10, 2))), "R536"),
        (lambda: fit.train(x=x, y=np.zeros((9, 1))), "R536"),
        (lambda: fit.train(x=x, y=x, z=x), "R503"),
        (lambda: fit.train(x=x, y=x, beta3=0.5), "R503"),
        (lambda: fit.train(x=x, y=x, momentum=0.5), "R537"),  # an option of sgd, not adam
        (lambda: fit.train(x=x, y=np.full((10, 1), np.nan)), "R533"),
        (lambda: fit.loss_and_grad({"f.h.W": np.zeros((1, 32))}, x=x, y=x), "R532"),
        (lambda: fit.loss_and_grad({**fit.init(), "f.h.w": 0}, x=x, y=x), "R532"),  # a typo
        (lambda: fit.train(x=x + 1, y=x + 1, optimizer="sgd", lr=1e6, steps=200), "R540"),
        (lambda: fit.train(x=x, y=x, steps=-3), "R538"),
        (lambda: fit.train(x=x, y=x, steps=2.5), "R538"),
        (lambda: fit.train(x=x, y=x, batch=0), "R538"),
        (lambda: fit.train(x=x, y=x, seed=-1), "R538"),
        (lambda: fit.init(seed="zero"), "R538"),
    ]
    for call, code in cases:
        with pytest.raises(RitzError) as err:
            call()
        assert err.value.code == code, (code, err.value.render())


def test_a_network_of_no_input_still_gives_a_row_per_sample() -> None:
    """``return bias()`` depends on no input: the forward pass broadcasts it to the batch."""
    mod = ritz.compile("network c(x: [2]) -> [1] {\n    return bias() + 1\n}\n")
    params = mod.c.init(seed=0)
    out = mod.c(params, np.zeros((5, 2), dtype=np.float32))
    assert out.shape == (5, 1) and np.all(out == 1.0)


def test_program_errors_point_at_the_source() -> None:
    bad_option = FIT_SINE.replace("depth = 2)", "depth = 2, widht = 3)")
    with pytest.raises(RitzError) as err:
        ritz.compile(bad_option, name="fit.dsl").fit_sine.init()
    assert err.value.code == "R301" and "width" in (err.value.hint or "")
    assert (err.value.file, err.value.line) == ("fit.dsl", 3)
    not_scalar = FIT_SINE.replace("loss mean((f(x) - y)^2)", "loss (f(x) - y)^2")
    with pytest.raises(RitzError) as err:
        ritz.compile(not_scalar, name="fit.dsl").fit_sine.init()
    assert err.value.code == "R348" and err.value.line == 5
    unknown_act = FIT_SINE.replace("depth = 2)", "depth = 2, act = nn.relu2)")
    with pytest.raises(RitzError) as err:
        ritz.compile(unknown_act, name="fit.dsl").fit_sine.init()
    assert err.value.code == "R202" and "nn.relu" in (err.value.hint or "")
    assert (err.value.line, err.value.column) == (3, 49)
    out_of_range = INDEXED.replace("x[-1]", "x[3]")
    with pytest.raises(RitzError) as err:
        ritz.compile(out_of_range, name="i.dsl").g.init()
    assert err.value.code == "R352" and "out of range" in err.value.message
    by_sample = INDEXED.replace("sum(c[1] * f(x))", "sum(y[0])")
    with pytest.raises(RitzError) as err:
        ritz.compile(by_sample, name="i.dsl").t.init()
    assert err.value.code == "R352" and "'N'" in err.value.message and err.value.line == 9


def test_generated_code_reuses_forward_activations() -> None:
    """The derived tanh' is written with the forward tanh value: no tanh in the backward."""
    fit = ritz.compile(FIT_SINE).fit_sine
    fit.init()
    source = fit.compile()[0].source
    body = source.split("def loss_and_grad_body")[1].split("def loss_and_grad(")[0]
    # the two hidden layers' forward activations (float32: the module's vectorising tanh)
    assert body.count("tanh32(") == 2 and "math.tanh" not in body
    assert "(1 - (a1*a1))" in body
    assert callable(fit.kernels.loss_and_grad) and callable(fit.kernels.train_adam)


def test_deeponet_forward_matches_numpy() -> None:
    """A per-sample scalar (sum over features) returned as [1]: the batch axis stays first."""
    net = ritz.compile(
        "import std.nn as nn\n"
        "network op(u: [5], y: [2]) -> [1] {\n"
        "    return nn.deeponet(u, y, p = 4, width = 6, depth = 1, act = tanh)\n"
        "}\n"
    ).op
    rng = np.random.default_rng(0)
    p = {k: np.asarray(v + 0.3 * rng.normal(size=np.shape(v))) for k, v in net.init(seed=0).items()}
    u, y = rng.normal(size=(9, 5)), rng.normal(size=(9, 2))

    def mlp(prefix: str, x: np.ndarray) -> np.ndarray:
        h = np.tanh(x @ p[f"{prefix}h.W"] + p[f"{prefix}h.b"])
        return h @ p[f"{prefix}out.W"] + p[f"{prefix}out.b"]

    want = (mlp("out.b.", u) * np.tanh(mlp("out.k.", y))).sum(1, keepdims=True) + p["out.out.b"]
    got = net(p, u, y)
    assert got.shape == (9, 1)
    assert np.abs(got - want).max() < 1e-12


@pytest.mark.parametrize("rows", [1000, 1001, 3])
def test_row_chunks_add_up_to_the_whole_batch(rows: int, monkeypatch) -> None:
    """The loss and gradient over 1000 rows run as 4 row chunks (1001: uneven ones, 3: one)
    equal the reference interpreter's evaluation of the whole gradient Program, and the same
    bits come out whatever the number of threads (the sums are added in chunk order)."""
    import numba

    from ritz.compiler.ir.evaluate import evaluate

    fit = ritz.compile(FIT_SINE).fit_sine  # float32, the program of the tests above
    rng = np.random.default_rng(3)
    data = {"x": rng.normal(size=(rows, 1)), "y": rng.normal(size=(rows, 1))}
    art, mod = fit.compile(data)
    assert "def loss_and_grad_body_chunk(" in art.source
    params = _perturbed(fit.init(seed=0), rng)
    w = pack_for(art, params, "float32")
    g = np.zeros_like(w)
    args = [np.asarray(data[n], dtype=np.float32) for n in art.entries["loss_and_grad"].inputs]
    value = mod.loss_and_grad(w, g, *args)
    want = evaluate(
        art.entries["loss_and_grad"].program,
        {**{k: np.asarray(v, dtype=float) for k, v in params.items()}, **data},
    )
    assert value == pytest.approx(float(want["loss"]), rel=2e-5)
    for k, (start, stop) in art.layout.offsets.items():
        ref = np.ravel(want[f"bar:{k}"])
        assert np.abs(g[start:stop] - ref).max() <= 2e-5 * (np.abs(ref).max() + 1e-6), k

    monkeypatch.setattr(numba, "get_num_threads", lambda: 3)
    g3 = np.zeros_like(w)
    assert mod.loss_and_grad(w, g3, *args) == value
    assert np.array_equal(g3, g)


def pack_for(art, params: dict, dtype: str) -> np.ndarray:
    from ritz.runtime.networks import pack

    return pack({k: np.asarray(v, dtype=dtype) for k, v in params.items()}, art)


def test_a_loss_whose_gradient_feeds_a_sum_back_stays_whole() -> None:
    """(mean(f(x) - y))^2: the gradient's cotangent is the mean itself, so the rows cannot be
    chunked independently; the Program compiles whole and its gradient is still exact."""
    from ritz.compiler.ir.evaluate import evaluate

    src = FIT_SINE.replace("loss mean((f(x) - y)^2)", "loss mean(f(x) - y)^2")
    fit = ritz.compile(src).fit_sine
    rng = np.random.default_rng(5)
    data = {"x": rng.normal(size=(600, 1)), "y": rng.normal(size=(600, 1))}
    art, _ = fit.compile(data)
    assert "def loss_and_grad_body_chunk(" not in art.source
    assert "def loss_body_chunk(" in art.source  # the loss itself is a function of sums
    params = _perturbed(fit.init(seed=0), rng)
    loss, grads = fit.loss_and_grad(params, **data)
    want = evaluate(
        art.entries["loss_and_grad"].program,
        {**{k: np.asarray(v, dtype=float) for k, v in params.items()}, **data},
    )
    assert loss == pytest.approx(float(want["loss"]), rel=1e-4)
    assert fit.loss(params, **data) == pytest.approx(loss, rel=1e-5)
    for k, v in grads.items():
        ref = np.reshape(want[f"bar:{k}"], np.shape(v))
        assert np.abs(v - ref).max() <= 1e-4 * (np.abs(ref).max() + 1e-6), k


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_adds_decay_times_the_weights_to_the_gradient(optimizer: str) -> None:
    """weight_decay as PyTorch's Adam and SGD take it: g + decay * w enters the moments (and
    the reported loss is the data loss alone). Three full-batch steps by hand from the same
    weights, with the block's own loss_and_grad."""
    src = FIT_SINE.replace("optimizer adam(lr = 1e-3)", "optimizer adam(lr = 1e-2)")
    src = src.replace("steps 2000, batch 128", "steps 3\n    dtype float64")
    fit = ritz.compile(src).fit_sine
    rng = np.random.default_rng(3)
    data = {"x": rng.normal(size=(32, 1)), "y": rng.normal(size=(32, 1))}
    decay, lr = 0.3, 1e-2
    extra = {"momentum": 0.5} if optimizer == "sgd" else {}
    res = fit.train(**data, optimizer=optimizer, lr=lr, weight_decay=decay, seed=0, **extra)
    p = {k: v.copy() for k, v in fit.init(seed=0).items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    losses = []
    for t in range(1, 4):
        loss, grads = fit.loss_and_grad(p, **data)
        losses.append(loss)
        for k in p:
            g = grads[k] + decay * p[k]
            if optimizer == "adam":
                m[k] = 0.9 * m[k] + 0.1 * g
                v2[k] = 0.999 * v2[k] + 0.001 * g * g
                p[k] = p[k] - lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v2[k] / (1 - 0.999**t)) + 1e-8)
            else:
                m[k] = 0.5 * m[k] + g
                p[k] = p[k] - lr * m[k]
    np.testing.assert_allclose(res.loss_history, losses, rtol=1e-12)
    for k in p:
        np.testing.assert_allclose(res.params[k], p[k], rtol=1e-10, atol=1e-13)
