"""What ``ritz run`` and ``ritz show`` do with network and train blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ..dsl.diagnostics import RuntimeInputError
from .cache import atomic_target
from .networks import NetworkHandle, TrainHandle

TRAIN_OPTIONS = ("steps", "batch", "optimizer", "seed")


# how a .npy file and an .npz file (a zip archive) begin
NPY_MAGIC, NPZ_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def _load_array(name: str, file: str) -> np.ndarray:
    """The array of a .npy file, or of an .npz file that holds one; R526 for anything else."""
    from zipfile import BadZipFile

    try:
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            keys = list(loaded.keys())
            if len(keys) != 1:
                raise RuntimeInputError(
                    f"'{file}' holds {len(keys)} arrays; data '{name}' needs one",
                    hint="save each data array in its own .npy file",
                    code="R526",
                )
            loaded = loaded[keys[0]]  # read here: an .npz file reads its members lazily
    except (OSError, ValueError, EOFError, BadZipFile) as exc:
        why, hint = _unreadable(file, exc)
        raise RuntimeInputError(
            f"cannot read '{file}' for data '{name}': {why}", hint=hint, code="R526"
        ) from None
    return loaded


def _unreadable(file: str, exc: Exception) -> tuple[str, str]:
    """Why NumPy could not read ``file``, in ritz's words, and a hint. NumPy reads a file that
    is neither .npy nor .npz as a pickle, which ritz never loads (it runs code from the file):
    its message would point at allow_pickle, for a text file as for an array of objects."""
    hint = "give a .npy file (numpy.save) or an .npz file with one array"
    try:
        with open(file, "rb") as fh:
            head = fh.read(len(NPY_MAGIC))
    except OSError:
        return str(exc), hint  # missing, a directory, unreadable: NumPy's message says which
    if not head:
        return "the file is empty", hint
    if not (head.startswith(NPY_MAGIC) or head.startswith(NPZ_MAGIC)):
        return (
            "it is not a .npy or .npz file, the formats ritz reads (it does not begin as one)",
            hint + "; a table of numbers in text converts with "
            "numpy.save('X.npy', numpy.loadtxt('FILE'))",
        )
    if "allow_pickle" in str(exc):
        return (
            "it holds an array of Python objects, which ritz does not load (only numbers)",
            "save an array of numbers (numpy.save('X.npy', a.astype(float)))",
        )
    return f"a damaged {'.npy' if head.startswith(NPY_MAGIC) else '.npz'} file ({exc})", hint


def read_data(items: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``--data NAME=FILE`` (.npy, or .npz holding one array) -> arrays by name."""
    out = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise RuntimeInputError(
                f"--data expects NAME=FILE, got '{item}'",
                hint="for example --data x=x.npy",
                code="R521",
            )
        if name.strip() in out:  # the last would win, silently
            raise RuntimeInputError(
                f"--data gives '{name.strip()}' twice", hint="give each name once", code="R521"
            )
        out[name.strip()] = _load_array(name.strip(), file.strip())
    return out


def run_train(
    handle: TrainHandle,
    overrides: dict[str, Any],
    data: dict[str, Any],
    out: str | None,
    plot: str | None,
    progress: bool,
) -> None:
    """Train, print a summary, and write the weights (.npz) and a plot of the loss on request."""
    res = handle.train(progress=progress, **data, **overrides)
    h = res.loss_history
    info = res.info
    batch = f", batch {info['batch']}" if "batch" in info else ""
    click.echo(
        f"{handle.name}: {info['steps']} steps of {info['optimizer']}{batch}, "
        f"loss {h[0]:.6g} -> {h[-1]:.6g}"
    )
    for name, value in res.params.items():
        click.echo(f"  {name}: shape {list(value.shape)}")
    if out:
        with atomic_target(Path(out), suffix=".npz") as tmp:
            np.savez(tmp, **res.params)  # type: ignore[arg-type]
        click.echo(f"wrote {Path(out)}")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.semilogy(np.arange(1, len(h) + 1), h)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(handle.name)
        fig.tight_layout()
        with atomic_target(Path(plot), suffix=".png") as tmp:
            fig.savefig(tmp)
        plt.close(fig)
        click.echo(f"wrote {plot}")


