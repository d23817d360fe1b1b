"""The command line: check, show, build and run's option parsing; errors are diagnostics with a
position and a caret, never a traceback, and a failed command leaves no partial output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import ritz
from ritz.dsl import RuntimeInputError
from ritz.runtime.cli import main, parse_sets, parse_value

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "examples" / "heat1d.dsl"
GOLDEN = ROOT / "tests" / "golden" / "expected"

BAD = """\
pde heat {
    space x in [0, 1]
    time t in [0, 1]
    field u
    param nu = 1
    dt(u) = nux * diff(u, x, 2)
    boundary u = 0 at all
    initial u = sin(pi * x)
}
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_diagnostic(result: Result, code: str, where: str | None = None) -> None:
    """Exit status 1, a rendered diagnostic on stderr, and no Python traceback anywhere."""
    assert result.exit_code == 1, result.output
    assert f"error[{code}]" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if where is not None:
        assert where in result.stderr, result.stderr


# -- check ----------------------------------------------------------------------------------------


def test_check_ok() -> None:
    result = invoke("check", HEAT)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{HEAT}: ok (heat1d)\n"


def test_check_reports_too_few_cells_for_the_order(tmp_path: Path) -> None:
    """R508 is decidable from the file: check reports it as the run would, at the cells."""
    program = tmp_path / "few.dsl"
    program.write_text(
        "pde p {\n    space x in [0, 1]\n    time t in [0, 0.01]\n    field u\n"
        "    dt(u) = diff(u, x, 2)\n    boundary u = 0 at all\n    initial u = sin(pi * x)\n"
        "    solve fd(cells = 3, order = 4, dt = 1e-3)\n}\n"
    )
    result = invoke("check", program)
    assert_diagnostic(result, "R508", f"{program}:8:14")
    assert "3 cells along x are too few for order 4" in result.stderr
    program.write_text(program.read_text().replace("cells = 3", "cells = 4"))
    assert invoke("check", program).exit_code == 0


def test_check_error_shows_position_line_and_caret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dsl"
    bad.write_text(BAD)
    result = invoke("check", bad)
    assert_diagnostic(result, "R201", f"{bad}:6:13: error[R201]: unknown name 'nux'")
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if "error[R201]" in line)
    assert lines[at + 1] == "        dt(u) = nux * diff(u, x, 2)"
    assert lines[at + 2] == "                ^^^"
    assert "did you mean 'nu'?" in result.stderr


def test_check_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.dsl"
    bad.write_text(BAD.replace("field u", "field u,"))
    result = invoke("check", bad)
    assert result.exit_code == 1
    assert f"{bad}:" in result.stderr and "error[R1" in result.stderr
    assert "^" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("program", "code", "line"),
    [
        (
            "network g(x: [2]) -> [3] {\n    h = tanh(dense(x, 4))\n    return dense(h, 2)\n}\n",
            "R341",
            1,
        ),
        (
            "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4)\n"
            "    data x: [N, 1], y: [N, 1]\n    loss (f(x) - y)^2\n}\n",
            "R348",
            5,
        ),
        (
            "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4, n_out = 3)\n"
            "    data x: [N, 1], y: [N, 2]\n    loss mean((f(x) - y)^2)\n}\n",
            "R344",
            5,
        ),
    ],
    ids=["network_output", "loss_not_a_number", "loss_shapes"],
)
def test_check_finds_shape_errors(tmp_path: Path, program: str, code: str, line: int) -> None:
    """Shapes the file fixes are checked without data and without compiling."""
    path = tmp_path / "shapes.dsl"
    path.write_text(program)
    assert_diagnostic(invoke("check", path), code, f"{path}:{line}:")


def test_check_says_which_shapes_wait_for_data(tmp_path: Path) -> None:
    path = tmp_path / "sized.dsl"
    path.write_text(
        "import std.nn as nn\ntrain t {\n    net f = nn.mlp(width = 4)\n"
        "    data x: [N, p], y: [N, 1]\n    loss mean((f(x) - y)^2)\n}\n"
    )
    result = invoke("check", path)
    assert result.exit_code == 0, result.output
    assert "shapes of t depend on data sizes" in result.stdout


def test_check_missing_file(tmp_path: Path) -> None:
    assert_diagnostic(invoke("check", tmp_path / "nope.dsl"), "R250", "nope.dsl")


# -- show -----------------------------------------------------------------------------------------


