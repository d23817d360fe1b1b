"""The command line: ``ritz check|run|show|build``. The only place that prints diagnostics and
exits; every RitzError becomes ``FILE:LINE:COL: message``, the source line and a caret."""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..dsl.diagnostics import RitzError, RuntimeInputError, escaped
from .cache import output_file, writable_dir

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_value(text: str) -> Any:
    """A --set value: a number, a list of numbers (``[128, 64]`` or ``128,64``) or a name.
    Parsed by hand, never evaluated."""
    text = text.strip()
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "," in inner or inner != text:
        return [parse_value(part) for part in inner.split(",")]
    if _NUMBER.match(text):
        return int(text) if re.match(r"^[+-]?\d+$", text) else float(text)
    if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):  # refused as Python's would be
        return float(text)
    if _NAME.match(text):
        return text
    raise RuntimeInputError(
        f"cannot read the value '{text}'",
        hint="use a number, a list such as [128, 64], or a name such as rk4",
        code="R520",
    )


def parse_sets(items: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _NAME.match(key.strip()):
            raise RuntimeInputError(
                f"--set expects NAME=VALUE, got '{item}'",
                hint="for example --set nu=0.1",
                code="R521",
            )
        if key.strip() in out:  # the last would win, silently
            raise RuntimeInputError(
                f"--set gives '{key.strip()}' twice",
                hint="give each name once",
                code="R521",
            )
        out[key.strip()] = parse_value(value)
    return out


def reports_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn RitzError into a rendered diagnostic on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RitzError as err:
            click.echo(err.render(), err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except click.ClickException:  # a usage error: click prints it, never an internal error
            raise
        except Exception as exc:  # a bug of ours: one clear line, the traceback only on request
            if os.environ.get("RITZ_DEBUG"):
                raise
            click.echo(
                f"error[R900]: internal error: {type(exc).__name__}: {escaped(str(exc))}\n"
                "  hint: this is a bug in ritz; please report it with the program "
                "(set RITZ_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(2)

    return wrapper


def _pick(
    mod: Any, problem: str | None, train: bool = False, data: bool = False, verb: str = "run"
) -> Any:
    """The block named ``problem``, else the first pde block (with ``train``, the first pde,
    train or bilevel block; with ``data`` too, as ``run --data`` asks, the first train or
    bilevel block before pde blocks). ``verb``: the command, for the message when none is."""
    if problem is not None:
        return mod[problem]
    from ..runtime.api import PdeHandle
    from ..runtime.bilevel import BilevelHandle
    from ..runtime.networks import NetworkHandle, TrainHandle

    kinds = (PdeHandle, TrainHandle, BilevelHandle) if train else (PdeHandle,)
    runnable = [n for n in mod.names if isinstance(mod[n], kinds)]
    takes_data = [n for n in runnable if isinstance(mod[n], TrainHandle | BilevelHandle)]
    if data and takes_data:
        return mod[takes_data[0]]
    if not runnable:
        what = "pde, train or bilevel block" if train else "pde block"
        nets = [n for n in mod.names if isinstance(mod[n], NetworkHandle)]
        hint = "networks run inside train blocks, or from Python"
        if verb == "show":
            hint = f"show a network by name: -p {nets[0]}" if nets else f"add a {what}"
        raise RuntimeInputError(
            f"the program has no {what} to {verb}",
            hint=hint,
            code="R522",
        )
    return mod[runnable[0]]


def _load(file: str, backend: str) -> Any:
    from ..runtime.api import load

    return load(file, backend=backend)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ritz")
def main() -> None:
    """ritz: compile and run numerical problems written in the ritz language."""


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@reports_errors
def check(file: str) -> None:
    """Parse and check FILE; report every error found (shapes too, where the file fixes them)."""
    from .api import load
    from .shape_check import check_shapes

    module = load(Path(file))
    _check_grids(module)
    later = check_shapes(module)
    names = ", ".join(module.names) or "no blocks"
    click.echo(f"{file}: ok ({names})")
    if later:
        click.echo(f"  shapes of {', '.join(later)} depend on data sizes: checked when run")


# Beyond this many cells along each axis no stencil or boundary closure runs short (a ghost
# extrapolation reads at most order + 8 - 2 = 10 cells: order 4, derivative order 8; stencil
# halos are narrower), so `check` compiles only fd lines with fewer cells to learn their minimum.
_FEW_CELLS = 16


def _check_grids(module: Any) -> None:
    """R508, as the run reports it (runtime/api.py), for an fd line whose cells are too few for
    the stencils and boundary closures of its order: decidable from the file, so `check` says
    so instead of `ok`. Only small grids are compiled (no kernels are built)."""
    from ..compiler.driver import compile_pde
    from ..dsl.diagnostics import DiagnosticSink
    from .api import PdeHandle, too_few_cells

    sink = DiagnosticSink()
    for name in module.names:
        handle = module[name]
        lines = handle.problem.solves if isinstance(handle, PdeHandle) else ()
        for line in (s for s in lines if s.method == "fd"):
            cells = line.options.get("cells")
            if cells is None:
                continue
            each = cells if isinstance(cells, list) else [cells] * len(handle.problem.axes)
            sizes = [int(n) for n in each]
            if min(sizes) >= _FEW_CELLS:
                continue
            fd = handle.resolve({"method": "fd"})[2]
            need = compile_pde(handle.problem, fd).group.meta.get("min_cells", ())
            short = too_few_cells(handle.problem, sizes, need, fd.order)
            if short is not None:
                message, hint = short
                sink.error("R508", message, line.option_spans.get("cells", line.span), hint)
    sink.raise_if_any()


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--problem", "-p", help="Block to run (default: the first pde block).")
@click.option("--method", "-m", help="Solve line to use, by method name.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a parameter or solve option (repeatable).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the solution to an .npz file.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a PNG of the solution.")
@click.option("--backend", type=click.Choice(["numba", "cupy"]), default="numba")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="NAME=FILE",
    help="A data array of a train block, from a .npy file (repeatable).",
)
@reports_errors
def run(
    file: str,
    problem: str | None,
    method: str | None,
    sets: tuple[str, ...],
    out: str | None,
    plot: str | None,
    backend: str,
    progress: bool,
    data: tuple[str, ...],
) -> None:
    """Solve a problem (train a train block, optimise a bilevel block) of FILE and report,
    save or plot the result."""
    from .bilevel import BilevelHandle
    from .cli_nets import read_data, refuse_network, run_bilevel, run_train
    from .networks import NetworkHandle, TrainHandle

    inputs = [file, *(item.partition("=")[2].strip() for item in data)]
    if out:
        output_file(out, "--out", ".npz", inputs)
    if plot:
        output_file(plot, "--plot", ".png", inputs)
    overrides = parse_sets(sets)
    if method:
        overrides["method"] = method
    handle = _pick(_load(file, backend), problem, train=True, data=bool(data))
    if isinstance(handle, NetworkHandle):
        refuse_network(handle)
    if isinstance(handle, TrainHandle):
        run_train(handle, overrides, read_data(data), out, plot, progress)
        return
    if isinstance(handle, BilevelHandle):
        run_bilevel(handle, overrides, read_data(data), out)
        return
    if data:
        name = data[0].partition("=")[0].strip()
        raise RuntimeInputError(
            f"pde block '{handle.name}' takes no data arrays, got --data {data[0]}",
            hint="--data gives the arrays of train and bilevel blocks; set a pde block's "
            f"parameters with --set NAME=VALUE (an initial value such as '{name}' is given "
            "from Python: solve(initial={...}))",
            code="R503",
        )
    if "initial" in overrides:  # a dict of arrays, which --set cannot write
        raise RuntimeInputError(
            "--set initial: initial values cannot be given on the command line",
            hint=f"change the `initial` lines of pde '{handle.name}' in the program (they may "
            "use its parameters, which --set gives), or solve from Python with "
            "solve(initial={...})",
            code="R503",
        )
    sol = handle.solve(progress=progress, **overrides)
    info = sol.info
    if info.get("method") == "pinn":
        hist = info["loss_history"]
        grid = "x".join(str(len(c)) for c in sol.coords.values())
        click.echo(
            f"{handle.name}: pinn, {info['steps']} training steps, loss {hist[0]:.4g} -> "
            f"{hist[-1]:.4g}; the network sampled on {grid} cell centres"
        )
    elif sol.t is None:
        grid = "x".join(str(c) for c in info["cells"])
        click.echo(
            f"{handle.name}: steady solution on {grid} cells after {info['steps']} Newton "
            f"step(s) ({info['krylov_iterations'] or 'direct sparse LU, no'} Krylov "
            "iterations), residual "
            f"{info['residual_norms'][0]:.3g} -> {info['residual_norms'][-1]:.3g}"
            + (" (at the dtype's rounding, above tol)" if info["stopped"] == "rounding" else "")
        )
    else:
        grid = "x".join(str(c) for c in info["cells"])
        click.echo(
            f"{handle.name}: {info['steps']} steps of dt = {info.get('step', info['dt']):.4g} "
            f"on {grid} cells, "
            f"t = {sol.t[-1]:.4g}"
        )
    for name in [*sol.fields, *sol.velocities]:
        final = sol[name] if sol.t is None else sol[name][-1]
        # + 0.0: a zero prints as 0, never -0
        click.echo(f"  {name}: min {final.min() + 0.0:.6g}  max {final.max() + 0.0:.6g}")
    if out:
        click.echo(f"wrote {sol.save(out)}")  # written whole or not at all
    if plot:
        from .plot import plot_solution

        click.echo(f"wrote {plot_solution(sol, plot)}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--problem", "-p")
@click.option("--ir", is_flag=True, help="The IR (after --after PASS, default last).")
@click.option("--code", is_flag=True, help="The generated source (the default).")
@click.option("--plan", is_flag=True, help="The kernel plan.")
@click.option("--after", "after", default=None, help="Pass after which to show the IR (--ir).")
@click.option(
    "--adjoint",
    is_flag=True,
    help="The discrete adjoint (what sol.vjp runs): alone, its derived equations; with "
    "--code, --plan or --ir, those of its kernel group.",
)
@click.option("--backend", type=click.Choice(["numba", "cupy"]), default="numba")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE")
@reports_errors
def show(
    file: str,
    problem: str | None,
    ir: bool,
    code: bool,
    plan: bool,
    after: str | None,
    adjoint: bool,
    backend: str,
    sets: tuple[str, ...],
) -> None:
    """Show the IR or generated code of a problem of FILE."""
    chosen = [name for name, on in (("ir", ir), ("code", code), ("plan", plan)) if on]
    if len(chosen) > 1:
        raise RuntimeInputError(
            f"--{' and --'.join(chosen)} exclude each other",
            hint="choose one of them",
            code="R529",
        )
    if after is not None and not ir:
        raise RuntimeInputError(
            "--after names a pass of the IR", hint="give it with --ir", code="R529"
        )
    what = chosen[0] if chosen else None
    from ..compiler.driver import compile_pde, fd_pipeline
    from ..dsl import load_file
    from .bilevel import BilevelHandle
    from .cli_nets import show_artifact, show_tensor_block
    from .networks import NetworkHandle, TrainHandle

    checked = load_file(Path(file))
    handle = _pick(_handle_module(checked, backend), problem, train=True, verb="show")
    overrides = parse_sets(sets)
    if isinstance(handle, NetworkHandle | TrainHandle | BilevelHandle):
        click.echo(show_tensor_block(handle, what, overrides), nl=False)
        return
    line = handle._solve_line(overrides.get("method"))
    if line is not None and line.method == "pinn":  # the network's training module
        if adjoint or backend != "numba":
            raise RuntimeInputError(
                "a pinn solve has "
                + ("no discrete adjoint to show" if adjoint else "no CUDA lowering yet")
                + f" (pde '{handle.name}')",
                hint="drop --adjoint and --backend cupy, or --set method=fd for the fd solve",
                code="R415",
            )
        art = _pinn_artifact(handle, line, overrides)
        click.echo(show_artifact(art, what), nl=False)
        return
    fd = handle.resolve(overrides)[2]
    if adjoint and what is None:
        art = compile_pde(handle.problem, fd, backend, adjoint=True, equations=True)
        click.echo(art.dumps["equations"], nl=False)
    elif what == "ir":
        stage = after or "flatten"
        pipeline = fd_pipeline(handle.problem.time is None, fd.scheme, adjoint)
        names = ["lower", *(p.name for p in pipeline)]
        if stage not in names:
            raise RuntimeInputError(
                f"no IR after '{stage}' for this problem",
                hint=f"passes: {', '.join(dict.fromkeys(names))}"
                + ("; 'fuse' makes kernels, shown by --plan and --code" if stage == "fuse" else ""),
                code="R523",
            )
        art = compile_pde(handle.problem, fd, backend, dump_after=(stage,), adjoint=adjoint)
        click.echo(art.dumps[stage], nl=False)
    elif what == "plan":
        art = compile_pde(handle.problem, fd, backend, adjoint=adjoint)
        from ..compiler.kernels import describe

        click.echo(describe(art.group), nl=False)
    else:
        art = compile_pde(handle.problem, fd, backend, adjoint=adjoint)
        click.echo(art.source, nl=False)


def _pinn_artifact(handle: Any, line: Any, overrides: dict[str, Any]) -> Any:
    """A pinn line's training module, with the --set options that are not parameters."""
    from .pinn import pinn_artifact

    params = {p.name for p in handle.problem.params}
    options = {k: v for k, v in overrides.items() if k != "method" and k not in params}
    return pinn_artifact(handle, line, options)[0]


def _handle_module(checked: Any, backend: str) -> Any:
    from ..runtime.api import CompiledModule

    return CompiledModule(checked, backend, None)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False))
