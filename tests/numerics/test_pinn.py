"""Physics-informed networks (``solve pinn``, LANGUAGE.md §3): the compiled loss against the same
loss computed from the network by finite differences, its weight gradient against differences
of the loss, and a solve that converges to an exact solution."""

from __future__ import annotations

import numpy as np
import pytest

import ritz
from ritz.runtime.networks import init_weights, pack, unpack
from ritz.runtime.pinn import pinn_inputs

ROD = """\
import std.nn as nn
pde rod {
    space x in [0, 1]
    time  t in [0, 1]
    field u
    param k = 0.3
    dt(u) = k * diff(u, x, 2) - u * diff(u, x) + sin(x) * t
    boundary u + 0.5 * diff(u, x) = t at x = 0
    boundary u = 0 at x = 1
    initial u = x * (1 - x)
    solve pinn(net = nn.mlp(width = 8, depth = 2, act = tanh), points = 1000,
               boundary_points = 3, initial_points = 25, steps = 5, dtype = float64)
}
"""


def _compiled(handle, params=None):  # the artifact, module and loss inputs
    handle.solve(steps=1)  # compiles and caches
    key = next(k for k in handle._artifacts if k.startswith("('pinn'"))
    art, mod = handle._artifacts[key], handle._modules[key]
    merged = dict(handle.problem.solves[0].options)
    data = pinn_inputs(art, handle.problem, merged, params or {"k": 0.3}, "float64")
    return art, mod, dict(zip(art.entries["loss"].inputs, data, strict=True))


def test_loss_is_the_pde_residual_of_the_network() -> None:
    """1000 interior points run as 4 row chunks, and the 3 points of each face leave a chunk
    with none: the chunks' sums must still add up to the loss and gradient of all points."""
    handle = ritz.compile(ROD).rod
    art, mod, inputs = _compiled(handle)
    rng = np.random.default_rng(0)
    params = {
        k: v + 0.3 * rng.normal(size=np.shape(v))
        for k, v in init_weights(art.weights, 1, "float64").items()
    }
    w = pack(params, art)
    loss = mod.loss(w, *(inputs[n] for n in art.entries["loss"].inputs))

    def net(p: np.ndarray) -> np.ndarray:
        return mod.forward_net(w, np.ascontiguousarray(p))[:, 0]

    def derivs(p: np.ndarray) -> tuple[np.ndarray, ...]:
        h = 1e-4
        ex, et = np.array([h, 0.0]), np.array([0.0, h])
        u = net(p)
        ux = (net(p + ex) - net(p - ex)) / (2 * h)
        uxx = (net(p + ex) - 2 * u + net(p - ex)) / h**2
        ut = (net(p + et) - net(p - et)) / (2 * h)
        return u, ux, uxx, ut

    p = inputs["pts:interior"]
    u, ux, uxx, ut = derivs(p)
    x, t = p[:, 0], p[:, 1]
    want = np.mean((ut - (0.3 * uxx - u * ux + np.sin(x) * t)) ** 2)
    u, ux, _, _ = derivs(inputs["pts:x.lo"])
    want += np.mean((u + 0.5 * ux - inputs["pts:x.lo"][:, 1]) ** 2)
    want += np.mean(net(inputs["pts:x.hi"]) ** 2)
    p0 = inputs["pts:initial"]
    assert np.all(p0[:, 1] == 0.0) and np.all(inputs["pts:x.lo"][:, 0] == 0.0)
    want += np.mean((net(p0) - p0[:, 0] * (1 - p0[:, 0])) ** 2)
    assert loss == pytest.approx(want, rel=1e-6)

    # the weight gradient (reverse mode over the forward-mode derivatives) against differences
    g = np.zeros_like(w)
    args = [inputs[n] for n in art.entries["loss_and_grad"].inputs]
    assert mod.loss_and_grad(w, g, *args) == pytest.approx(loss, rel=1e-14)
    for i in rng.choice(w.size, 12, replace=False):
        e = np.zeros_like(w)
        e[i] = 1e-6
        fd = (mod.loss(w + e, *args) - mod.loss(w - e, *args)) / 2e-6
        assert g[i] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_optimizer_from_python_and_as_a_bare_name() -> None:
    """The optimizer and its options may be given from Python, as in train blocks, and a
    solve line may name it bare (``optimizer = lbfgs``)."""
    handle = ritz.compile(ROD).rod
    sol = handle.solve(optimizer="sgd", lr=1e-3, momentum=0.9, steps=3)
    assert sol.info["optimizer"] == "sgd" and len(sol.info["loss_history"]) == 3
    with pytest.raises(ritz.RitzError) as err:
        handle.solve(optimizer="adam", momentum=0.9)
    assert err.value.code == "R537"
    bare = ritz.compile(ROD.replace("dtype = float64)", "dtype = float64, optimizer = lbfgs)"))
    sol = bare.rod.solve(steps=3)
    assert sol.info["optimizer"] == "lbfgs"
    assert sol.info["loss_history"][-1] < sol.info["loss_history"][0]


