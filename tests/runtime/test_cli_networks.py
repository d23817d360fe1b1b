"""The command line with train and network blocks: run with --data, show, and build a module
that trains without ritz installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

import ritz
from ritz.runtime.cli import main

FIT = """\
import std.nn as nn
train fit_sine {
    net f = nn.mlp(width = 16, depth = 1)
    data x: [N, 1], y: [N, 1]
    loss mean((f(x) - y)^2)
    optimizer adam(lr = 1e-2)
    steps 300, batch 64
}
"""


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    program = tmp_path / "fit.dsl"
    program.write_text(FIT)
    x = np.linspace(-2, 2, 256)[:, None]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.sin(x))
    return program, tmp_path / "x.npy", tmp_path / "y.npy"


def test_run_trains_and_writes_weights_and_plot(tmp_path: Path) -> None:
    program, x, y = _files(tmp_path)
    out, png = tmp_path / "w.npz", tmp_path / "loss.png"
    result = invoke(
        "run",
        program,
        "--data",
        f"x={x}",
        "--data",
        f"y={y}",
        "--out",
        out,
        "--plot",
        png,
        "--no-progress",
        "--set",
        "steps=200",
    )
    assert result.exit_code == 0, result.output
    assert "fit_sine: 200 steps of adam, batch 64, loss" in result.stdout
    with np.load(out) as weights:
        assert weights["f.h.W"].shape == (1, 16) and weights["f.out.W"].shape == (16, 1)
        trained = {k: weights[k] for k in weights.files}
    fit = ritz.load(str(program)).fit_sine
    xs = np.load(x)
    assert fit.loss(trained, x=xs, y=np.sin(xs)) < 0.05  # observed 0.01 (was 0.2 at the start)
    assert png.stat().st_size > 1000


def test_run_data_errors(tmp_path: Path) -> None:
    program, x, _ = _files(tmp_path)
    for args, code in [
        (["--data", f"x={x}"], "R535"),
        (["--data", f"x={x}", "--data", f"y={tmp_path / 'missing.npy'}"], "R526"),
        (["--data", "x"], "R521"),
        (["--data", f"x={x}", "--data", f"x={x}"], "R521"),  # the last silently won
    ]:
        result = invoke("run", program, "--no-progress", "--out", tmp_path / "w.npz", *args)
        assert result.exit_code == 1 and f"error[{code}]" in result.stderr, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "w.npz").exists()


def test_show_code_ir_and_plan(tmp_path: Path) -> None:
    program, _, _ = _files(tmp_path)
    code = invoke("show", program)
    assert code.exit_code == 0 and "def loss_and_grad_body(" in code.stdout
    assert "# nn.dsl:" in code.stdout and "# fit.dsl:5: mean((f(x) - y)^2)" in code.stdout
    ir = invoke("show", program, "--ir")
    assert "# loss_and_grad" in ir.stdout and "Contract[spec=zj,ij->zi]" in ir.stdout
    plan = invoke("show", program, "--plan")
    assert "w[0:16] f.h.W [1, 16]" in plan.stdout


_STANDALONE = """
import sys
sys.modules["ritz"] = None
sys.path.insert(0, sys.argv[1])
import numpy as np
import fit_sine as mod
x = np.linspace(-2, 2, 64, dtype=np.float32)[:, None]
y = np.sin(x)
w = np.load(sys.argv[2])
g = np.zeros_like(w)
loss = mod.loss_and_grad(w, g, x, y)
print(repr(float(loss)), repr(float(np.abs(g).sum())))
"""


def test_build_train_block_runs_without_ritz(tmp_path: Path) -> None:
    program, _, _ = _files(tmp_path)
    outdir = tmp_path / "built"
    result = invoke("build", program, "-o", outdir)
    assert result.exit_code == 0, result.output
    fit = ritz.load(str(program)).fit_sine
    params = fit.init(seed=0)
    art = fit.compile()[0]
    w = np.concatenate([params[k].ravel() for k in art.layout.offsets])
    np.save(tmp_path / "w.npy", w)
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _STANDALONE, str(outdir), str(tmp_path / "w.npy")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.returncode == 0, proc.stderr
    loss, gsum = (float(v) for v in proc.stdout.split())
    x = np.linspace(-2, 2, 64, dtype=np.float32)[:, None]
    want, grads = fit.loss_and_grad(params, x=x, y=np.sin(x))
    assert loss == want
    assert (
        gsum == np.float32(sum(np.abs(g).sum() for g in grads.values()))
        or abs(gsum - sum(np.abs(g).sum() for g in grads.values())) < 1e-5 * gsum
    )


BILEVEL = Path(__file__).resolve().parents[2] / "examples" / "bilevel.dsl"


def test_run_and_show_bilevel(tmp_path: Path) -> None:
    result = invoke("run", BILEVEL, "-p", "oligopoly", "--set", "c=20", "--out", tmp_path / "o.npz")
    assert result.exit_code == 0, result.output
    assert "upper q0 = 40" in result.stdout and "lower q1 = 13.33333" in result.stdout
    with np.load(tmp_path / "o.npz") as saved:
        assert abs(float(saved["upper_q0"]) - 40.0) < 1e-9
    plan = invoke(
        "show", BILEVEL, "-p", "ridge", "--plan", "--set", "n=5", "--set", "m=3", "--set", "p=2"
    )
    assert plan.exit_code == 0 and "3 variables" in plan.stdout and "w[2:3] lam []" in plan.stdout
    # as build does: data sizes may stay symbolic, the variables' size p is needed
    missing = invoke("show", BILEVEL, "-p", "ridge")
    assert (
        missing.exit_code == 1
        and "error[R523]" in missing.stderr
        and "--set p=10" in missing.stderr
    )
    sized = invoke("show", BILEVEL, "-p", "ridge", "--plan", "--set", "p=2")
    assert sized.exit_code == 0 and "3 variables" in sized.stdout
    data = invoke("run", BILEVEL, "-p", "ridge")
    assert data.exit_code == 1 and "error[R535]" in data.stderr and "--data X=" in data.stderr


# identical to tests/numerics/test_pinn.py's HEAT (and written to a file of the same name), so
# that the two tests share one compiled module through the kernel cache
PINN = """\
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