@click.option("--backend", type=click.Choice(["numba", "cupy"]), default="numba")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE")
@reports_errors
def build(file: str, outdir: str, backend: str, sets: tuple[str, ...]) -> None:
    """Write the kernels of every pde, train, network and bilevel block of FILE as standalone
    modules into a directory (networks whose input sizes are known, from their declaration or
    --set; bilevel blocks with the sizes of their variables given by --set where the data
    declares them by name)."""
    from ..compiler.driver import compile_pde
    from ..dsl import load_file
    from ..dsl.ast import PdeProblem
    from .bilevel import BilevelHandle
    from .networks import NetworkHandle, TrainHandle

    target = Path(outdir)
    existing = target  # the deepest part of the path that exists: the staging area goes there
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    writable_dir(existing, "-o")
    checked = load_file(Path(file))
    overrides = parse_sets(sets)
    mod = _handle_module(checked, backend)
    outputs: dict[str, str] = {}
    skipped: list[RitzError] = []
    no_cuda: list[str] = []  # networks have no CUDA lowering yet: what was left out
    # a parameter of one pde is no error for the others (build has no --problem)
    pde_params = {
        name: {p.name for p in block.params}
        for name, block in checked.problems.items()
        if isinstance(block, PdeProblem)
    }
    # nor a size of a train, network or bilevel block (--set d=3)
    tensor_names = set().union(
        *(_set_names(mod[n]) for n, b in checked.problems.items() if not isinstance(b, PdeProblem))
    )
    for name, block in checked.problems.items():
        handle = mod[name]
        if isinstance(block, PdeProblem):
            others = set().union(*(v for k, v in pde_params.items() if k != name))
            others |= tensor_names - pde_params[name]
            mine = {k: v for k, v in overrides.items() if k in pde_params[name] or k not in others}
            lines = block.solves or (None,)
            for line in lines:
                if line is not None and line.method == "pinn":
                    if backend == "numba":
                        art = _pinn_artifact(handle, line, mine)
                        outputs[f"{name}_pinn.py"] = art.source
                    else:
                        no_cuda.append(f"the pinn solve of pde '{name}'")
                    continue
                fd_sets = {**mine, "method": line.method} if line is not None else mine
                art = compile_pde(block, handle.resolve(fd_sets)[2], backend)
                outputs.update(art.files)
        elif backend != "numba":
            no_cuda.append(f"{type(block).__name__.lower()} block '{name}'")
        elif isinstance(handle, TrainHandle):
            try:
                art = handle.compile(sizes=handle.given_sizes(overrides))[0]
                outputs[f"{name}.py"] = art.source
            except RitzError as err:
                if err.code != "R523":  # R523: sizes not given, skipped like such networks
                    raise
                skipped.append(err)
        elif isinstance(handle, NetworkHandle):
            own = {k: v for k, v in overrides.items() if k in handle.keywords()}
            if handle.sizes_known(own):
                outputs[f"{name}.py"] = handle.compile(None, **own)[0].source
            else:
                skipped.append(_unsized_network(handle, own))
        elif isinstance(handle, BilevelHandle):
            try:
                arts = handle.build_artifacts(overrides)
                outputs.update({fname: art.source for fname, art in arts.items()})
            except RitzError as err:
                if err.code != "R523":  # R523: sizes not given, skipped like such networks
                    raise
                skipped.append(err)
    if not pde_params:  # pde blocks refuse names they do not know themselves
        _refuse_unused_sets(mod, checked, overrides)
    if no_cuda and not outputs:
        raise RuntimeInputError(
            f"nothing to build for the cupy backend: {', '.join(no_cuda)} compile for numba "
            "only (fd solves of pde blocks are the only CUDA lowering yet)",
            hint="build with --backend numba",
            code="R415",
        )
    if skipped and not outputs:
        raise skipped[0]
    for note in skipped:
        click.echo(f"skipped: {note.message} ({note.hint})", err=True)
    for left in no_cuda:
        click.echo(
            f"skipped: {left} (numba only: fd solves of pde blocks are the only CUDA lowering yet)",
            err=True,
        )
    if not outputs:
        raise RuntimeInputError(
            "the program has no pde, train, network or bilevel block to build", code="R524"
        )
    # all files are written beside the target first (on its file system, so that os.replace
    # moves them), then moved: a failed build leaves no partial set of modules
    staging = Path(tempfile.mkdtemp(prefix=".ritz_build_", dir=existing))
    try:
        from ..compiler.backends.numba_emit import BUILT_NOTE, CACHE_NOTE

        for fname, text in outputs.items():
            (staging / fname).write_text(text.replace(CACHE_NOTE, BUILT_NOTE), encoding="utf-8")
        target.mkdir(parents=True, exist_ok=True)
        for fname in outputs:
            os.replace(staging / fname, target / fname)
    except OSError as exc:
        raise RuntimeInputError(
            f"cannot write the modules into '{target}': {exc.strerror or exc}",
            hint="give -o a directory you can write to",
            code="R527",
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for fname in outputs:
        click.echo(f"wrote {target / fname}")


def _unsized_network(handle: Any, given: dict[str, Any]) -> RuntimeInputError:
    """Why ``ritz build`` leaves out a network: input sizes neither declared nor --set."""
    needed = sorted(handle._sizes() - set(given) - set(handle.env.consts))
    return RuntimeInputError(
        f"network '{handle.name}' needs its input size{'s' if len(needed) > 1 else ''} "
        f"{', '.join(needed)} to be compiled",
        handle.block.span,
        "give " + " ".join(f"--set {n}=2" for n in needed),
        code="R523",
    )


def _set_names(handle: Any) -> set[str]:
    """The --set names a train, network or bilevel block takes in ``ritz build``."""
    from .bilevel import BilevelHandle
    from .networks import NetworkHandle, TrainHandle

    if isinstance(handle, NetworkHandle):
        return handle.keywords()
    if isinstance(handle, TrainHandle):
        return set(handle.size_names())
    if isinstance(handle, BilevelHandle):
        return handle.size_names()
    return set()


def _refuse_unused_sets(mod: Any, checked: Any, overrides: dict[str, Any]) -> None:
    """R503 for a --set name that no network or bilevel block of the file takes (pde blocks
    check their own)."""
    from ..dsl.diagnostics import did_you_mean

    known: set[str] = set()
    for name in checked.problems:
        known |= _set_names(mod[name])
    for key in overrides:
        if key not in known:
            raise RuntimeInputError(
                f"--set {key}: no block of the program takes '{key}'",
                hint=did_you_mean(key, sorted(known))
                or "--set gives network options and input sizes, and sizes of the data",
                code="R503",
            )
