"""Python handles of network and train blocks: ``init``, calls, ``loss_and_grad``, ``train``.

A handle lowers its block for the shapes it is used with (the per-sample input sizes fix the
weight shapes), prints the module once per distinct source and loads it through the content-hashed
cache, so a warm start reuses Numba's compiled code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from ..dsl import ast as A
from ..dsl.check.common import TRAIN_SETTINGS, check_given
from ..dsl.diagnostics import RuntimeInputError, UnsupportedError, did_you_mean
from ..dsl.resolve import ModuleEnv
from .backends import get_backend
from .cache import cache_path, load_generated
from .inputs import check_dtype, checked_size, keywords_only, memory_bytes, real_array
from .optimizers import OPTION_NAMES, Optimizer, non_finite_loss, parse_optimizer, run_lbfgs

Params = dict[str, np.ndarray]


def _load(artifact: Any, backend: str, cache_dir: Any) -> Any:
    if backend != "numba":
        raise UnsupportedError(
            f"{artifact.kind} blocks are compiled for the numba backend only in this version "
            f"('{artifact.name}')",
            None,
            f"use backend='numba' for {artifact.kind} blocks (the GPU backend compiles pde blocks)",
            code="R415",
        )
    path = cache_path(cache_dir, backend, f"{artifact.kind}_{artifact.name}", artifact.key, ".py")
    name = f"ritz_gen_{artifact.name}_{artifact.key[:20]}"
    return load_generated(path, name, lambda: artifact.source, get_backend(backend).load_module)


def init_weights(weights: Mapping[str, Any], seed: int, dtype: str) -> Params:
    """Glorot-uniform matrices (``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``) and zero
    biases, drawn in declaration order from NumPy's PCG64 with ``seed``."""
    size = sum(math.prod(spec.shape) for spec in weights.values()) * np.dtype(dtype).itemsize
    if size > memory_bytes() // 2:  # an input size of 1e12 would end in a MemoryError
        raise RuntimeInputError(
            f"the weights would take {size / 2**30:.3g} GiB, more than half of this machine's "
            "memory",
            hint="check the input sizes and widths given (init(n_in=...), --set)",
            code="R538",
        )
    rng = np.random.default_rng(seed)
    out: Params = {}
    for name, spec in weights.items():
        if spec.kind == "matrix":
            a = np.sqrt(6.0 / (spec.fan_in + spec.fan_out))
            out[name] = rng.uniform(-a, a, size=spec.shape).astype(dtype)
        else:
            out[name] = np.zeros(spec.shape, dtype=dtype)
    return out


def pack(params: Mapping[str, Any], artifact: Any, what: str = "params") -> np.ndarray:
    """The flat weight vector of ``params`` (checked: every weight and no other, right shapes:
    a misspelt or foreign name would otherwise be ignored while its weight stays untrained)."""
    check_weights(params, what)
    w = np.empty(artifact.layout.size, dtype=artifact.dtype)
    missing = [n for n in artifact.layout.offsets if n not in params]
    if missing:
        raise RuntimeInputError(
            f"{what} lack {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}",
            hint="start from init(seed=...), which returns every weight",
            code="R532",
        )
    extra = [n for n in params if n not in artifact.layout.offsets]
    if extra:
        raise RuntimeInputError(
            f"{what} hold '{extra[0]}', which is no weight of this network"
            + (f" ({len(extra) - 1} more)" if len(extra) > 1 else ""),
            hint=did_you_mean(extra[0], list(artifact.layout.offsets))
            or f"its weights: {', '.join(list(artifact.layout.offsets)[:6])}",
            code="R532",
        )
    for name, (start, stop) in artifact.layout.offsets.items():
        given = params[name]
        kind = given.dtype if isinstance(given, np.ndarray | np.generic) else None
        if kind is not None and kind != np.dtype(artifact.dtype):  # a silent cast would hide it
            raise RuntimeInputError(
                f"weight '{name}' is {kind}, but this "
                f"{'train block' if artifact.kind == 'train' else artifact.kind} computes in "
                f"{artifact.dtype}",
                hint=f"give every weight as {artifact.dtype} (init returns them so), or set "
                f"the block's dtype to {kind}"
                if kind in (np.float32, np.float64)
                else f"give every weight as {artifact.dtype}",
                code="R532",
            )
        value = real_array(given, f"weight '{name}'", "R532", artifact.dtype)
        want = artifact.weights[name].shape
        if value.shape != want:
            raise RuntimeInputError(
                f"weight '{name}' has shape {list(value.shape)}, the network needs {list(want)}",
                hint="the options or input sizes differ from those the weights were made for",
                code="R532",
            )
        w[start:stop] = value.ravel()
    return w