def test_show_ir_is_the_golden_ir() -> None:
    result = invoke("show", HEAT, "--ir")
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / "heat1d.ir.txt").read_text()


def test_show_ir_after_discretise() -> None:
    result = invoke("show", HEAT, "--ir", "--after", "discretise")
    assert result.exit_code == 0, result.output
    assert "Shift[axis=0" in result.stdout
    assert result.stdout != invoke("show", HEAT, "--ir").stdout
    # before integrate there are no Runge-Kutta stage buffers
    assert "u@q" not in result.stdout


def test_show_code_is_the_golden_source() -> None:
    result = invoke("show", HEAT, "--code")
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / "heat1d.numba.py").read_text()
    assert invoke("show", HEAT).stdout == result.stdout  # --code is the default


def test_show_plan() -> None:
    result = invoke("show", HEAT, "--plan")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip("\n") == (GOLDEN / "heat1d.plan.txt").read_text().rstrip("\n")


def test_show_with_set_changes_the_code() -> None:
    result = invoke("show", HEAT, "--code", "--set", "order=4", "--set", "scheme=euler")
    assert result.exit_code == 0, result.output
    assert "Scheme euler, order 4" in result.stdout


@pytest.mark.parametrize("stage", ["nosuchpass", "fuse"])
def test_show_unknown_pass(stage: str) -> None:
    result = invoke("show", HEAT, "--ir", "--after", stage)
    assert_diagnostic(result, "R523", f"no IR after '{stage}'")
    assert "discretise" in result.stderr  # the hint lists the passes


def test_show_adjoint_equations() -> None:
    """The derived adjoint, readable: the transposed stencil, the folds of the Dirichlet
    ghosts (weights -2 and 1/3 of the quadratic closure) and the parameter's term."""
    result = invoke("show", HEAT, "--adjoint")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].strip() == "mu_u[i] = nu*(w_u[i+1] + w_u[i-1] - 2*w_u[i])/h_x**2"
    assert "+ on the lo face of x, the cell next to it: -2*nu*w_u[i]/h_x**2" in result.stdout
    assert "+ on the hi face of x, cell 2 from it: nu*w_u[i]/(3*h_x**2)" in result.stdout
    assert "dL/dnu += sum over cells of w_u[i]*(u[i+1] + u[i-1] - 2*u[i])/h_x**2" in [
        line.strip() for line in lines
    ]


def test_show_adjoint_code_and_plan() -> None:
    code = invoke("show", HEAT, "--adjoint", "--code")
    assert code.exit_code == 0, code.output
    assert code.stdout == (GOLDEN / "heat1d.adjoint.numba.py").read_text()
    plan = invoke("show", HEAT, "--adjoint", "--plan")
    assert "entry adjoint_step:" in plan.stdout and "(fold axis 0 lo)" in plan.stdout
    ir = invoke("show", HEAT, "--adjoint", "--ir", "--after", "adjoint")
    assert ir.exit_code == 0 and "ShiftTranspose" in ir.stdout, ir.output


def test_show_adjoint_of_an_implicit_scheme() -> None:
    result = invoke("show", HEAT, "--adjoint", "--set", "scheme=cn")
    assert result.exit_code == 0, result.output
    assert "mu solves J^T mu = lambda" in result.stdout
    assert "lambda_u[i] = dt*mu_u[i+1]*nu/(2*h_x**2)" in result.stdout


BOUNDARY_PARAMS = """
pde h {
    space x in [0, 1]
    time t in [0, 0.02]
    field u
    param nu = 0.5, g = 0.3
    dt(u) = nu * diff(u, x, 2)
    boundary u = g * (1 + 5 * t) at x = 0
    boundary diff(u, x) = 0 at x = 1
    initial u = sin(pi * x)
    solve fd(cells = 16, scheme = rk2, dt = 1e-3)
}
"""


@pytest.mark.parametrize(("scheme", "sign"), [("rk2", "+"), ("cn", "-")])
def test_show_adjoint_of_a_boundary_parameter(scheme: str, sign: str, tmp_path: Path) -> None:
    """A Dirichlet parameter's term: the ghost's derivative 8/3 (1 + 5t) times the cotangent
    of the ghost's reader, nu w/h^2 (and, for cn, the residual's part, subtracted)."""
    path = tmp_path / "bp.dsl"
    path.write_text(BOUNDARY_PARAMS.replace("rk2", scheme))
    result = invoke("show", path, "--adjoint")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    where = "on the lo face of x, summed along it:"
    expected = "8*nu*w_u[i]*(5*t + 1)/(3*h_x**2)" if scheme == "rk2" else ""
    found = [line for line in lines if line.startswith(f"dL/dg {sign}= {where}")]
    assert found and (not expected or found[0].endswith(expected)), result.stdout
    assert not any(line.endswith("sum over cells of 0") for line in lines)


