"""The float32 tanh that network modules call instead of libm's: its error bound, its limits,
and that float32 modules use it while float64 ones keep math.tanh."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np

import ritz
from ritz.compiler.backends.numba_network import TANH32


def _tanh32(tmp_path):
    path = tmp_path / "fast_tanh_module.py"
    path.write_text(
        "import numba\nimport numpy as np\n" + TANH32.replace("cache=True", "cache=False")
    )
    spec = importlib.util.spec_from_file_location("fast_tanh_module", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["fast_tanh_module"] = module
    spec.loader.exec_module(module)
    import numba

    return numba.vectorize(["float32(float32)"])(module.tanh32.py_func)


def test_relative_error_below_4e_7_everywhere(tmp_path) -> None:
    tanh32 = _tanh32(tmp_path)
    x = np.linspace(-12, 12, 2_000_001, dtype=np.float32)
    tiny = np.float32(10.0) ** np.linspace(-30, 1.2, 100_000, dtype=np.float32)
    x = np.concatenate([x, tiny, -tiny])
    got = tanh32(x).astype(np.float64)
    want = np.tanh(x.astype(np.float64))
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-38)
    assert rel.max() < 4e-7  # observed 3.4e-7 (float32 eps is 1.2e-7)
    assert np.array_equal(tanh32(-x), -tanh32(x))
    with np.errstate(invalid="ignore"):
        special = tanh32(np.array([np.inf, -np.inf, np.nan, 0.0], dtype=np.float32))
    assert special[0] == 1.0 and special[1] == -1.0 and np.isnan(special[2]) and special[3] == 0


def test_float32_networks_call_it_and_float64_ones_do_not() -> None:
    src = "network n(x: [2]) -> [1] {\n    h = tanh(dense(x, 8))\n    return dense(h, 1)\n}\n"
    net = ritz.compile(src).n
    for dtype, fast in (("float32", True), ("float64", False)):
        art, _ = net.compile({"x": (2,)}, dtype=dtype)
        body = art.source.split("def forward_body")[1]
        assert ("tanh32(" in body) is fast and ("math.tanh(" in body) is not fast
