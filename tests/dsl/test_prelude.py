"""std.nn's activations are visible by their bare names (LANGUAGE.md writes ``act = relu`` and
``fn swish(z) = z * sigmoid(z)`` without an import), unless a module defines the name."""

from __future__ import annotations

import numpy as np
import pytest

import ritz
from ritz.dsl import load_text

LANGUAGE_4 = """
network mlp(x: [n_in], width = 64, depth = 3, n_out = 1, act = tanh) -> [n_out] {
    h = x
    repeat depth { h = act(dense(h, width)) }
    return dense(h, n_out)
}

network deeponet(u: [m], y: [d], p = 40, width = 40, depth = 2, act = relu) -> [1] {
    b = mlp(u, width = width, depth = depth, n_out = p, act = act)
    k = act(mlp(y, width = width, depth = depth, n_out = p, act = act))
    return sum(b * k) + bias()
}

fn swish(z) = z * sigmoid(z)
"""


def test_the_networks_of_language_section_4_run_as_written() -> None:
    mod = ritz.compile(LANGUAGE_4)
    weights = mod.deeponet.init(seed=0, m=5, d=1, dtype="float64")
    out = mod.deeponet(weights, np.ones((3, 5)), np.zeros((3, 1)))
    assert out.shape == (3, 1) and np.all(np.isfinite(out))


def test_bare_activations_have_std_nn_values() -> None:
    env = load_text("fn swish(z) = z * sigmoid(z)\nconst s = swish(1) + relu(-2) + relu(3)\n").env
    assert float(env.consts["s"]) == pytest.approx(1 / (1 + np.exp(-1)) + 3, rel=1e-14)


def test_a_module_may_define_the_names_itself() -> None:
    env = load_text("fn relu(z) = max(z, 0) + 1\nconst s = relu(-2)\n").env
    assert float(env.consts["s"]) == 1.0
    load_text("network sigmoid(x: [1]) -> [1] { return dense(x, 1) }\n")
