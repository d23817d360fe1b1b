"""Compile lowered tensor Programs (a network's forward pass, a train block's loss) to a module.

The pipeline: the loss's gradient with respect to every weight from ``vjp_program`` (the same
rule table as the PDE adjoints), then ``reuse_maps``, ``hoist_calls`` and ``inline_maps``, then
the dense printer (row chunks where the Program splits along its batch axes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .backends.base import NameRegistry, safe_name
from .backends.numba_dense import identifiers
from .backends.numba_network import (
    HEADER,
    OPTIMIZERS,
    RUNNER,
    TANH32,
    Entry,
    FlatLayout,
    print_entry,
    print_train_loops,
)
from .driver import VERSION, compiler_fingerprint
from .ir.dump import dump_program
from .ir.ops import Const, Input, Shape
from .ir.program import Program, copy_op, rebuild
from .ir.verify import verify_program
from .lower.bilevel import LoweredBilevel
from .lower.network import WeightSpec
from .lower.train import LoweredTensors
from .passes.fuse_maps import hoist_calls, inline_maps, reuse_maps
from .rules import vjp_program


@dataclass
class TensorArtifact:
    """A compiled network or train block: source, weight layout and the entry points' shapes."""

    kind: str
    name: str
    source: str
    key: str
    dtype: str
    weights: dict[str, WeightSpec]
    layout: FlatLayout
    entries: dict[str, Entry]
    batched: tuple[str, ...] = ()  # data sliced into mini-batches (train blocks)
    whole: tuple[str, ...] = ()  # data used whole
    dumps: dict[str, str] = field(default_factory=dict)
    lowered: Any = None  # what the runtime needs of the lowering (bilevel: LoweredBilevel)


def optimise(prog: Program) -> Program:
    prog = inline_maps(hoist_calls(reuse_maps(prog)))
    verify_program(prog)
    return prog


def gradient_program(
    loss: Program, weights: list[str], specs: dict[str, WeightSpec] | None = None
) -> Program:
    """Loss and ``bar:<w>`` for every weight, the loss's cotangent seeded with 1; with
    ``specs``, a weight the loss does not read gets gradient zero (see ``with_weights``)."""
    only = rebuild(replace(loss, outputs={"loss": loss.outputs["loss"]}), copy_op)
    if specs is not None:
        only = with_weights(only, specs, only.ops[only.outputs["loss"]].dtype)
    grad = vjp_program(only, weights, keep_outputs=True)
    dtype = grad.ops[grad.outputs["loss"]].dtype

    def seed(b, op, args):
        if isinstance(op, Input) and op.name == "bar:loss":
            return b.add(Const(value=1.0, dtype=dtype))
        return copy_op(b, op, args)

    return rebuild(grad, seed)


def with_weights(prog: Program, weights: dict[str, WeightSpec], dtype: str) -> Program:
    """``prog`` with an (unread) Input for every weight it lacks: a layer whose value nothing
    uses is dropped with the dead ops, yet its weights are trained, with gradient zero."""
    have = {op.name for op in prog.ops if isinstance(op, Input)}
    extra = tuple(
        Input(name=w, shape=tuple(s.shape), dtype=dtype)
        for w, s in weights.items()
        if w not in have
    )
    return replace(prog, ops=(*prog.ops, *extra)) if extra else prog


def keep_size_inputs(prog: Program, data: tuple[tuple[str, Shape], ...], dtype: str) -> Program:
    """``prog`` with an (unread) Input for every data array whose shape alone carries a size
    that its Extents count: a loss ``mean(...) * M`` with ``c: [M]`` used nowhere else reads M
    from the shape of ``c``, which the passes dropped as dead."""
    live = prog.live()
    have = {d for op in prog.ops if isinstance(op, Input) for d in op.shape if isinstance(d, str)}
    wanted = [  # sizes counted (Extent), or of a value no input carries (a broadcast bias)
        d
        for i in sorted(live)
        for d in (*getattr(prog.ops[i], "dims", ()), *prog.ops[i].shape)
        if isinstance(d, str) and d not in have
    ]
    extra: list[Input] = []
    for d in dict.fromkeys(wanted):
        if d in have:
            continue
        for name, shape in data:
            if d in shape:
                extra.append(Input(name=name, shape=tuple(shape), dtype=dtype))
                have |= {s for s in shape if isinstance(s, str)}
                break
    return replace(prog, ops=(*prog.ops, *extra)) if extra else prog


def _module(
    kind: str,
    name: str,
    source_name: str,
    entries: list[Entry],
    weights: dict[str, WeightSpec],
    data: list[str],
    dtype: str,
    extra: str | Callable[[dict[str, bool]], str] = "",
    extra_names: list[str] | None = None,
) -> tuple[str, FlatLayout]:
    layout = FlatLayout.of(weights)
    names = NameRegistry()
    ids = identifiers(names, [*weights, *(extra_names or [])], data)
    described = ", ".join(
        f"{w} {list(s.shape)} at {layout.offsets[w][0]}" for w, s in weights.items()
    )
    source_name = safe_name(source_name)  # a base name, inert in the header's docstring
    parts = [
        (HEADER + (TANH32 if dtype == "float32" else "")).format(
            version=VERSION,
            kind=kind,
            name=name,
            source=source_name,
            layout=_wrap(described),
            what="Variables" if kind.startswith("bilevel") else "Weights",
        )
    ]
    compiled = {}
    for e in entries:
        lines, compiled[e.name] = print_entry(e, layout, dtype, names, ids)
        parts.append("\n" + "\n".join(lines) + "\n")
    if not all(compiled.values()):
        parts.append(RUNNER)
    text = extra(compiled) if callable(extra) else extra
    return "\n".join(parts) + text, layout