def test_run_pinn_method(tmp_path: Path) -> None:
    program = tmp_path / "heat.dsl"
    program.write_text(PINN)
    out = tmp_path / "sol.npz"
    result = invoke(
        "run",
        program,
        "--method",
        "pinn",
        "--no-progress",
        "--out",
        out,
        "--set",
        "cells=16",
        "--set",
        "steps=20",
        "--set",
        "points=64",
    )
    assert result.exit_code == 0, result.output
    assert "heat: pinn, 20 training steps, loss" in result.stdout
    with np.load(out) as saved:
        assert saved["field_u"].shape == (2, 16)


def test_show_and_build_a_pinn_line(tmp_path: Path) -> None:
    """show picks the solve line by --set method=...; build writes every line's module (the fd
    kernels, and the pinn network's training module, which imports without ritz)."""
    program = tmp_path / "heat.dsl"
    program.write_text(PINN)
    shown = invoke("show", program, "--set", "method=pinn")
    assert shown.exit_code == 0, shown.output
    assert "train block 'heat_pinn'" in shown.stdout and "def loss_and_grad" in shown.stdout
    plan = invoke("show", program, "--plan", "--set", "method=pinn")
    assert "net.h.W [2, 16]" in plan.stdout
    outdir = tmp_path / "built"
    built = invoke("build", program, "-o", outdir)
    assert built.exit_code == 0, built.output
    assert (outdir / "heat.py").is_file() and (outdir / "heat_pinn.py").is_file()
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['ritz'] = None; sys.path.insert(0, "
            f"{str(outdir)!r}); import heat_pinn; print(heat_pinn.loss_and_grad)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_build_and_show_a_train_block_with_a_data_size_from_set(tmp_path: Path) -> None:
    """A size of the data beyond the rows fixes the weights: --set gives it, else R523."""
    program = tmp_path / "fit.dsl"
    program.write_text(FIT.replace("data x: [N, 1]", "data x: [N, d]"))
    result = invoke("build", program, "-o", tmp_path / "none")
    assert result.exit_code == 1 and "error[R523]" in result.stderr
    assert "--set d=2" in result.stderr and not (tmp_path / "none").exists()
    assert "Traceback" not in result.output
    result = invoke("build", program, "-o", tmp_path / "out", "--set", "d=3")
    assert result.exit_code == 0, result.output
    assert "w[0:48] f.h.W [3, 16]" in invoke("show", program, "--plan", "--set", "d=3").output
    zero = invoke("build", program, "-o", tmp_path / "zero", "--set", "d=0")
    assert zero.exit_code == 1 and "error[R538]" in zero.stderr


def test_build_gives_each_network_its_own_sizes(tmp_path: Path) -> None:
    program = tmp_path / "nets.dsl"
    program.write_text(
        "network ae(x: [n], k = 4) -> [n] {\n    return dense(tanh(dense(x, k)), n)\n}\n"
        "network lin(z: [m]) -> [1] {\n    return dense(z, 1)\n}\n"
    )
    both = invoke("build", program, "-o", tmp_path / "a", "--set", "n=3", "--set", "m=2")
    assert both.exit_code == 0, both.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["ae.py", "lin.py"]
    one = invoke("build", program, "-o", tmp_path / "b", "--set", "n=3")
    assert one.exit_code == 0, one.output
    assert "skipped: network 'lin' needs its input size m" in one.stderr
    typo = invoke("build", program, "-o", tmp_path / "c", "--set", "nn=3")
    assert typo.exit_code == 1 and "error[R503]" in typo.stderr
    assert "did you mean 'n'?" in typo.stderr
    for bad in ("n=0", "n=2.5", "n=abc"):
        result = invoke("build", program, "-o", tmp_path / "d", "--set", bad)
        assert result.exit_code == 1 and "error[R538]" in result.stderr, result.output
    assert not (tmp_path / "d").exists()


def test_run_with_data_takes_the_first_train_block(tmp_path: Path) -> None:
    program, x, y = _files(tmp_path)
    heat = (Path(__file__).resolve().parents[2] / "examples" / "heat1d.dsl").read_text()
    program.write_text(heat + FIT)  # the pde block comes first
    result = invoke(
        "run", program, "--data", f"x={x}", "--data", f"y={y}", "--set", "steps=5", "--no-progress"
    )
    assert result.exit_code == 0, result.output
    assert "fit_sine" in result.output


def test_run_time_optimizer_option_is_not_located_in_the_file(tmp_path: Path) -> None:
    program, x, y = _files(tmp_path)
    result = invoke("run", program, "--data", f"x={x}", "--data", f"y={y}", "--set", "momentum=1")
    assert result.exit_code == 1 and "error[R537]" in result.stderr
    assert "(given at run time)" in result.stderr and "fit.dsl:" not in result.stderr


def test_network_input_sizes_must_be_positive_whole_numbers(tmp_path: Path) -> None:
    program = tmp_path / "ae.dsl"
    program.write_text(
        "network ae(x: [n], k = 4) -> [n] {\n    h = tanh(dense(x, k))\n    return dense(h, n)\n}\n"
    )
    mod = ritz.load(program)
    assert mod.ae.init(seed=0, n=3.0)["h.W"].shape == (3, 4)
    for bad in (0, 2.5, "abc", True, float("nan")):
        try:
            mod.ae.init(seed=0, n=bad)
        except ritz.RitzError as err:
            assert err.code == "R538", err
        else:
            raise AssertionError(f"n={bad!r} was accepted")
    try:
        mod.ae.init(seed=0, n=2, k=0)
    except ritz.RitzError as err:
        assert err.code == "R343" and "positive whole number" in err.message
    else:
        raise AssertionError("a layer of width 0 was accepted")


def test_build_gives_a_train_blocks_size_past_a_pde_block(tmp_path: Path) -> None:
    heat = (Path(__file__).resolve().parents[2] / "examples" / "heat1d.dsl").read_text()
    program = tmp_path / "mixed.dsl"
    program.write_text(heat + FIT.replace("data x: [N, 1]", "data x: [N, d]"))
    result = invoke("build", program, "-o", tmp_path / "out", "--set", "d=3")
    assert result.exit_code == 0, result.output
    assert {"heat1d.py", "fit_sine.py"} <= {p.name for p in (tmp_path / "out").iterdir()}


def test_sizes_whose_weights_would_not_fit_are_refused(tmp_path: Path) -> None:
    program = tmp_path / "ae.dsl"
    program.write_text("network ae(x: [n]) -> [1] {\n    return dense(x, 1)\n}\n")
    mod = ritz.load(program)
    for huge in (10**12, 1e20):
        try:
            mod.ae.init(seed=0, n=huge)
        except ritz.RitzError as err:
            assert err.code == "R538" and "GiB" in err.message
        else:
            raise AssertionError(f"n={huge} was accepted")


def test_weight_decay_true_is_no_number(tmp_path: Path) -> None:
    program, x, y = _files(tmp_path)
    fit = ritz.load(program).fit_sine
    try:
        fit.train(x=np.load(x), y=np.load(y), steps=1, weight_decay=True)
    except ritz.RitzError as err:
        assert err.code == "R537"
    else:
        raise AssertionError("weight_decay=True was accepted")


LOG_DOMAIN = """\
import std.nn as nn
train v {
    net f = nn.mlp(width = 4, depth = 1)
    data x: [N, 2], y: [N, 1]
    loss mean(log(f(x) - y))
}
"""


def test_a_loss_not_finite_at_the_start_gets_the_domain_hint_from_every_optimizer(
    tmp_path: Path,
) -> None:
    """log of a negative value at the initial weights: adam and sgd hinted only at the data's
    scale and float64 (lbfgs at the domain); all three give one hint, naming both. The error
    starts a line of its own, not the progress bar's (it followed the bar's \\r)."""
    program = tmp_path / "v.dsl"
    program.write_text(LOG_DOMAIN)
    np.save(tmp_path / "x.npy", np.ones((10, 2)))
    np.save(tmp_path / "y.npy", np.ones((10, 1)))
    data = ["--data", f"x={tmp_path / 'x.npy'}", "--data", f"y={tmp_path / 'y.npy'}"]
    hints = set()
    for optimizer in ("adam", "sgd", "lbfgs"):
        result = invoke("run", program, *data, "--set", f"optimizer={optimizer}")
        assert result.exit_code == 1, result.output
        err = result.stderr
        assert "\nerror[R540]: the loss is not finite at the initial weights\n" in "\n" + err, err
        hints.add(err.split("hint: ")[1])
    assert hints == {
        "check the loss's domain (a log or sqrt of a negative value, a division by zero) and "
        "the scale of the data (float32 overflows past 3.4e+38, a square past its root), or "
        "train in float64 (dtype float64)\n"
    }
