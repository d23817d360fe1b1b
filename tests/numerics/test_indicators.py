"""Comparisons and ``and``/``or``/``not`` are 0/1 indicators (docs/language.md): their values
in every kind of block, their derivative (zero off the jump) through the adjoint, a network and
a bilevel program, and the derivatives that would need a delta function refused."""

from __future__ import annotations

import numpy as np
import pytest

import ritz
from ritz.dsl import RitzError, load_text

BOX_HEAT = """
pde box {
    space x in [0, 1]
    time t in [0, 0.01]
    field u
    dt(u) = diff(u, x, 2)
    boundary u = 0 at all
    initial u = (x > 0.25) * (x <= 0.75)
    solve fd(cells = 200, scheme = rk4, dt = 1e-5)
}
"""


def test_constants_fold_to_zero_or_one() -> None:
    text = (
        "const a = (1 < 2) + 10 * (2 <= 2) + 100 * (3 > 3) + 1000 * (3 >= 3.0)\n"
        "const b = (1 == 1.0) + 10 * (1 != 1) + 100 * (2 and 0.5) + 1000 * (0 or 0)\n"
        "const c = (not 0) + 10 * (not -2) + 100 * (0.1 or 0) + 1000 * (7 and 1)\n"
    )
    env = load_text(text).env
    assert [int(env.consts[k]) for k in "abc"] == [1011, 101, 1101]


def test_box_initial_condition_matches_the_fourier_series() -> None:
    """The box is 1 on (0.25, 0.75]: faces of the 200-cell grid, so the sampled box is exact and
    the solution is the heat series of the box. A comparison turned round (``<`` for ``>``)
    gives its complement, an error of order one."""
    sol = ritz.compile(BOX_HEAT).box.solve()
    x, t = sol.coords["x"], sol.t[-1]
    n = np.arange(1, 2000)[:, None]
    b = 2 / (n * np.pi) * (np.cos(n * np.pi / 4) - np.cos(3 * n * np.pi / 4))
    exact = (b * np.exp(-((n * np.pi) ** 2) * t) * np.sin(n * np.pi * x)).sum(0)
    assert np.abs(sol["u"][0] - ((x > 0.25) & (x <= 0.75))).max() == 0
    assert np.abs(sol["u"][-1] - exact).max() < 2e-4


SWITCHED = """
pde switched {
    space x in [0, 1]
    time t in [0, 0.04]
    field u
    param k1 = 1.0, k2 = 0.2, r = 3.0
    dt(u) = (k1 * (x < 0.4) + k2 * (x >= 0.4)) * diff(u, x, 2) + r * (t > 0.02) * u * (1 - u)
    boundary u = (t >= 0.01 or x > 0.5) at x = 0, x = 1
    initial u = sin(pi * x) * (0.5 + (x != 0.3) * (not (x > 0.8)))
    solve fd(cells = 30, scheme = rk4, dt = 1e-4)
}
"""


def test_adjoint_through_switches_matches_central_differences() -> None:
    """Switches in x and t hold still under small changes of the parameters, so central
    differences of whole solves are exact to O(eps^2); the discrete adjoint must match them."""
    handle = ritz.compile(SWITCHED).switched
    sol = handle.solve()
    rng = np.random.default_rng(3)
    w = rng.standard_normal(sol["u"].shape[1:])
    grad = sol.vjp({"u": w}).params
    for name, value in {"k1": 1.0, "k2": 0.2, "r": 3.0}.items():
        eps = 1e-5 * value
        up = float(np.sum(w * handle.solve(**{name: value + eps})["u"][-1]))
        down = float(np.sum(w * handle.solve(**{name: value - eps})["u"][-1]))
        fd = (up - down) / (2 * eps)
        assert abs(grad[name] - fd) <= 1e-7 * max(1.0, abs(fd)), (name, grad[name], fd)
    # the switches are live: each part of the coefficient and the reaction matter
    assert min(abs(grad[n]) for n in ("k1", "k2", "r")) > 1e-3


