"""Train blocks and network handles -> tensor Programs (a loss, or one network's forward pass).

The loss is an expression over whole data arrays (NumPy broadcasting, no implicit batch axis);
applying a net of the block to an array treats its leading axis as the batch. The Programs'
weights are Inputs named ``<net>.<layer>.W``; their gradients come from ``vjp_program``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from ...dsl import ast as A
from ...dsl.diagnostics import DslTypeError, RuntimeInputError, did_you_mean, shape_text
from ...dsl.resolve import ModuleEnv
from ...dsl.source import Span
from ..ir.ops import Extent, Shape
from ..ir.program import Program
from .network import Option, Scope, TensorLowering, Value, WeightSpec

BATCH = "n_batch"


@dataclass(frozen=True)
class NetBinding:
    """A net of a train block: the network it instantiates, where that is defined, its options."""

    name: str
    network: A.Network
    env: ModuleEnv
    options: dict[str, Option]
    span: Span | None


@dataclass(frozen=True)
class LoweredTensors:
    """A Program over named weights and inputs, with what the runtime needs to call it."""

    program: Program
    weights: dict[str, WeightSpec]
    inputs: tuple[tuple[str, Shape], ...]
    dtype: str


def _dims(decl: A.TensorDecl, env: ModuleEnv, known: Mapping[str, int]) -> Shape:
    out: list[int | str] = []
    for d in decl.shape:
        value = d.value.xreplace({sympy.Symbol(k): v for k, v in env.consts.items()})
        if isinstance(value, sympy.Symbol):
            out.append(known.get(value.name, value.name))
        elif value.is_Integer and int(value) >= 0:
            out.append(int(value))
        else:
            raise DslTypeError(
                f"size '{d.value}' of '{decl.name}' must be a whole number or a name",
                d.span,
                None,
                "R343",
            )
    return tuple(out)


def bind_net(decl: A.NetDecl, env: ModuleEnv, low: TensorLowering) -> NetBinding:
    """The network a ``net NAME = ...`` line instantiates, with its options evaluated."""
    value = decl.value
    if isinstance(value, A.Call):
        name, kwargs = value.name, value.kwargs
        if value.args:
            raise DslTypeError(
                f"'net {decl.name} = {name}(...)' takes options only (keyword arguments)",
                value.span,
                "the inputs are given where the net is applied, e.g. f(x) in the loss",
                "R301",
            )
    else:
        name, kwargs = str(value.value), ()
    if name not in env.networks:  # train blocks are checked; a pinn line's net is not
        raise DslTypeError(
            f"'{name}' is not a network",
            getattr(value, "span", None) or decl.span,
            did_you_mean(name, env.networks) or "e.g. net = nn.mlp(width = 32)",
            "R316",
        )
    network, net_env = env.networks[name], env.network_envs[name]
    scope = Scope(env, "")
    options: dict[str, Option] = {}
    known = [o.name for o in network.options]
    for kw in kwargs:
        if kw.name not in known:
            raise DslTypeError(
                f"network '{name}' has no option '{kw.name}'",
                kw.span,
                did_you_mean(kw.name, known) or f"its options: {', '.join(known)}",
                "R301",
            )
        if isinstance(kw.value, A.Call):
            raise DslTypeError(
                f"option '{kw.name}' must be a number or a function name", kw.span, None, "R345"
            )
        options[kw.name] = low._option_value(kw.value, scope, kw.span)
    return NetBinding(decl.name, network, net_env, options, decl.span)


def lower_loss(
    train: A.Train, env: ModuleEnv, dtype: str, sizes: Mapping[str, int]
) -> tuple[LoweredTensors, dict[str, NetBinding], dict[str, dict[str, Shape]]]:
    """The loss Program of a train block (output ``loss``), the block's nets, and the
    per-sample input shapes each net was applied to (nets the loss never applies are absent)."""
    applied: dict[str, dict[str, Shape]] = {}
    low = TensorLowering(dtype)
    nets = {d.name: bind_net(d, env, low) for d in train.nets}
    scope = Scope(env, "")
    inputs = []
    for decl in train.data:
        shape = _dims(decl, env, sizes)
        inputs.append((decl.name, shape))
        scope.values[decl.name] = Value(low.input(decl.name, shape), False)
    for decl in train.data:  # a size name is a number in the loss: the rows it sees, ...
        for d in _dims(decl, env, sizes):
            if isinstance(d, str) and d not in scope.values:
                extent = low.b.add(Extent(dims=(d,), dtype=low.dtype))
                scope.values[d] = Value(extent, False)
    for name, size in sizes.items():  # ... or a size the data fixed
        if name not in scope.values:
            scope.values[name] = low.const(float(size))

    def applier(binding: NetBinding):
        def apply(values: list[Value], span: Span | None) -> Value:
            batched = []
            for v in values:
                if not low.shape(v):
                    raise DslTypeError(
                        f"net '{binding.name}' needs arrays with a leading batch axis",
                        span,
                        None,
                        "R342",
                    )
                batched.append(Value(v.id, True))
            out = low.apply_network(
                binding.network, binding.env, batched, binding.options, f"{binding.name}.", span
            )
            applied.setdefault(
                binding.name,
                {
                    t.name: low.sample_shape(v)
                    for t, v in zip(binding.network.inputs, batched, strict=True)
                },
            )
            return Value(out.id, False)

        return apply

    scope.callables = {name: applier(b) for name, b in nets.items()}
    assert train.loss is not None  # the checker requires a loss line
    loss = low.lower(train.loss.value, scope, train.loss)
    if low.shape(loss):
        raise DslTypeError(
            f"the loss must be a number, but has shape {shape_text(low.shape(loss))}",
            train.loss.span,
            "reduce it, e.g. mean((f(x) - y)^2)",
            "R348",
        )
    low.b.output("loss", loss.id)
    return LoweredTensors(low.b.build(), dict(low.weights), tuple(inputs), dtype), nets, applied


def lower_forward(
    network: A.Network,
    env: ModuleEnv,
    options: Mapping[str, Option],
    samples: Mapping[str, Shape],
    dtype: str,
    prefix: str = "",
    span: Span | None = None,
) -> LoweredTensors:
    """One network applied to a batch: Inputs named after its inputs, output ``y``."""
    low = TensorLowering(dtype)
    values, inputs = [], []
    for decl in network.inputs:
        shape = (BATCH, *samples[decl.name])
        inputs.append((decl.name, shape))
        values.append(Value(low.input(decl.name, shape), True))
    out = low.apply_network(network, env, values, options, prefix, span or network.span)
    low.b.output("y", out.id)
    return LoweredTensors(low.b.build(), dict(low.weights), tuple(inputs), dtype)


def sample_shapes(
    network: A.Network, env: ModuleEnv, options: Mapping[str, Any], given: Mapping[str, Shape]
) -> dict[str, Shape]:
    """Per-sample input shapes: from arrays given (``given``), else from the declaration with
    sizes bound by options; a size that stays unknown is an error that says what to pass."""
    out: dict[str, Shape] = {}
    for decl in network.inputs:
        if decl.name in given:
            out[decl.name] = tuple(given[decl.name])
            continue
        shape = []
        for d in decl.shape:
            value = d.value.xreplace({sympy.Symbol(k): v for k, v in env.consts.items()})
            value = value.xreplace(
                {sympy.Symbol(k): v for k, v in options.items() if isinstance(v, sympy.Basic)}
            )
            if not value.is_Integer:
                raise RuntimeInputError(
                    f"the size '{d.value}' of input '{decl.name}' of network '{network.name}' "
                    "is not known",
                    d.span,
                    f"pass it, e.g. init(seed=0, {d.value}=2), or an input array",
                    "R531",
                )
            shape.append(int(value))
        out[decl.name] = tuple(shape)
    return out


__all__ = ["BATCH", "LoweredTensors", "NetBinding", "bind_net", "lower_forward", "lower_loss"]
