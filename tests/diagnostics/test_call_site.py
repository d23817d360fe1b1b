"""An error that arises inside a network of another file (the standard library's mlp) is
reported at the user's line that applied it, with a note pointing inside: the user cannot
change nn.dsl, and a caret there said nothing about which of their lines was wrong."""

from __future__ import annotations

import pytest

import ritz
from ritz.dsl import RitzError

SHAPES = """\
import std.nn as nn
train fit {
    net f = nn.mlp(width = 4)
    data x: [N, 2], y: [N, 1], z: [N, 3]
    loss mean((f(x) - y)^2) + mean(f(z)^2)
}
"""


def test_weight_shape_clash_inside_std_nn_is_reported_at_the_loss() -> None:
    with pytest.raises(RitzError) as err:
        ritz.compile(SHAPES, name="fit.dsl").fit.init(seed=0)
    diag = err.value.first
    assert diag.code == "R340" and err.value.file == "fit.dsl" and err.value.line == 5
    (note,) = diag.notes
    assert note[0] == "inside network 'mlp', here"
    assert note[1] is not None and note[1].file.endswith("nn.dsl")
    assert "error[R340]" in err.value.render() and "note: inside network 'mlp'" in str(err.value)


MISSIZED = """\
network mlp2(x: [2]) -> [1] {
    h = tanh(dense(x, 4))
    return dense(h, 1)
}
train fit {
    net f = mlp2()
    data x: [N, 3], y: [N, 1]
    loss mean((f(x) - y)^2)
}
"""


def test_input_size_mismatch_is_reported_at_the_application() -> None:
    """R342 pointed at the network's declaration, which is right; the call is wrong."""
    with pytest.raises(RitzError) as err:
        ritz.compile(MISSIZED, name="fit.dsl").fit.init(seed=0)
    diag = err.value.first
    assert diag.code == "R342" and err.value.line == 8
    (note,) = diag.notes
    assert note[0] == "'x' is declared here" and note[1] is not None and note[1].line == 1