GATED = """
import std.nn as nn
fn leaky(z) = z * ((z > 0) + 0.1 * (z <= 0))
fn leaky_ref(z) = max(z, 0) + 0.1 * min(z, 0)
network a(x: [2]) -> [1] {
    return dense(leaky(dense(x, 8)), 1)
}
network b(x: [2]) -> [1] {
    return dense(leaky_ref(dense(x, 8)), 1)
}
train ta {
    net f = a
    data x: [N, 2], y: [N, 1]
    loss mean((f(x) - y)^2 * (1 + (y > 0)))
    dtype float64
}
train tb {
    net f = b
    data x: [N, 2], y: [N, 1]
    loss mean((f(x) - y)^2 * (1 + (1 + sign(y)) / 2))
    dtype float64
}
"""


def test_network_gate_equals_max_min_form() -> None:
    """A leaky gate written with comparisons against the same gate from max/min, and a loss
    weighted by (y > 0) against one weighted through sign: equal losses and gradients."""
    mod = ritz.compile(GATED)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2))
    y = rng.standard_normal((64, 1))
    pa = mod.ta.init()
    la, ga = mod.ta.loss_and_grad(pa, x=x, y=y)
    lb, gb = mod.tb.loss_and_grad(pa, x=x, y=y)
    assert abs(la - lb) <= 1e-14 * abs(lb)
    for k in ga:
        np.testing.assert_allclose(ga[k], gb[k], rtol=1e-12, atol=1e-14)
    assert max(float(np.abs(g).max()) for g in ga.values()) > 1e-3


def test_network_gate_matches_autograd() -> None:
    torch = pytest.importorskip("torch")
    mod = ritz.compile(GATED)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 2)), rng.standard_normal((32, 1))
    p = mod.ta.init()
    loss, grad = mod.ta.loss_and_grad(p, x=x, y=y)
    names = ["f.out.W", "f.out.b", "f.out.2.W", "f.out.2.b"]
    assert sorted(p) == sorted(names)
    tp = {k: torch.tensor(p[k], requires_grad=True) for k in names}
    w1, b1, w2, b2 = (tp[k] for k in names)
    hidden = torch.nn.functional.leaky_relu(torch.tensor(x) @ w1 + b1, 0.1)
    out = hidden @ w2 + b2
    yt = torch.tensor(y)
    ref = (((out - yt) ** 2) * (1 + (yt > 0).double())).mean()
    ref.backward()
    assert abs(loss - float(ref.detach())) <= 1e-12
    for k in names:
        np.testing.assert_allclose(grad[k], tp[k].grad.numpy(), rtol=1e-10, atol=1e-13)


CLIPPED = """
bilevel clip {
    upper a = 0.5 in [0, 2]
    lower w = 0.0
    lower minimize (w - a)^2 + (w > 1) * (w - 1)^2
    upper minimize (w - 0.8)^2 + (a < 0) * a^2
}
"""


@pytest.mark.parametrize(("a", "expected"), [(0.5, -0.6), (1.5, 0.45)])
def test_bilevel_hypergradient_on_each_side_of_a_switch(a: float, expected: float) -> None:
    """Below 1 the follower copies a (w = a); above, it splits the difference (w = (a + 1) / 2):
    d/da (w - 0.8)^2 is 2 (a - 0.8) and 2 ((a + 1) / 2 - 0.8) / 2."""
    h = ritz.compile(CLIPPED).clip.hypergrad(a=a)["a"]
    assert abs(h - expected) < 1e-8


@pytest.mark.parametrize(
    "rhs",
    [
        "diff((x < 0.5) * u, x)",  # transport (the chain rule) across a jump
        "diff(sign(u), x)",
        "diff(max(u, 0), x, 3)",
        "diff(floor(4 * x) * u, x)",
        "diff((x % 0.5) * u, x)",
        "lap(u % 0.5)",
    ],
)
def test_derivatives_across_jumps_are_refused(rhs: str) -> None:
    text = BOX_HEAT.replace("diff(u, x, 2)", rhs, 1)
    with pytest.raises(RitzError) as err:
        load_text(text)
    assert err.value.code == "R328", err.value.render()