def run_bilevel(
    handle: Any, overrides: dict[str, Any], data: dict[str, Any], out: str | None
) -> None:
    """Optimise the upper level; print both levels and the hypergradient; ``--out`` an .npz."""
    res = handle.solve(**data, **overrides)
    click.echo(
        f"{handle.name}: upper objective {res.history[0] + 0.0:.6g} -> "
        f"{res.history[-1] + 0.0:.6g} "
        f"({res.info.get('iterations', '?')} {res.info['outer']} iterations, "
        f"{res.info['lower_solves']} lower solves)"
    )
    for level, values in (("upper", res.upper), ("lower", res.lower)):
        for name, value in values.items():
            shown = (
                f"{value + 0.0:.8g}"  # + 0.0: a zero prints as 0, never -0
                if np.ndim(value) == 0
                else f"array of shape {list(np.shape(value))}"
            )
            click.echo(f"  {level} {name} = {shown}")
    for name, value in res.hypergrad.items():
        flat = np.asarray(value, dtype=float).ravel()
        shown = (
            " ".join(f"{v + 0.0:.3g}" for v in flat)
            if flat.size <= 8
            else f"array of shape {list(np.shape(value))}, norm {np.linalg.norm(flat):.3g}"
        )
        click.echo(f"  d upper / d {name} = {shown}")
    if out:
        arrays = {f"upper_{k}": np.asarray(v) for k, v in res.upper.items()}
        arrays.update({f"lower_{k}": np.asarray(v) for k, v in res.lower.items()})
        arrays["history"] = res.history
        with atomic_target(Path(out), suffix=".npz") as tmp:
            np.savez(tmp, **arrays)  # type: ignore[arg-type]
        click.echo(f"wrote {Path(out)}")


def refuse_network(handle: NetworkHandle) -> None:
    raise RuntimeInputError(
        f"'{handle.name}' is a network: it has no run of its own",
        handle.block.span,
        "train it in a train block ('net f = " + handle.name + "'), or call it from Python",
        code="R525",
    )


def _bilevel_artifact(handle: Any, sizes: dict[str, Any]) -> Any:
    """A bilevel block's module as ``ritz build`` writes it: data sizes not given with --set
    stay symbolic, the sizes of the variables must be given (R523 otherwise)."""
    if handle.block.lower_solutions:
        raise RuntimeInputError(
            f"'{handle.name}' has a PDE lower level: its code is the pde block's",
            handle.block.span,
            "show the pde block (-p NAME), or its adjoint (--adjoint)",
            code="R523",
        )
    return handle.build_artifacts(sizes)[f"{handle.name}.py"]


def show_tensor_block(handle: Any, what: str | None, overrides: dict[str, Any]) -> str:
    """The generated source (default), the IR of every entry (--ir) or the entries (--plan)."""
    if isinstance(handle, NetworkHandle):
        art, _ = handle.compile(None, **overrides)
    elif isinstance(handle, TrainHandle):
        art, _ = handle.compile(sizes=handle.given_sizes(overrides))
    else:
        art = _bilevel_artifact(handle, overrides)
    return show_artifact(art, what)


def show_artifact(art: Any, what: str | None) -> str:
    """A tensor module's source, the IR of its entries (``ir``) or its layout (``plan``)."""
    if what == "ir":
        return "".join(f"# {name}\n{text}\n" for name, text in art.dumps.items())
    if what == "plan":
        unit = "variables" if art.kind == "bilevel" else "weights"
        lines = [f"{art.kind} {art.name} ({art.dtype}): {art.layout.size} {unit}"]
        for name, (start, stop) in art.layout.offsets.items():
            lines.append(f"  w[{start}:{stop}] {name} {list(art.weights[name].shape)}")
        for name, entry in art.entries.items():
            ops: dict[str, int] = {}
            for op in entry.program.ops:
                ops[op.kind] = ops.get(op.kind, 0) + 1
            counts = ", ".join(f"{n} {k}" for k, n in sorted(ops.items()))
            lines.append(f"  {name}({', '.join(entry.inputs)}) -> {list(entry.outputs)}: {counts}")
        return "\n".join(lines) + "\n"
    return art.source


__all__ = [
    "read_data",
    "refuse_network",
    "run_bilevel",
    "run_train",
    "show_artifact",
    "show_tensor_block",
]