def test_show_unknown_problem() -> None:
    assert_diagnostic(invoke("show", HEAT, "--problem", "heat2d"), "R501", "heat1d")


# -- --set ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-5", -5),
        ("+3", 3),
        ("2e-5", 2e-5),
        (".5", 0.5),
        ("1.", 1.0),
        (" 7 ", 7),
        ("[128, 64]", [128, 64]),
        ("128,64", [128, 64]),
        ("[128]", [128]),
        ("[0.5, 1e-3]", [0.5, 1e-3]),
        ("rk4", "rk4"),
        ("float32", "float32"),
    ],
)
def test_parse_value(text: str, value: object) -> None:
    parsed = parse_value(text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize("text", ["1+2", "__import__('os')", "a b", "", "[1, x y]", "1e", "--"])
def test_parse_value_rejects(text: str) -> None:
    with pytest.raises(RuntimeInputError) as err:
        parse_value(text)
    assert err.value.code == "R520"


def test_parse_sets() -> None:
    assert parse_sets(("nu=0.1", " cells = [8, 4]", "scheme=rk2")) == {
        "nu": 0.1,
        "cells": [8, 4],
        "scheme": "rk2",
    }
    for bad in ("nu", "=3", "1x=2", "a.b=1"):
        with pytest.raises(RuntimeInputError) as err:
            parse_sets((bad,))
        assert err.value.code == "R521"
    with pytest.raises(RuntimeInputError) as err:  # the last silently won
        parse_sets(("nu=1", "nu = 2"))
    assert err.value.code == "R521" and "twice" in err.value.message


def test_run_bad_set_is_a_diagnostic(tmp_path: Path) -> None:
    assert_diagnostic(invoke("run", HEAT, "--no-progress", "--set", "nu=1+2"), "R520", "1+2")
    assert_diagnostic(invoke("run", HEAT, "--no-progress", "--set", "nu"), "R521")
    result = invoke("run", HEAT, "--no-progress", "--set", "nux=0.1")
    assert_diagnostic(result, "R503", "did you mean 'nu'?")


def test_run_single_item_list() -> None:
    result = invoke("run", HEAT, "--no-progress", "--set", "cells=[16]", "--set", "dt=1e-3")
    assert result.exit_code == 0, result.output
    assert "on 16 cells" in result.stdout


# -- failures leave nothing behind ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sets",
    [
        ["dt=-1"],
        ["cells=1"],
        ["scheme=leapfrog"],
        # fails mid-run: the solution overflows (R540) after the time loop has started
        ["nu=1e30", "cells=16", "dt=1e-3"],
    ],
    ids=["dt", "cells", "scheme", "blow_up"],
)
def test_failed_run_writes_no_output(tmp_path: Path, sets: list[str]) -> None:
    out, png = tmp_path / "sol.npz", tmp_path / "sol.png"
    args = ["run", HEAT, "--no-progress", "--out", out, "--plot", png]
    for item in sets:
        args += ["--set", item]
    result = invoke(*args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_failed_build_writes_no_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dsl"
    bad.write_text(BAD)
    assert_diagnostic(invoke("build", bad, "-o", tmp_path / "out"), "R201")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.dsl"]


def test_build_with_nothing_to_build(tmp_path: Path) -> None:
    net = tmp_path / "net.dsl"
    net.write_text("network f(x: [n]) -> [1] {\n    return dense(x, 1)\n}\n")  # n unknown
    assert_diagnostic(invoke("build", net, "-o", tmp_path / "out"), "R523", "--set n=2")
    assert not (tmp_path / "out").exists()


# -- build ----------------------------------------------------------------------------------------

# Runs the built module in an isolated interpreter in which `import ritz` fails.
_STANDALONE = """
import json, sys
sys.modules["ritz"] = None  # any import of ritz now raises ImportError
sys.path.insert(0, sys.argv[1])
import numpy as np
args = json.loads(sys.argv[3])
mod = __import__(args["module"])
out = mod.solve(args["params"], args["bounds"], args["cells"], args["t0"], args["t1"], args["dt"])
assert not [m for m in sys.modules if m.startswith("ritz") and sys.modules[m] is not None]
np.savez(sys.argv[2], **out)
"""

BUILD_CASES = {
    "heat1d": {"cells": 32, "dt": 1e-3},
    "gray_scott": {"cells": 16, "dt": 5.0},  # two fields, 2-D, periodic
}


@pytest.mark.parametrize("name", list(BUILD_CASES))
def test_build_runs_without_ritz(tmp_path: Path, name: str) -> None:
    example = ROOT / "examples" / f"{name}.dsl"
    outdir = tmp_path / "built"
    result = invoke("build", example, "-o", outdir)
    assert result.exit_code == 0, result.output
    assert (outdir / f"{name}.py").is_file()
    assert f"wrote {outdir / f'{name}.py'}" in result.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ritz_build_")]

    handle = ritz.load(str(example))[name]
    fast = BUILD_CASES[name]
    sol = handle.solve(**fast)
    problem = handle.problem
    args = {
        "module": name,
        "params": {p.name: p.default for p in problem.params},
        "bounds": [[a.lo, a.hi] for a in problem.axes],
        "cells": [fast["cells"]] * len(problem.axes),
        "t0": problem.time.t0,
        "t1": problem.time.t1,
        "dt": fast["dt"],
    }
    result_file = tmp_path / "standalone.npz"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _STANDALONE, str(outdir), str(result_file), json.dumps(args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(result_file) as standalone:
        assert set(standalone.files) == set(sol.fields)
        for field in sol.fields:
            # the same kernels and the same step count: equal up to rounding (1e-12)
            np.testing.assert_allclose(standalone[field], sol[field][-1], rtol=0, atol=1e-12)


# -- python -m ritz -------------------------------------------------------------------------------


def test_python_m_ritz_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ritz", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("check", "run", "show", "build"):
        assert command in proc.stdout


def test_python_m_ritz_error_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dsl"
    bad.write_text(BAD)
    proc = subprocess.run(
        [sys.executable, "-m", "ritz", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert f"{bad}:6:13:" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--ir", "--code"], "--ir and --code exclude each other"),
        (["--plan", "--code"], "--code and --plan exclude each other"),
        (["--after", "discretise"], "give it with --ir"),
    ],
)
def test_show_refuses_flags_that_conflict(flags: list[str], words: str) -> None:
    """The last of --ir/--code/--plan used to win silently, and --after alone was ignored.
    A usage diagnostic (R529), not an internal error with a 'bug' hint."""
    result = invoke("show", HEAT, *flags)
    assert_diagnostic(result, "R529", words)
    assert "R900" not in result.stderr and "bug" not in result.stderr


PINN_ONLY = """\
import std.nn as nn
pde rod {
    space x in [0, 1]
    field u
    -diff(u, x, 2) = 1
    boundary u = 0 at all
    solve pinn(net = nn.mlp(width = 4, depth = 1), points = 10, steps = 1)
}
"""


def test_pinn_on_cupy_and_its_adjoint_are_refused(tmp_path: Path) -> None:
    """build --backend cupy dropped pinn solves silently (and then said the file had no pde
    block); show printed the numba module for --backend cupy and for --adjoint."""
    path = tmp_path / "rod.dsl"
    path.write_text(PINN_ONLY)
    result = invoke("build", path, "-o", tmp_path / "out", "--backend", "cupy")
    assert result.exit_code == 1 and "R415" in result.output and "pinn solve" in result.output
    assert not (tmp_path / "out").exists()
    for flags in (["--backend", "cupy"], ["--adjoint"]):
        result = invoke("show", path, *flags)
        assert result.exit_code == 1 and "R415" in result.output, result.output


def test_build_takes_a_parameter_of_one_of_its_pde_blocks(tmp_path: Path) -> None:
    """build has no --problem: --set nu=... for the second pde was R503 at the first."""
    second = HEAT.read_text().replace("pde heat1d", "pde other").replace("nu", "kappa")
    path = tmp_path / "two.dsl"
    path.write_text(HEAT.read_text() + second)
    result = invoke("build", path, "-o", tmp_path / "out", "--set", "kappa=0.3")
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"heat1d.py", "other.py"}
    result = invoke("build", path, "-o", tmp_path / "out2", "--set", "kapa=0.3")
    assert result.exit_code == 1 and "R503" in result.output
