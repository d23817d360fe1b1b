"""Grids too small for the stencils and boundary closures are refused before any kernel runs
(a kernel would otherwise read outside its arrays)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ritz

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("example", "options", "needed"),
    [
        ("heat1d.dsl", {"cells": 3, "order": 4}, 4),  # degree-4 ghost extrapolation
        ("heat1d.dsl", {"cells": 2, "order": 2}, None),  # degree 2: two cells are enough
        ("poisson.dsl", {"cells": [3, 8], "order": 4}, 4),
    ],
)
def test_too_few_cells_is_r508(example: str, options: dict, needed: int | None) -> None:
    mod = ritz.load(str(ROOT / "examples" / example))
    problem = mod[mod.names[0]]
    if needed is None:
        problem.prepare(**options)
        return
    with pytest.raises(ritz.RitzError) as err:
        problem.prepare(**options)
    assert err.value.code == "R508"
    assert f"cells >= {needed}" in (err.value.hint or "")