def _wrap(text: str, width: int = 88) -> str:
    out, line = [], ""
    for word in text.split(" "):
        if len(line) + len(word) + 1 > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*out, line])


def _key(source: str) -> str:
    return hashlib.sha256((compiler_fingerprint() + source).encode()).hexdigest()


def compile_network(lowered: LoweredTensors, name: str, source_name: str) -> TensorArtifact:
    """A network's forward pass: ``forward(w, *inputs) -> y``."""
    prog = keep_size_inputs(optimise(lowered.program), lowered.inputs, lowered.dtype)
    inputs = tuple(n for n, _ in lowered.inputs)
    entry = Entry("forward", prog, lowered.weights, inputs, ("y",))
    source, layout = _module(
        "network", name, source_name, [entry], lowered.weights, list(inputs), lowered.dtype
    )
    return TensorArtifact(
        "network",
        name,
        source,
        _key(source),
        lowered.dtype,
        lowered.weights,
        layout,
        {"forward": entry},
        dumps={"forward": dump_program(prog)},
    )


def compile_train(
    loss: LoweredTensors,
    forwards: dict[str, LoweredTensors],
    name: str,
    source_name: str,
    batched: tuple[str, ...],
) -> TensorArtifact:
    """A train block: ``loss``, ``loss_and_grad``, ``forward_<net>`` and the training loops."""
    weights = list(loss.weights)
    data = tuple(n for n, _ in loss.inputs)
    value = keep_size_inputs(optimise(loss.program), loss.inputs, loss.dtype)
    grad = optimise(gradient_program(loss.program, weights, loss.weights))
    grad = keep_size_inputs(grad, loss.inputs, loss.dtype)
    entries = [
        Entry("loss", value, loss.weights, data, ("loss",)),
        Entry(
            "loss_and_grad",
            grad,
            loss.weights,
            data,
            ("loss", *(f"bar:{w}" for w in weights)),
            grads=True,
        ),
    ]
    names = list(data)
    for net, fwd in forwards.items():
        inputs = tuple(f"{n}" for n, _ in fwd.inputs)
        program = keep_size_inputs(optimise(fwd.program), fwd.inputs, fwd.dtype)
        entries.append(Entry(f"forward_{net}", program, fwd.weights, inputs, ("y",)))
        names += [n for n in inputs if n not in names]
    whole = tuple(n for n in data if n not in batched)
    layout_ids = identifiers(NameRegistry(), weights, names)

    def loops(compiled: dict[str, bool]) -> str:  # compiled loops call a compiled loss_and_grad
        return OPTIMIZERS + print_train_loops(data, batched, layout_ids, compiled["loss_and_grad"])

    source, layout = _module(
        "train block", name, source_name, entries, loss.weights, names, loss.dtype, loops
    )
    dumps = {e.name: dump_program(e.program) for e in entries}
    return TensorArtifact(
        "train",
        name,
        source,
        _key(source),
        loss.dtype,
        loss.weights,
        layout,
        {e.name: e for e in entries},
        batched,
        whole,
        dumps,
    )


def compile_bilevel(lowered: LoweredBilevel, name: str, source_name: str) -> TensorArtifact:
    """A bilevel block's residual, its Jacobian products and the upper objective's gradient,
    each a function of the flat vector of all variables (lower first)."""
    lower, specs, inputs = lowered.lower, lowered.specs, lowered.inputs
    progs = {k: optimise(p) for k, p in lowered.programs.items()}
    upper_out = [o for o in progs["upper"].outputs if o != "loss"]
    entries = [
        Entry(
            "upper", progs["upper"], specs, inputs, ("loss", *upper_out), grads=True, parallel=False
        )
    ]
    if "residual" in progs:  # an optimisation or a game (a PDE lower level has no residual)
        entries += [
            Entry(
                "residual",
                progs["residual"],
                specs,
                inputs,
                ("loss", *(f"bar:{n}" for n in lower)),
                grads=True,
                parallel=False,
            ),
            Entry(
                "residual_jvp",
                progs["residual_jvp"],
                specs,
                inputs,
                tuple(f"dot:bar:{n}" for n in lower),
                grads=True,
                out_prefix="dot:bar:",
                tangent="dot:",
                parallel=False,
            ),
            Entry(
                "residual_vjp",
                progs["residual_vjp"],
                specs,
                inputs,
                tuple(progs["residual_vjp"].outputs),
                grads=True,
                tangent="bar:bar:",
                parallel=False,
            ),
        ]
    if "lower_objective" in progs:
        bars = [o for o in progs["lower_objective"].outputs if o != "loss"]
        entries.append(
            Entry(
                "lower_objective",
                progs["lower_objective"],
                specs,
                inputs,
                ("loss", *bars),
                grads=True,
                parallel=False,
            )
        )
    tangents = [f"{p}{n}" for p in ("dot:", "bar:bar:") for n in lower]
    source, layout = _module(
        "bilevel block",
        name,
        source_name,
        entries,
        specs,
        list(inputs),
        lowered.dtype,
        extra_names=tangents,
    )
    dumps = {e.name: dump_program(e.program) for e in entries}
    return TensorArtifact(
        "bilevel",
        name,
        source,
        _key(source),
        lowered.dtype,
        specs,
        layout,
        {e.name: e for e in entries},
        dumps=dumps,
    )


__all__ = [
    "TensorArtifact",
    "compile_bilevel",
    "compile_network",
    "compile_train",
    "gradient_program",
]
