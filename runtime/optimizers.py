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
    history: int = 10
    tol: float = 1e-12


OPTIONS = OPTIMIZER_OPTIONS
OPTION_NAMES = tuple(sorted({k for keys in OPTIONS.values() for k in keys}))  # of any optimizer


def _number(value: Any, name: str, span: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RuntimeInputError(
            f"optimizer option '{name}' must be a number", span, code="R537"
        ) from None
    if not np.isfinite(out) or out < 0:
        raise RuntimeInputError(
            f"optimizer option '{name}' must be a non-negative number, got {value}",
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
    given.update({k: (v, None) for k, v in overrides.items()})
    allowed = OPTIONS[opt.name]
    values: dict[str, Any] = {}
    for key, (value, where) in given.items():
        if key not in allowed:
            raise RuntimeInputError(
                f"'{key}' is not an option of {opt.name}",
                where or span,
                did_you_mean(key, allowed) or f"{opt.name} takes {', '.join(allowed)}",
                code="R537",
            )
        kind = {f.name: f.type for f in fields(Optimizer)}[key]
        number = _number(value, key, where or span)
        problem = optimizer_option_problem(key, number)
        if problem is not None:
            raise RuntimeInputError(f"{problem}, got {value}", where or span, code="R537")
        values[key] = int(number) if kind == "int" else number
    return replace(opt, **values)


def run_lbfgs(
    mod: Any, w: np.ndarray, data: list[np.ndarray], steps: int, opt: Optimizer
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Full-batch L-BFGS-B: at most ``steps`` iterations; the loss is recorded per evaluation."""
    from scipy.optimize import minimize

    dtype = w.dtype
    g = np.zeros_like(w)
    history: list[float] = []

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        wx = np.ascontiguousarray(x, dtype=dtype)
        value = float(mod.loss_and_grad(wx, g, *data))
        history.append(value)
        return value, g.astype(np.float64)

    res = minimize(
        fun,
        w.astype(np.float64),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": steps, "maxcor": opt.history, "ftol": opt.tol, "gtol": 0.0},
    )
    info = {"steps": int(res.nit), "evaluations": int(res.nfev), "message": str(res.message)}
    return np.ascontiguousarray(res.x, dtype=dtype), np.asarray(history), info


__all__ = ["Optimizer", "parse_optimizer", "run_lbfgs"]
