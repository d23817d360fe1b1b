"""Optimizer settings of train blocks (``adam``, ``sgd``, ``lbfgs``) and the L-BFGS driver.

Adam and SGD run inside the compiled training loops (``train_adam``/``train_sgd`` of the
generated module); L-BFGS is SciPy's L-BFGS-B on full-batch losses and gradients from the same
compiled ``loss_and_grad``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..dsl import ast as A
from ..dsl.check.blocks import OPTIMIZER_OPTIONS, optimizer_option_problem
from ..dsl.diagnostics import RuntimeInputError, did_you_mean


@dataclass(frozen=True)
class Optimizer:
    """Every optimizer's options with their defaults (PyTorch's, for Adam and SGD)."""

    name: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    momentum: float = 0.0
    weight_decay: float = 0.0  # L2: decay * w added to the gradient (adam, sgd; as PyTorch)
    history: int = 10
    tol: float = 1e-12


OPTIONS = OPTIMIZER_OPTIONS
RUN_TIME = object()  # where an option given from Python or --set was written: nowhere
OPTION_NAMES = tuple(sorted({k for keys in OPTIONS.values() for k in keys}))  # of any optimizer


def _number(value: Any, name: str, span: Any, late: str = "") -> float:
    try:
        if isinstance(value, bool | np.bool_ | str | bytes):  # True or "0.1" are no numbers
            raise TypeError
        out = float(value)
    except (TypeError, ValueError):
        raise RuntimeInputError(
            f"optimizer option '{name}' must be a number{late}", span, code="R537"
        ) from None
    if not np.isfinite(out) or out < 0:
        raise RuntimeInputError(
            f"optimizer option '{name}' must be a non-negative number, got {value}{late}",
            span,
            code="R537",
        )
    return out


def parse_optimizer(
    setting: A.Keyword | None, name: str | None, overrides: Mapping[str, Any]
) -> Optimizer:
    """The block's ``optimizer`` line, then ``name`` and keyword overrides from Python."""
    opt = Optimizer()
    span = setting.span if setting is not None else None
    given: dict[str, Any] = {}
    if setting is not None:
        value = setting.value
        if isinstance(value, A.Call):
            span = value.span or span
            opt = replace(opt, name=value.name)
            if value.args:
                raise RuntimeInputError(
                    f"optimizer '{value.name}' takes its options as keywords",
                    value.span or span,
                    f"e.g. {value.name}({OPTIONS.get(value.name, ('lr',))[0]} = ...)",
                    code="R537",
                )
            for kw in value.kwargs:
                if isinstance(kw.value, A.Call):
                    raise RuntimeInputError(
                        f"optimizer option '{kw.name}' must be a number", kw.span, code="R537"
                    )
                given[kw.name] = (kw.value.value, kw.span)
        else:  # a bare name: an Expression holding a Symbol, or already a string (solve options)
            opt = replace(opt, name=str(value if isinstance(value, str) else value.value))
    if name is not None:
        if name not in OPTIONS:
            raise RuntimeInputError(
                f"unknown optimizer '{name}'",
                hint=f"use one of {', '.join(OPTIONS)}",
                code="R537",
            )
        if name != opt.name:  # the block's options belong to its own optimizer
            given = {}
        opt = replace(opt, name=name)
    if opt.name not in OPTIONS:  # the checker reports train blocks; a solve line's is not
        raise RuntimeInputError(
            f"unknown optimizer '{opt.name}'",
            span,
            did_you_mean(opt.name, OPTIONS) or f"use one of {', '.join(OPTIONS)}",
            code="R537",
        )
    given.update({k: (v, RUN_TIME) for k, v in overrides.items()})
    allowed = OPTIONS[opt.name]
    values: dict[str, Any] = {}
    for key, (value, where) in given.items():
        # an option given at run time has no place in the file: the message says so instead
        late = " (given at run time)" if where is RUN_TIME else ""
        at = None if where is RUN_TIME else where or span
        if key not in allowed:
            raise RuntimeInputError(
                f"'{key}' is not an option of {opt.name}{late}",
                at,
                did_you_mean(key, allowed) or f"{opt.name} takes {', '.join(allowed)}",
                code="R537",
            )
        kind = {f.name: f.type for f in fields(Optimizer)}[key]
        number = _number(value, key, at, late)
        problem = optimizer_option_problem(key, number)
        if problem is not None:
            raise RuntimeInputError(f"{problem}, got {value}{late}", at, code="R537")
        values[key] = int(number) if kind == "int" else number
    return replace(opt, **values)


def run_lbfgs(
    mod: Any, w: np.ndarray, data: list[np.ndarray], steps: int, opt: Optimizer
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Full-batch L-BFGS-B: at most ``steps`` iterations; the loss is recorded per evaluation.
    A non-finite loss is a very bad point (see ``_bad_value``) that the line search backs away
    from; a non-finite loss at the start or at the end is R540, as for Adam and SGD."""
    from scipy.optimize import minimize

    dtype = w.dtype
    g = np.zeros_like(w)
    history: list[float] = []
    finite: dict[bytes, bool] = {}  # by point: was the loss there finite

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        wx = np.ascontiguousarray(x, dtype=dtype)
        value = float(mod.loss_and_grad(wx, g, *data))
        history.append(value)
        finite[x.tobytes()] = ok = bool(np.isfinite(value) and np.isfinite(g).all())
        if ok:
            return value, g.astype(np.float64)
        if len(history) == 1:
            raise non_finite_loss("at the initial weights", dtype.name)
        return _bad_value(history), np.zeros_like(x)

    res = minimize(
        fun,
        w.astype(np.float64),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": steps, "maxcor": opt.history, "ftol": opt.tol, "gtol": 0.0},
    )
    if not finite.get(np.asarray(res.x, dtype=np.float64).tobytes(), True):
        raise non_finite_loss(f"at the weights L-BFGS stopped at ({res.message})", dtype.name)
    info = {"steps": int(res.nit), "evaluations": int(res.nfev), "message": str(res.message)}
    if not all(finite.values()):
        info["non_finite_evaluations"] = sum(not f for f in finite.values())
    return np.ascontiguousarray(res.x, dtype=dtype), np.asarray(history), info


def _bad_value(history: list[float]) -> float:
    """What L-BFGS-B sees at a point where the loss (or its gradient) is not finite: well above
    every finite loss so far, with gradient zero, so that its line search shortens the step (a
    NaN would end the search; an infinity breaks its interpolation)."""
    worst = max(abs(v) for v in history if np.isfinite(v))
    return 2.0 * worst + 1.0


def non_finite_loss(where: str, dtype: str) -> RuntimeInputError:
    """R540 for a loss that is not finite at given weights (the initial ones, or where L-BFGS
    stopped), whatever the optimizer: its cause is the loss's domain or the data's scale."""
    hint = (
        "check the loss's domain (a log or sqrt of a negative value, a division by zero) and "
        f"the scale of the data ({dtype} overflows past {float(np.finfo(dtype).max):.2g}, a "
        "square past its root)"
    )
    if np.dtype(dtype) == np.float32:
        hint += ", or train in float64 (dtype float64)"
    return RuntimeInputError(f"the loss is not finite {where}", hint=hint, code="R540")


__all__ = ["Optimizer", "non_finite_loss", "parse_optimizer", "run_lbfgs"]