def check_weights(params: Any, what: str = "params") -> None:
    """R532 unless ``params`` is a dict of weights by name (what ``init`` returns)."""
    if not isinstance(params, Mapping):
        raise RuntimeInputError(
            f"{what} must be a dict of weights by name, got {type(params).__name__}",
            hint="start from init(seed=...), which returns every weight by name",
            code="R532",
        )


def unpack(w: np.ndarray, artifact: Any) -> Params:
    return {
        name: w[start:stop].reshape(artifact.weights[name].shape).copy()
        for name, (start, stop) in artifact.layout.offsets.items()
    }


def _array(name: str, value: Any, dtype: str) -> np.ndarray:
    """``value`` as a contiguous real array of ``dtype`` with its own shape, finite (R533).
    Complex values are refused, not cast: NumPy would drop their imaginary parts with only a
    warning; None and text are refused too (see ``inputs.real_array``)."""
    return real_array(value, f"'{name}'", "R533", dtype)


def _check_axes(what: str, axes: Mapping[str, int], arrays: list[np.ndarray]) -> None:
    """R533 unless each array has the axes its input needs (``axes``: input name -> count, the
    batch axes before the per-sample ones)."""
    for (name, ndim), a in zip(axes.items(), arrays, strict=True):
        if a.ndim != ndim:
            raise RuntimeInputError(
                f"input '{name}' of {what} needs {ndim} axes (batch first), got shape "
                f"{list(a.shape)}",
                hint="one row per sample: a single sample x is x[None]",
                code="R533",
            )


class _BlockHandle:
    """What network and train handles share: the block, where it was defined, and the
    modules compiled for it so far (by the shapes and options they were compiled for)."""

    what = "block"

    def __init__(
        self, block: Any, env: ModuleEnv, source: str, backend: str, cache_dir: Any
    ) -> None:
        self.block = block
        self.name = block.name
        self.env = env
        self.source_name = source
        self.backend_name = backend
        self.cache_dir = cache_dir
        self._compiled: dict[str, tuple[Any, Any]] = {}
        self._rows_checked: set[str] = set()  # sets of sample lengths the loss was checked at

    @property
    def kernels(self) -> Any:
        """The loaded module compiled last: plain Numba functions of the flat weight vector
        (``forward``; ``loss_and_grad``, ``train_adam`` ... for train blocks)."""
        if not self._compiled:
            raise RuntimeInputError(
                f"{self.what} '{self.name}' has not been compiled yet",
                hint="call init() first",
                code="R534",
            )
        return next(reversed(self._compiled.values()))[1]