def test_a_network_that_does_not_fit_the_fields_is_an_error() -> None:
    """One output per field: a net with another count, or something that is no network."""
    for net, words in (
        ("nn.mlp(width = 4, depth = 1, n_out = 2)", "has 1 field"),
        ("tanh", "not a network"),
    ):
        text = ROD.replace("nn.mlp(width = 8, depth = 2, act = tanh)", net)
        with pytest.raises(ritz.RitzError) as err:
            ritz.compile(text, name="rod.dsl").rod.solve(steps=1)
        assert words in err.value.message and err.value.line == 11, err.value.render()


RING = """\
import std.nn as nn
pde ring {
    space x in [0, 1] periodic
    field u
    -diff(u, x, 2) + u = cos(2 * pi * x)
    solve pinn(net = nn.mlp(width = 8, depth = 2), points = 300, boundary_points = 7,
               steps = 5, dtype = float64)
}
"""


def test_periodic_axis_pairs_the_faces() -> None:
    """On a periodic axis the two faces hold the same points (one coordinate apart), and the
    loss asks u and du/dx to agree across them (a steady problem: no initial set)."""
    art, mod, inputs = _compiled(ritz.compile(RING).ring, {})
    lo, hi = inputs["pts:x.lo"], inputs["pts:x.hi"]
    assert lo.shape == hi.shape == (7, 1) and np.all(lo == 0.0) and np.all(hi == 1.0)
    w = pack(init_weights(art.weights, 3, "float64"), art)

    def net(p: np.ndarray) -> np.ndarray:
        return mod.forward_net(w, np.ascontiguousarray(p))[:, 0]

    def du(p: np.ndarray) -> np.ndarray:
        return (net(p + 1e-5) - net(p - 1e-5)) / 2e-5

    p = inputs["pts:interior"]
    uxx = (net(p + 1e-4) - 2 * net(p) + net(p - 1e-4)) / 1e-8
    want = np.mean((-uxx + net(p) - np.cos(2 * np.pi * p[:, 0])) ** 2)
    want += np.mean((net(lo) - net(hi)) ** 2) + np.mean((du(lo) - du(hi)) ** 2)
    loss = mod.loss(w, *(inputs[n] for n in art.entries["loss"].inputs))
    assert loss == pytest.approx(want, rel=1e-6)


# the same program as the command-line test's, so that one compilation serves both
HEAT = """\
import std.nn as nn
pde heat {
    space x in [0, 1]
    time  t in [0, 0.5]
    field u
    param nu = 0.1
    dt(u) = nu * diff(u, x, 2)
    boundary u = 0 at x = 0, x = 1
    initial  u = sin(pi * x)
    solve fd(cells = 32, dt = 1e-3)
    solve pinn(net = nn.mlp(width = 16, depth = 2), points = 500, steps = 3000,
               optimizer = adam(lr = 1e-2), dtype = float64)
}
"""


@pytest.mark.slow
def test_pinn_solves_the_heat_equation() -> None:
    """u = exp(-nu pi^2 t) sin(pi x): 3000 Adam steps on 500 points reach 5e-3 (observed)."""
    sol = ritz.compile(HEAT, name="heat.dsl").heat.solve(method="pinn")
    x = sol.coords["x"]
    exact = np.exp(-0.1 * np.pi**2 * sol.t[-1]) * np.sin(np.pi * x)
    assert sol.t[0] == 0 and sol.t[-1] == 0.5 and sol["u"].shape == (2, 64)
    assert np.abs(sol["u"][-1] - exact).max() < 1.5e-2
    hist = sol.info["loss_history"]
    assert hist[-1] < 1e-3 * hist[0]
    mid = sol.at(x=np.array([0.25, 0.5]), t=0.25)["u"]
    want = np.exp(-0.1 * np.pi**2 * 0.25) * np.sin(np.pi * np.array([0.25, 0.5]))
    np.testing.assert_allclose(mid, want, atol=1.5e-2)


