"""``ritz check``'s second pass: lower the blocks whose shapes the file alone fixes, so that shape
errors (a network that returns the wrong size, a loss that is not a number, a dense layer on a
matrix) are reported without data and without compiling anything.

A train block is lowered when every size of its data but the leading (sample) ones is a number,
a network when every input size is, a bilevel block of objectives when every data size is, and
every ``solve pinn`` line always (its point sets have the problem's dimension). Blocks whose
sizes come from data are checked when the data arrive; the report names them.
"""

from __future__ import annotations

from typing import Any

import sympy

from ..dsl import ast as A


def _literal(decl: A.TensorDecl, env: Any, leading: bool) -> bool:
    dims = decl.shape[1:] if leading else decl.shape
    consts = {sympy.Symbol(k): v for k, v in env.consts.items()}
    return all(d.value.xreplace(consts).is_Integer for d in dims)


def check_shapes(module: Any) -> list[str]:
    """Lower what the file fixes (raising the first RitzError found); return the names of the
    blocks left for run time."""
    from ..compiler.lower.bilevel import lower_bilevel
    from ..compiler.lower.pinn import lower_pinn
    from ..compiler.lower.train import lower_loss
    from .api import PdeHandle
    from .bilevel import BilevelHandle
    from .networks import NetworkHandle, TrainHandle
    from .optimizers import parse_optimizer

    later = []
    for name in module.names:
        handle = module[name]
        if isinstance(handle, TrainHandle):
            if all(_literal(d, handle.env, True) for d in handle.block.data):
                lower_loss(handle.block, handle.env, handle.dtype, {})
            else:
                later.append(name)
        elif isinstance(handle, NetworkHandle):
            if all(_literal(d, handle.env, False) for d in handle.block.inputs):
                handle.lower()
            else:
                later.append(name)
        elif isinstance(handle, BilevelHandle):
            literal = all(_literal(d, handle.env, False) for d in handle.block.data)
            if handle.block.lower_solutions:
                pass  # its shapes are the pde's solution's: checked when it runs
            elif literal:
                lower_bilevel(handle.block, handle.env, handle.dtype, {})
            else:
                later.append(name)
        elif isinstance(handle, PdeHandle):
            for solve in handle.problem.solves:
                if solve.method == "pinn":
                    line = solve.options.get("optimizer")
                    if line is not None:  # its name and options (R537), as run time checks them
                        span = solve.option_spans.get("optimizer")
                        parse_optimizer(A.Keyword("optimizer", line, span), None, {})
                    options = dict(solve.options)
                    lower_pinn(handle.problem, options, handle.env, options.get("dtype", "float32"))
    return later


__all__ = ["check_shapes"]
