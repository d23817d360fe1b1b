"""Long flat expressions check; numbers, options and nesting beyond their limits are refused
with a position (the table in tests/diagnostics/cases.py has the located cases)."""

import pytest

from ritz.dsl import RuntimeInputError, load_text
from ritz.dsl.check.common import METHOD_OPTIONS, check_given


def _pde(rhs: str) -> str:
    return (
        "pde p {\n    space x in [0, 1]\n    time t in [0, 1]\n    field u\n"
        f"    dt(u) = {rhs}\n    boundary u = 0 at all\n    initial u = 0\n}}\n"
    )


@pytest.mark.parametrize(
    "rhs",
    [
        " + ".join(["1"] * 2000),  # a sum is one flat Add however long it is
        " * ".join(["u"] * 500),  # u^500
        " - ".join(["u"] * 500),
        "-" * 500 + "u",
        "^".join(["1"] * 500),
        " + ".join(f"{k} * u^2" for k in range(500)),
    ],
)
def test_long_flat_expressions_check(rhs: str) -> None:
    load_text(_pde(rhs))


def test_cells_given_at_run_time_are_bounded() -> None:
    rules = METHOD_OPTIONS["fd"]
    assert check_given(rules, "cells", 4096, "solve fd") == 4096
    for bad in (10**20, [2**20, 2**20]):
        with pytest.raises(RuntimeInputError) as err:
            check_given(rules, "cells", bad, "solve fd")
        assert err.value.code == "R538"


def test_constant_arithmetic_stays_exact_within_range() -> None:
    env = load_text("const a = 2^1000 / 2^999\nconst b = 10^308\nconst c = 0.5^1000\n").env
    assert (int(env.consts["a"]), int(env.consts["b"])) == (2, 10**308)
    assert 0 < float(env.consts["c"]) < 1e-300