@pytest.mark.parametrize("act", ["nn.swish", "nn.relu"])  # min and abs; max
def test_activations_built_on_min_max_and_abs(act: str) -> None:
    """Their second derivatives hold the derivative of a step, zero almost everywhere (as in
    autograd): it must not reach the printer as a DiracDelta."""
    # one hidden layer: u_xx already takes the activation's second derivative
    text = ROD.replace("act = tanh", f"act = {act}").replace("steps = 5", "steps = 30")
    text = text.replace("depth = 2", "depth = 1")
    sol = ritz.compile(text).rod.solve()
    history = np.asarray(sol.info["loss_history"])
    assert np.isfinite(history).all()
    if act != "nn.relu":  # relu's u_xx is zero: its loss need not fall
        assert history[-1] < history[0]


def test_output_grid_on_the_solve_line() -> None:
    """cells and every may stand on the pinn line as docs/language.md says (they were R206),
    and sol.t is an array as for fd."""
    text = ROD.replace(
        "steps = 5, dtype = float64)", "steps = 2, dtype = float64, cells = 7, every = 0.25)"
    )
    sol = ritz.compile(text).rod.solve()
    assert isinstance(sol.t, np.ndarray) and sol.t.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert sol["u"].shape == (5, 7)
    with pytest.raises(ritz.RitzError) as err:
        sol.vjp({"u": np.ones(7)})
    assert err.value.code == "R513" and "pinn solution has no vjp" in err.value.message


def test_a_jumping_flux_coefficient_is_refused_for_a_pinn() -> None:
    """fd takes div(k grad u) with a piecewise k on the cell faces; a network differentiates
    by the chain rule, where the jump is a delta function with no value: R328, not a loss
    that silently drops the interface condition."""
    text = ROD.replace(
        "dt(u) = k * diff(u, x, 2) - u * diff(u, x) + sin(x) * t",
        "dt(u) = div((1 + (x > 0.4)) * grad(u))",
    )
    with pytest.raises(ritz.RitzError) as err:
        ritz.compile(text).rod.solve(steps=1)
    assert err.value.code == "R328" and "method fd" in (err.value.hint or "")


PERIODIC_FOURTH = """\
import std.nn as nn
pde bih {
    space x in [0, 1] periodic
    field u
    diff(u, x, 4) + u = ((2 * pi)^4 + 1) * sin(2 * pi * x)
    solve pinn(net = nn.mlp(width = 4, depth = 1), points = 10, steps = 1)
}
"""


@pytest.mark.parametrize(("order", "matched"), [(4, 4), (3, 3), (2, 2), (1, 2)])
def test_periodic_faces_match_every_derivative_below_the_order(order: int, matched: int) -> None:
    """Across a periodic axis the loss matches u, u', ... up to one below the highest order
    along it: matched in u and u' only, diff(u, x, 4) + u = f has a two-parameter family of
    exact minimisers that are not periodic (a pinn error of 2 where fd's is 2e-3)."""
    from ritz.compiler.lower.pinn import lower_pinn

    text = PERIODIC_FOURTH.replace("diff(u, x, 4)", f"diff(u, x, {order})")
    handle = ritz.compile(text)["bih"]
    options = dict(handle.problem.solves[0].options)
    lowered = lower_pinn(handle.problem, options, handle.env, "float64")
    periodic = [t for t in lowered.terms if t.startswith("periodic")]
    assert periodic == [f"periodic u{chr(39) * m} along x" for m in range(matched)]


def test_a_constant_residual_counts_once_per_point() -> None:
    """An affine network makes -u'' - 3 the constant -3: its mean square is 9 (it was 9/32,
    the scalar summed once and divided by the points)."""
    text = """
network lin(x: [n_in]) -> [1] {
    return dense(x, 1)
}
pde a {
    space x in [0, 1]
    field u
    -diff(u, x, 2) = 3
    boundary u = 2 at x = 0
    boundary u = 0 at x = 1
    solve pinn(net = lin, points = 32, steps = 1, optimizer = sgd(lr = 0), dtype = float64)
}
"""
    sol = ritz.compile(text)["a"].solve()
    b = float(sol.at(x=np.array([0.0]))["u"][0])
    w = float(sol.at(x=np.array([1.0]))["u"][0]) - b
    assert sol.info["loss_history"][0] == pytest.approx(9 + (b - 2) ** 2 + (w + b) ** 2)


DAMPED = """\
import std.nn as nn
pde wv {
    space x in [0, 2] periodic
    time t in [0, 0.5]
    field u
    dt(u, 2) = diff(u, x, 2) - 0.5 * dt(u)
    initial u = sin(pi * x)
    initial dt(u) = 0
    solve pinn(net = nn.mlp(width = 6, depth = 2), points = 50, boundary_points = 9,
               initial_points = 11, steps = 1, dtype = float64)
    solve fd(cells = 32, dt = 1e-3)
}
"""
KELVIN_VOIGT = "diff(u, x, 2) + 0.1 * diff(dt(u), x, 2)"


