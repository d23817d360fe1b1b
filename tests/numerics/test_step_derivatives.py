"""Second derivatives through abs, max and min at the kink's point: the stable softplus
(max(z, 0) + log(1 + exp(-|z|))) and huber are twice differentiable at 0, and their derived
curvature there must be the true one (1/4 and 1), not the 0 that sign(0)^2 would give. A
bilevel hypergradient at a lower solution exactly at 0 reads that curvature: for the lower
objective g(w) + (w - lam)^2 / 2 - c w, dw/dlam = 1 / (g''(w) + 1)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import ritz
from ritz.compiler.symbolic import partial

PROGRAM = """
import std.nn as nn
import std.losses as L
bilevel softplus_std {
    upper lam = 0.0
    lower w = 0.0
    lower minimize nn.softplus(w) - 0.5 * w + 0.5 * (w - lam)^2
    upper minimize w
}
bilevel huber {
    upper lam = 0.0
    lower w = 0.0
    lower minimize L.huber(w - lam, 1.0) + 0.5 * w^2
    upper minimize w
}
bilevel split_square {
    upper lam = 0.0
    lower w = 0.0
    lower minimize 0.5 * max(w - lam, 0)^2 + 0.5 * min(w - lam, 0)^2 + 0.5 * w^2
    upper minimize w
}
"""


@pytest.mark.parametrize(
    ("name", "exact"),
    [("softplus_std", 1 / 1.25), ("huber", 0.5), ("split_square", 0.5)],
)
def test_hypergradient_at_the_kink(name: str, exact: float) -> None:
    block = ritz.compile(PROGRAM)[name]
    assert block.hypergrad(lam=0.0)["lam"] == pytest.approx(exact, rel=1e-9)
    assert block.hypergrad(lam=1e-4)["lam"] == pytest.approx(exact, rel=1e-3)


def test_partial_takes_the_continuous_second_derivative() -> None:
    z = sympy.Symbol("z", real=True)
    softplus = sympy.Max(z, 0) + sympy.log(1 + sympy.exp(-sympy.Abs(z)))
    second = partial(partial(softplus, z), z)
    assert second.subs(z, 0) == sympy.Rational(1, 4)
    assert float(second.subs(z, 0.3)) == pytest.approx(np.exp(0.3) / (1 + np.exp(0.3)) ** 2)
    # off the kink nothing changes: |z|'' is 0, and |z|' is sign(z) (0 at 0, as in autograd)
    assert partial(partial(sympy.Abs(z), z), z) == 0
    assert partial(sympy.Abs(z), z).subs(z, 0) == 0