class NetworkHandle(_BlockHandle):
    """``mod.mlp2``: ``init(seed)`` -> weights, ``net(params, x)`` -> batched outputs."""

    what = "network"

    def _sizes(self) -> set[str]:
        return {s.name for t in self.block.inputs for d in t.shape for s in d.value.free_symbols}

    def keywords(self) -> set[str]:
        """The names ``init`` takes besides seed and dtype: options and input sizes."""
        return {kw.name for kw in self.block.options} | self._sizes()

    def _split(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        options, sizes = {}, {}
        known = {kw.name for kw in self.block.options}
        for k, v in kwargs.items():
            if k in known:
                options[k] = self._option(k, v)
            elif k in self._sizes():
                subject = f"input size '{k}' of network '{self.name}'"
                sizes[k] = checked_size(v, subject, f"give e.g. {k}=2")
            else:
                raise RuntimeInputError(
                    f"'{k}' is neither an option nor an input size of network '{self.name}'",
                    hint=did_you_mean(k, [*known, *self._sizes()])
                    or f"options: {', '.join(sorted(known)) or 'none'}",
                    code="R503",
                )
        return options, sizes

    def _option(self, name: str, value: Any) -> Any:
        """An option given from Python: a number (NumPy scalars and 0-d arrays count, as
        their Python value) or the name of a function of the program, else R538."""
        plain = (
            value.item()
            if isinstance(value, np.generic | np.ndarray) and not np.ndim(value)
            else value
        )
        if isinstance(plain, str):
            from ..compiler.lower.network import is_function

            if not is_function(plain, self.env):
                raise RuntimeInputError(
                    f"option '{name}' of network '{self.name}' is a number or the name of a "
                    f"function of this program, got {plain!r} (given at run time)",
                    hint=f"give e.g. {name}=4 for a number, or a function's name such as "
                    f"{name}='tanh'",
                    code="R538",
                )
            return plain
        if isinstance(plain, bool) or not isinstance(plain, int | float):
            raise RuntimeInputError(
                f"option '{name}' of network '{self.name}' must be a number or the name of a "
                f"function, got {value!r} (given at run time)",
                hint=f"give e.g. {name}=4",
                code="R538",
            )
        return plain

    def sizes_known(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether every per-sample input size is fixed by the declaration or ``kwargs``."""
        return {s for s in self._sizes() if s not in self.env.consts} <= set(kwargs)

    def compile(
        self,
        samples: Mapping[str, tuple[int, ...]] | None = None,
        dtype: str = "float32",
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """The artifact and loaded module for these options and per-sample input shapes."""
        from ..compiler.tensor_driver import compile_network

        key, lower = self._lowering(samples, dtype, kwargs)
        if key not in self._compiled:
            art = compile_network(lower(), self.name, self.source_name)
            self._compiled[key] = (art, _load(art, self.backend_name, self.cache_dir))
        return self._compiled[key]

    def lower(
        self,
        samples: Mapping[str, tuple[int, ...]] | None = None,
        dtype: str = "float32",
        **kwargs: Any,
    ) -> Any:
        """The forward pass's Program for these options and shapes, without compiling it."""
        return self._lowering(samples, dtype, kwargs)[1]()

    def _lowering(
        self, samples: Mapping[str, tuple[int, ...]] | None, dtype: str, kwargs: Mapping[str, Any]
    ) -> tuple[str, Any]:
        from ..compiler.lower.network import TensorLowering, network_options
        from ..compiler.lower.train import lower_forward, sample_shapes

        options, sizes = self._split(kwargs)
        opts = network_options(
            TensorLowering(dtype), self.block, self.env, options, self.block.span
        )
        bound = {**opts, **{k: sympy.Integer(v) for k, v in sizes.items()}}
        shapes = sample_shapes(self.block, self.env, bound, samples or {})
        key = repr((sorted(options.items()), sorted(shapes.items()), dtype))
        return key, lambda: lower_forward(self.block, self.env, opts, shapes, dtype)

    def init(self, seed: int = 0, dtype: str = "float32", **kwargs: Any) -> Params:
        """Initial weights by name (``h.W``, ``h.b``, ... ``out.W``); options and unknown input
        sizes as keywords (``init(seed=0, n_in=2, width=32)``). ``dtype`` is float32 or float64
        (NumPy's types count; R538 otherwise)."""
        dtype = check_dtype(dtype, f"network '{self.name}'")
        seed = check_given(TRAIN_SETTINGS, "seed", seed, f"network '{self.name}'")
        art, _ = self.compile(None, dtype, **kwargs)
        return init_weights(art.weights, int(seed), dtype)

    def __call__(self, params: Mapping[str, Any], *inputs: Any, **kwargs: Any) -> np.ndarray:
        """The network on a batch: each input has a leading batch axis."""
        names = [t.name for t in self.block.inputs]
        given = [k for k in kwargs if k in names]  # other keywords are options and sizes
        call = f"{self.name}(params, {', '.join(names)})"
        check_positional(f"network '{self.name}'", names, inputs, given, call)
        dtype = _params_dtype(params)
        arrays = [_array(t.name, x, dtype) for t, x in zip(self.block.inputs, inputs, strict=True)]
        axes = {t.name: len(t.shape) + 1 for t in self.block.inputs}
        _check_axes(f"network '{self.name}'", axes, arrays)
        samples = {t.name: a.shape[1:] for t, a in zip(self.block.inputs, arrays, strict=True)}
        art, mod = self.compile(samples, dtype, **kwargs)
        return _with_rows(mod.forward(pack(params, art), *arrays), art.entries["forward"], arrays)

    def source(self, **kwargs: Any) -> str:
        return self.compile(None, **kwargs)[0].source


def check_positional(
    what: str, names: Sequence[str], inputs: Sequence[Any], keywords: Sequence[str], call: str
) -> None:
    """A network's input arrays go by position, after its weights where it takes them: R503
    for one given as a keyword (``keywords``: the names given so), R533 for a wrong count.
    ``call`` is the call written out, for the hint."""
    if keywords:
        raise RuntimeInputError(
            f"{what} takes its input arrays by position; got the keyword '{keywords[0]}'",
            hint=f"call it as {call}",
            code="R503",
        )
    if len(inputs) != len(names):
        raise RuntimeInputError(
            f"{what} takes {len(names)} input array(s), got {len(inputs)}",
            hint=f"pass them in order: {call}",
            code="R533",
        )


def _with_rows(out: np.ndarray, entry: Any, arrays: list[np.ndarray]) -> np.ndarray:
    """One row per sample, also for a network whose value depends on no input
    (``return bias()``): its Program's output then has no batch axis."""
    shape = entry.program.ops[entry.program.outputs["y"]].shape
    if arrays and (not shape or not isinstance(shape[0], str)):
        return np.broadcast_to(out, (arrays[0].shape[0], *np.shape(out))).copy()
    return out


def _params_dtype(params: Mapping[str, Any]) -> str:
    """The dtype a network runs in: its weights' (float64 arrays -> float64, anything else
    float32); weights of both kinds are R532, as neither reading is what all of them say."""
    check_weights(params)
    kinds = {
        "float64" if np.asarray(v).dtype == np.float64 else "float32"
        for v in params.values()
        if isinstance(v, np.ndarray | np.generic)
    }
    if len(kinds) > 1:
        raise RuntimeInputError(
            "params mix float32 and float64 weights",
            hint="give every weight one dtype, e.g. {k: v.astype(np.float64) for k, v in "
            "params.items()}",
            code="R532",
        )
    return kinds.pop() if kinds else "float32"


@dataclass
class TrainResult:
    """What ``train`` returns: the final weights, the loss per step, and each net as a function."""

    params: Params
    loss_history: np.ndarray
    nets: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def net(self) -> Any:
        """The block's net (when it has exactly one): ``res.net(x)``."""
        if len(self.nets) != 1:
            raise RuntimeInputError(
                f"this block has {len(self.nets)} nets", hint="use res.nets[name]", code="R534"
            )
        return next(iter(self.nets.values()))


class TrainHandle(_BlockHandle):
    """``mod.fit_sine``: ``init``, ``loss_and_grad(params, **data)``, ``train(**data)``."""

    what = "train block"

    def __init__(
        self, block: A.Train, env: ModuleEnv, source: str, backend: str, cache_dir: Any
    ) -> None:
        super().__init__(block, env, source, backend, cache_dir)
        self.settings = {kw.name: kw for kw in block.settings}

    @property
    def dtype(self) -> str:
        kw = self.settings.get("dtype")
        return (
            str(kw.value.value)
            if kw is not None and isinstance(kw.value, A.Expression)
            else "float32"
        )

    def _setting(self, name: str, default: Any) -> Any:
        kw = self.settings.get(name)
        if kw is None or not isinstance(kw.value, A.Expression):
            return default
        return kw.value.value

    # -- data and compilation ------------------------------------------------------------------
    def _data(self, data: Mapping[str, Any], need_all: bool = True) -> dict[str, np.ndarray]:
        names = [d.name for d in self.block.data]
        for k in data:
            if k not in names:
                raise RuntimeInputError(
                    f"'{k}' is not a data array of '{self.name}'",
                    hint=did_you_mean(k, names) or f"data: {', '.join(names)}",
                    code="R503",
                )
        missing = [n for n in names if n not in data]
        if need_all and missing:
            raise RuntimeInputError(
                f"train block '{self.name}' needs the data {', '.join(missing)}",
                hint=f"pass them as keywords ({missing[0]}=array) or on the command line "
                f"(--data {missing[0]}=FILE.npy)",
                code="R535",
            )
        out = {k: _array(k, v, self.dtype) for k, v in data.items()}
        sizes: dict[str, int] = {}
        for decl in self.block.data:
            if decl.name not in out:
                continue
            a = out[decl.name]
            if a.ndim != len(decl.shape):
                raise RuntimeInputError(
                    f"data '{decl.name}' is declared with {len(decl.shape)} axes, got shape "
                    f"{list(a.shape)}",
                    decl.span,
                    code="R536",
                )
            if a.ndim and a.shape[0] == 0:
                raise RuntimeInputError(
                    f"data '{decl.name}' has no rows (shape {list(a.shape)})",
                    decl.span,
                    "give at least one sample",
                    code="R536",
                )
            for d, n in zip(decl.shape, a.shape, strict=True):
                value = d.value.xreplace({sympy.Symbol(k): v for k, v in self.env.consts.items()})
                if value.is_Integer and int(value) != n:
                    raise RuntimeInputError(
                        f"data '{decl.name}' needs size {int(value)} on an axis, got "
                        f"{list(a.shape)}",
                        d.span,
                        code="R536",
                    )
                if value.is_Symbol and sizes.setdefault(value.name, n) != n:
                    raise RuntimeInputError(
                        f"size '{value.name}' is {sizes[value.name]} in one data array "
                        f"and {n} in '{decl.name}'",
                        d.span,
                        code="R536",
                    )
        return out

    def _sizes(self, data: Mapping[str, np.ndarray]) -> dict[str, int]:
        """Sizes other than the leading (sample) axes, which fix the weight shapes."""
        out: dict[str, int] = {}
        for decl in self.block.data:
            if decl.name in data:
                for d, n in list(zip(decl.shape, data[decl.name].shape, strict=True))[1:]:
                    if d.value.is_Symbol:
                        out[d.value.name] = n
        return out

    def _check_rows(self, data: Mapping[str, np.ndarray], sizes: Mapping[str, int]) -> None:
        """R344 where the data give leading (sample) axes of different names the same length:
        lowered with those names as numbers, the loss shows whether it pairs one array's rows
        with a size-1 axis of another (the lowering's rule; checked once per set of lengths)."""
        leading: dict[str, int] = {}
        for decl in self.block.data:
            if decl.name in data and decl.shape and decl.shape[0].value.is_Symbol:
                leading[decl.shape[0].value.name] = int(np.shape(data[decl.name])[0])
        if len(set(leading.values())) == len(leading):
            return  # no two sample sizes of different names are equal
        key = repr(("rows", sorted(leading.items()), sorted(sizes.items())))
        if key not in self._rows_checked:
            from ..compiler.lower.train import lower_loss

            lower_loss(self.block, self.env, self.dtype, {**sizes, **leading})
            self._rows_checked.add(key)

    def size_names(self) -> list[str]:
        """The sizes that fix the weight shapes: names on the data's axes after the first."""
        names = {
            s.name
            for decl in self.block.data
            for d in decl.shape[1:]
            for s in d.value.free_symbols
            if s.name not in self.env.consts
        }
        return sorted(names)

    def given_sizes(self, sizes: Mapping[str, Any]) -> dict[str, int]:
        """Sizes of the data given by name (``--set d=2``): positive whole numbers (R538);
        other names are left to the caller."""
        return {
            name: checked_size(
                sizes[name], f"size '{name}' of the data of '{self.name}'", f"e.g. --set {name}=2"
            )
            for name in self.size_names()
            if name in sizes
        }

    def compile(
        self, data: Mapping[str, np.ndarray] | None = None, sizes: Mapping[str, int] | None = None
    ) -> tuple[Any, Any]:
        """The artifact and module for data of these shapes (or sizes given by name, as
        ``ritz build --set d=2`` does); a size fixed by neither is R523."""
        from ..compiler.lower.train import lower_forward, lower_loss
        from ..compiler.tensor_driver import compile_train

        sizes = {**(sizes or {}), **self._sizes(data or {})}
        needed = [n for n in self.size_names() if n not in sizes]
        if needed:
            many = len(needed) > 1
            raise RuntimeInputError(
                f"the weights of '{self.name}' depend on the data size{'s' if many else ''} "
                f"{', '.join(needed)}, which {'are' if many else 'is'} not known here",
                self.block.span,
                "pass the data arrays (init(x=X, ...)), or on the command line "
                + " ".join(f"--set {n}=2" for n in needed),
                code="R523",
            )
        self._check_rows(data or {}, sizes)
        key = repr(sorted(sizes.items()))
        if key in self._compiled:
            return self._compiled[key]
        loss, nets, applied = lower_loss(self.block, self.env, self.dtype, sizes)
        forwards = {
            name: lower_forward(
                b.network,
                b.env,
                b.options,
                applied[name],
                self.dtype,
                prefix=f"{name}.",
                span=b.span,
            )
            for name, b in nets.items()
            if name in applied
        }
        # the sample axis: the first symbolic leading size, whatever the order of the data
        first = next((s[0] for _, s in loss.inputs if s and isinstance(s[0], str)), None)
        batched = tuple(n for n, s in loss.inputs if s and first is not None and s[0] == first)
        art = compile_train(loss, forwards, self.name, self.source_name, batched)
        self._compiled[key] = (art, _load(art, self.backend_name, self.cache_dir))
        return self._compiled[key]

    # -- the contract --------------------------------------------------------------------------
    def init(self, seed: int | None = None, **data: Any) -> Params:
        """Initial weights of every net of the block (``f.h.W``, ...)."""
        art, _ = self.compile(self._data(data, need_all=False))
        seed = self._setting("seed", 0) if seed is None else self._given("seed", seed)
        return init_weights(art.weights, int(seed), self.dtype)

    def _given(self, name: str, value: Any) -> Any:
        return check_given(TRAIN_SETTINGS, name, value, f"train block '{self.name}'")

    def _keywords_only(self, entry: str, args: tuple[Any, ...]) -> None:
        """R535 for data arrays passed by position: which one is which is the name's."""
        names = ", ".join(f"{d.name}=..." for d in self.block.data)
        keywords_only(entry, args, f"{entry}(params, {names})", "the data arrays")

    def loss(self, params: Mapping[str, Any], *args: Any, **data: Any) -> float:
        """The loss on all of the data (given as keywords)."""
        self._keywords_only("loss", args)
        arrays = self._data(data)
        art, mod = self.compile(arrays)
        return float(mod.loss(pack(params, art), *(arrays[n] for n in art.entries["loss"].inputs)))

    def loss_and_grad(
        self, params: Mapping[str, Any], *args: Any, **data: Any
    ) -> tuple[float, Params]:
        """The loss on all of the data (given as keywords) and its gradient with respect to
        every weight."""
        self._keywords_only("loss_and_grad", args)
        arrays = self._data(data)
        art, mod = self.compile(arrays)
        w = pack(params, art)
        g = np.zeros_like(w)
        value = mod.loss_and_grad(w, g, *(arrays[n] for n in art.entries["loss_and_grad"].inputs))
        return float(value), unpack(g, art)

    def train(
        self,
        steps: int | None = None,
        batch: int | None = None,
        optimizer: str | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> TrainResult:
        """Run the block's optimizer. Settings of the block are defaults; keywords that name no
        data array are optimizer options (``lr=1e-2``)."""
        names = {d.name for d in self.block.data}
        data = {k: v for k, v in kwargs.items() if k in names}
        opt_kwargs = {k: v for k, v in kwargs.items() if k not in names}
        for k in opt_kwargs:
            if k not in OPTION_NAMES:
                every = [*sorted(names), "steps", "batch", "seed", "optimizer", *OPTION_NAMES]
                raise RuntimeInputError(
                    f"'{k}' is not a data array, setting or optimizer option of '{self.name}'",
                    hint=did_you_mean(k, every) or f"names: {', '.join(every)}",
                    code="R503",
                )
        for k, v in opt_kwargs.items():  # float("0.1") would read text as a number
            if isinstance(v, str | bytes):
                raise RuntimeInputError(
                    f"optimizer option '{k}' must be a number, got {v!r} (given at run time)",
                    hint=f"give e.g. {k}=0.01",
                    code="R537",
                )
        arrays = self._data(data)
        art, mod = self.compile(arrays)
        seed = int(self._setting("seed", 0) if seed is None else self._given("seed", seed))
        steps = int(self._setting("steps", 1000) if steps is None else self._given("steps", steps))
        if batch is not None:
            batch = self._given("batch", batch)
        opt = parse_optimizer(self.settings.get("optimizer"), optimizer, opt_kwargs)
        w = pack(params if params is not None else init_weights(art.weights, seed, self.dtype), art)
        order = art.entries["loss_and_grad"].inputs
        if opt.name == "lbfgs":
            if batch is not None:  # the block's own batch with lbfgs is R537 at check
                raise RuntimeInputError(
                    "lbfgs takes the whole data at every step: a batch does not apply to it",
                    hint="leave batch out, or use optimizer='adam' or 'sgd' for mini-batches",
                    code="R537",
                )
            w, history, info = run_lbfgs(mod, w, [arrays[n] for n in order], steps, opt)
            # lbfgs trains on the whole data (a block's batch too, where lbfgs is named at run
            # time): res.info says so
            info = {**info, "batch": None}
        else:
            n = arrays[art.batched[0]].shape[0] if art.batched else 1
            size = int(self._setting("batch", n) if batch is None else batch)
            w, history, info = run_first_order(
                mod, art, w, arrays, steps, min(size, n), seed, opt, progress
            )
        params_out = unpack(w, art)
        nets = {
            e.removeprefix("forward_"): BoundNet(e.removeprefix("forward_"), params_out, art, mod)
            for e in art.entries
            if e.startswith("forward_")
        }
        return TrainResult(params_out, history, nets, {**info, "optimizer": opt.name})


class BoundNet:
    """A trained net of a block: ``res.net(x)`` evaluates it with the trained weights, in the
    module the block was trained with (whose per-sample input shapes the data fixed)."""

    def __init__(self, name: str, params: Params, art: Any, mod: Any) -> None:
        self.name, self.params, self.art, self.mod = name, params, art, mod

    def __call__(self, *inputs: Any, **kwargs: Any) -> np.ndarray:
        from ..compiler.ir.ops import Input

        art, mod = self.art, self.mod
        entry = art.entries[f"forward_{self.name}"]
        what = f"net '{self.name}'"
        call = f"res.nets['{self.name}']({', '.join(entry.inputs)})"
        check_positional(what, entry.inputs, inputs, list(kwargs), call)
        arrays = [_array(n, x, art.dtype) for n, x in zip(entry.inputs, inputs, strict=True)]
        shapes = {op.name: op.shape for op in entry.program.ops if isinstance(op, Input)}
        _check_axes(what, {n: len(shapes[n]) for n in entry.inputs}, arrays)
        for n, a in zip(entry.inputs, arrays, strict=True):
            want = shapes[n]
            lead = next((i for i, d in enumerate(want) if not isinstance(d, str)), len(want))
            sample = list(want[lead:])  # the batch axes are the leading symbolic ones
            got = a.shape[lead:]
            if any(not isinstance(d, str) and d != m for d, m in zip(sample, got, strict=True)):
                raise RuntimeInputError(
                    f"input '{n}' of {what} needs per-sample shape {sample}, got shape "
                    f"{list(a.shape)}",
                    hint="the data it was trained on fixed that shape",
                    code="R533",
                )
        fn = getattr(mod, f"forward_{self.name}")
        return _with_rows(fn(pack(self.params, art), *arrays), entry, arrays)


def run_first_order(
    mod: Any,
    art: Any,
    w: np.ndarray,
    arrays: Mapping[str, np.ndarray],
    steps: int,
    batch: int,
    seed: int,
    opt: Optimizer,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Adam or SGD on a train block; mini-batches are the rows of a fresh random permutation
    per epoch (NumPy PCG64 seeded with ``seed + 1``), each row at most once per batch: the rows
    left at an epoch's end form a smaller last batch (padded with -1, which the compiled loops
    skip), as PyTorch's DataLoader without ``drop_last``."""
    n = arrays[art.batched[0]].shape[0] if art.batched else 1
    rng = np.random.default_rng(seed + 1)
    epoch, at = np.empty(0, dtype=np.int64), 0

    def rows(count: int) -> np.ndarray:
        nonlocal epoch, at
        out = np.full((count, batch), -1, dtype=np.int64)
        for s in range(count):
            if at >= epoch.size:
                epoch, at = rng.permutation(n), 0
            taken = epoch[at : at + batch]
            out[s, : taken.size] = taken
            at += taken.size
        return out

    data = [arrays[k] for k in art.batched] + [arrays[k] for k in art.whole]
    w, history = compiled_steps(mod, art, w, data, steps, rows, opt, progress)
    return w, history, {"steps": steps, "batch": batch}


def compiled_steps(
    mod: Any,
    art: Any,
    w: np.ndarray,
    data: list[Any],
    steps: int,
    rows: Any,
    opt: Optimizer,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the module's ``train_adam``/``train_sgd`` loops in chunks of up to 100 steps
    (``rows(count)`` gives each chunk's mini-batch rows), with one BLAS thread, a progress bar,
    and a stop (R540) at a non-finite loss."""
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    g = np.zeros_like(w)
    state = [np.zeros_like(w) for _ in range(2 if opt.name == "adam" else 1)]
    history = np.empty(steps, dtype=np.float64)
    bar = tqdm(total=steps, disable=not progress, desc=art.name, unit="step")
    done = 0
    dt = np.dtype(art.dtype).type
    # the bar is closed (its line ended) before an error is reported, even from the loop
    with bar, threadpool_limits(limits=1, user_api="blas"):
        while done < steps:
            count = min(100, steps - done)
            chunk = rows(count)
            losses = np.empty(count, dtype=art.dtype)
            if opt.name == "adam":
                decay = dt(opt.weight_decay)
                adam = (dt(opt.lr), dt(opt.beta1), dt(opt.beta2), dt(opt.eps), decay)
                mod.train_adam(w, g, state[0], state[1], done, *adam, chunk, losses, *data)
            else:
                sgd = (dt(opt.lr), dt(opt.momentum), dt(opt.weight_decay))
                mod.train_sgd(w, g, state[0], *sgd, chunk, losses, *data)
            history[done : done + count] = losses
            if not np.isfinite(losses).all():
                bad = done + int(np.argmin(np.isfinite(losses)))
                if bad == 0:  # the loss at the initial weights: no step was taken yet
                    raise non_finite_loss("at the initial weights", art.dtype)
                raise RuntimeInputError(
                    f"the loss became non-finite at step {bad}",
                    hint="lower the learning rate",
                    code="R540",
                )
            done += count
            bar.update(count)
            bar.set_postfix(loss=f"{losses[-1]:.3g}")
    return w, history


__all__ = ["NetworkHandle", "TrainHandle", "TrainResult", "init_weights"]