@pytest.mark.parametrize(
    "rhs",
    [
        "diff(abs(u) * u, x, 2)",  # |u| u is twice differentiable a.e. with no delta
        "diff(abs(u - 0.5) * (u - 0.5), x, 2)",  # z delta(z) = 0 for any z linear in a name
        "diff(abs(u + x) * (u + x), x, 2)",
        "diff(max(u, 0)^2, x, 2)",
        "diff(u * (u > 0), x)",  # relu: u delta(u) is zero
        "diff(sign(u - 0.2) * (u - 0.2), x)",
        "diff(max(u, 0), x)",
        "diff(abs(x - 0.5) * u, x) + diff(u, x, 2)",
        "(x < 0.5) * diff(u, x, 2)",
    ],
)
def test_derivatives_of_kinks_are_taken_as_real_functions(rhs: str) -> None:
    """Once re/im (SymPy's complex reading of abs) reached the compiler as an internal error;
    the chain rule over real names gives signs and steps, which every backend prints."""
    text = BOX_HEAT.replace("diff(u, x, 2)", rhs, 1).replace("scheme = rk4", "scheme = euler")
    sol = ritz.compile(text).box.solve(cells=20, dt=1e-4)
    assert np.isfinite(sol["u"]).all()


AS_WRITTEN = """
pde p {
    space x in [0, 1] periodic
    time t in [0, 1]
    field v, w1, w2, w3
    dt(v) = 0 * v
    dt(w1) = v + 0.3 > 1.1
    dt(w2) = v + 0.3 == 1.1
    dt(w3) = -2 * ((x - 0.1) % 0.3) - x % -0.3 + v % 0.1
    initial v = 0
    initial w1 = 0
    initial w2 = 0
    initial w3 = 0
    solve fd(cells = 4, scheme = euler, dt = 1)
}
"""


def test_comparisons_and_remainders_run_as_written() -> None:
    """``v + 0.3 > 1.1`` compares the two sides in double as NumPy does (SymPy once moved the
    constants across: v - 0.8 > 0 rounds differently), and ``-2 * (a % b)`` keeps its brackets
    (printed as ``-2*a % b`` it was ``(-2*a) % b``)."""
    sol = ritz.compile(AS_WRITTEN).p.solve(
        initial={"v": np.array([0.8, 0.8000000000000002, 0.7999999999999999, 0.1])}
    )
    v, x = sol["v"][-1], sol.coords["x"]
    np.testing.assert_array_equal(sol["w1"][-1], (v + 0.3 > 1.1) * 1.0)
    np.testing.assert_array_equal(sol["w2"][-1], (v + 0.3 == 1.1) * 1.0)
    assert sol["w2"][-1].tolist() == [1, 1, 0, 0]
    w3 = -2 * ((x - 0.1) % 0.3) - x % -0.3 + v % 0.1
    np.testing.assert_allclose(sol["w3"][-1], w3, atol=1e-15)


def test_remainder_is_computed_as_written() -> None:
    """SymPy's Mod rewrote ``v % 0.1`` as ``0.1 * ((10 v) % 1)``: a whole period off for about
    two in five values rounded to one decimal (0.3 % 0.1 is 0.0999..., not 0)."""
    text = AS_WRITTEN.replace("cells = 4", "cells = 200").replace(
        "dt(w1) = v + 0.3 > 1.1", "dt(w1) = v % 0.1 + 0 * (v % -0.7)"
    )
    v = np.round(np.linspace(-3, 3, 200), 1)
    sol = ritz.compile(text).p.solve(initial={"v": v})
    np.testing.assert_array_equal(sol["w1"][-1], v % 0.1)


def test_automatic_step_size_sees_through_comparisons() -> None:
    """dt = auto estimates the spectrum with the NumPy reference evaluator, which must know the
    indicator functions (it once failed with NameError)."""
    text = BOX_HEAT.replace("diff(u, x, 2)", "diff(u, x, 2) - (u > 0.5) * u", 1)
    sol = ritz.compile(text.replace("dt = 1e-5", "dt = auto")).box.solve(cells=50)
    assert np.isfinite(sol["u"]).all() and 0 < sol.info.get("dt", 1e-5) < 1e-3