def _torch_wave_loss(torch, p: dict, inputs: dict, kelvin_voigt: bool):
    """The damped (or Kelvin-Voigt) wave's pinn loss with autograd derivatives of the mlp."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}

    def net(z):
        h = torch.tanh(z @ t["net.h.W"] + t["net.h.b"])
        h = torch.tanh(h @ t["net.h.2.W"] + t["net.h.2.b"])
        return (h @ t["net.out.W"] + t["net.out.b"])[:, 0]

    def d(f, z, j):  # d f / d z_j per point, kept differentiable
        return torch.autograd.grad(f.sum(), z, create_graph=True)[0][:, j]

    z = torch.tensor(inputs["pts:interior"], requires_grad=True)
    u = net(z)
    ut, ux = d(u, z, 1), d(u, z, 0)
    utt, uxx = d(ut, z, 1), d(ux, z, 0)
    rhs = uxx + (0.1 * d(d(ut, z, 0), z, 0) if kelvin_voigt else -0.5 * ut)
    loss = ((utt - rhs) ** 2).mean()
    lo = torch.tensor(inputs["pts:x.lo"], requires_grad=True)
    hi = torch.tensor(inputs["pts:x.hi"], requires_grad=True)
    ulo, uhi = net(lo), net(hi)
    loss = loss + ((ulo - uhi) ** 2).mean() + ((d(ulo, lo, 0) - d(uhi, hi, 0)) ** 2).mean()
    p0 = torch.tensor(inputs["pts:initial"], requires_grad=True)
    u0 = net(p0)
    loss = loss + ((u0 - torch.sin(torch.pi * p0[:, 0])) ** 2).mean() + (d(u0, p0, 1) ** 2).mean()
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


@pytest.mark.parametrize("kelvin_voigt", [False, True])
def test_velocity_in_a_second_order_pinn_is_the_networks_time_derivative(
    kelvin_voigt: bool,
) -> None:
    """dt(u) in the right-hand side of dt(u, 2) = ... (a damped wave's - 0.5 * dt(u), and
    Kelvin-Voigt's 0.1 * diff(dt(u), x, 2), the mixed u_txx) is the network's own time
    derivative: the loss and its weight gradient equal torch autograd's (the velocity reached
    the printer as dt(u), R900)."""
    torch = pytest.importorskip("torch")
    text = DAMPED.replace("- 0.5 * dt(u)", "+ 0.1 * diff(dt(u), x, 2)") if kelvin_voigt else DAMPED
    art, mod, inputs = _compiled(ritz.compile(text).wv, {})
    rng = np.random.default_rng(5)
    p = {
        k: v + 0.3 * rng.normal(size=np.shape(v))
        for k, v in init_weights(art.weights, 1, "float64").items()
    }
    w = pack(p, art)
    g = np.zeros_like(w)
    args = [inputs[n] for n in art.entries["loss_and_grad"].inputs]
    loss = mod.loss_and_grad(w, g, *args)
    want_loss, want = _torch_wave_loss(torch, p, inputs, kelvin_voigt)
    assert loss == pytest.approx(want_loss, rel=1e-12, abs=1e-14)
    grad = unpack(g, art)
    for k in p:
        scale = np.abs(want[k]).max() + 1e-12
        assert np.abs(grad[k] - want[k]).max() / scale < 1e-10, k


@pytest.mark.slow
def test_damped_wave_pinn_converges() -> None:
    """u_tt = u_xx - 0.5 u_t from sin(pi x) at rest: u = T(t) sin(pi x) with T'' + 0.5 T' +
    pi^2 T = 0, T(0) = 1, T'(0) = 0. 3000 lbfgs steps on 500 points reach 7e-3 at t = 0.5
    (observed; the loss falls 2.5e4-fold)."""
    text = DAMPED.replace("width = 6", "width = 16").replace("points = 50", "points = 500")
    text = text.replace("steps = 1,", "steps = 3000, optimizer = lbfgs,")
    sol = ritz.compile(text).wv.solve(method="pinn")
    g, w = 0.5, np.sqrt(np.pi**2 - 0.25**2)
    x, t = sol.coords["x"], sol.t[-1]
    exact = np.exp(-g * t / 2) * (np.cos(w * t) + g / (2 * w) * np.sin(w * t)) * np.sin(np.pi * x)
    hist = sol.info["loss_history"]
    assert t == 0.5 and hist[-1] < 1e-4 * hist[0]
    assert np.abs(sol["u"][-1] - exact).max() < 1.5e-2
