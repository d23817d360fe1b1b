"""The derived adjoint in readable form (``ritz show --adjoint``)."""

from __future__ import annotations

import sympy

from ..ir.program import Program
from ..kernels import Read
from ..symbolic import interior_symbol
from .adjoint import cotangent
from .fuse import FuseInput, coord_symbol, face_ghosts, grid_of, param_symbol, read_symbol
from .transpose import (
    Lowering,
    adjoint_params,
    face_of,
    ghost_parameter_derivatives,
    primal_rule,
    shifted_by,
    split_folds,
)


def adjoint_equations(prog: Program, info: FuseInput, title: str) -> str:
    """The derived adjoint in readable form: per field, the transposed right-hand side
    mu = (df/du)^T w as a gather over neighbours plus the folds at each face, and per
    parameter its cell-by-cell term (the output of ``ritz show --adjoint``)."""
    ndim = grid_of(prog).ndim
    index = "ijk"[:ndim]

    def readable(expr: sympy.Expr, lowering: Lowering, at: tuple[int, ...]) -> str:
        subs = {}
        for (buffer, offsets), read in lowering.reads.items():
            parts = []
            for a, o in enumerate(offsets):
                o += at[a] if at else 0
                parts.append(index[a] + (f"{o:+d}" if o else ""))
            subs[read.symbol] = sympy.Symbol(f"{buffer}[{','.join(parts)}]")
        for a, name in enumerate(info.axes):
            subs[sympy.Symbol(f"h{a}", real=True)] = sympy.Symbol(f"h_{name}")
            subs[coord_symbol(a)] = sympy.Symbol(name)
        subs |= {param_symbol(p): sympy.Symbol(p) for p in info.params}
        return str(sympy.factor_terms(sympy.expand(expr.xreplace(subs))))

    origin = (0,) * ndim

    def describe(
        label: str, value: int, rename: dict[str, str], gather: bool = True, sign: str = "+"
    ) -> None:
        """The value's gather and folds; without ``gather`` (a residual transposed only for
        its boundary parameters), the parameters' ghost terms alone, added with ``sign``."""
        lowering = Lowering(prog, rename)
        expr, terms = split_folds(lowering.at(value, origin), lowering)
        if gather and not (expr == 0 and label.startswith("dL/d")):  # not a boundary's alone
            lines.append(f"  {label} {readable(expr, lowering, origin)}")
        for coef, fold in terms:
            side = "hi" if fold.offset > 0 else "lo"
            face = face_of(prog.boundaries[fold.boundary].faces[fold.axis], side)
            ghosts = face_ghosts(face, fold.axis, side, abs(fold.offset), info, False)
            derivs = ghost_parameter_derivatives(prog, fold, side, info, params)
            inward = 1 if side == "lo" else -1
            inner = Lowering(prog, rename, fold_allowed=False)
            where = f"on the {side} face of {info.axes[fold.axis]}"
            field = primal_rule(prog, fold.boundary).field
            cells = {}
            for m in range(face.degree):
                offsets = tuple(inward * m if a == fold.axis else 0 for a in range(ndim))
                key = (rename.get(field, field), offsets)
                inner.reads.setdefault(key, Read(read_symbol(*key), *key))
                cells[interior_symbol(m)] = inner.reads[key].symbol
            for j in range(1, abs(fold.offset) + 1):
                reader = shifted_by(fold.shift, fold.axis, inward * (abs(fold.offset) - j))
                x = inner.at(fold.arg, reader)
                for m in range(face.degree) if gather else ():
                    w = sympy.diff(ghosts[j - 1], interior_symbol(m))
                    if w != 0:
                        cell = "the cell next to it" if m == 0 else f"cell {m + 1} from it"
                        lines.append(f"    + {where}, {cell}: {readable(coef * w * x, inner, ())}")
                for p, d in derivs[j - 1].items():
                    term = readable(coef * d.xreplace(cells) * x, inner, ())
                    lines.append(f"    dL/d{p} {sign}= {where}, summed along it: {term}")

    cells = ",".join(index)
    params = adjoint_params(prog, info)
    lines = [title]
    if any(name.startswith("vjp_") for name in prog.outputs):  # an implicit step
        from .theta import history_buffer, rhs_buffer

        for kind, when in (("explicit", "every step"), ("start", "a first step")):
            if f"vjp_{kind}:{info.fields[0]}" not in prog.outputs:
                continue
            lines.append(f"  {when}, with the old state (b: the explicit half, at t):")
            rename = {f"bar:{kind}:{rhs_buffer(f)}": f"mu_{f}" for f in info.fields}
            rename |= {f"bar:{kind}:{history_buffer(f)}": f"lh_{f}" for f in info.fields}
            for f in info.fields:
                describe(f"lambda_{f}[{cells}] =", prog.outputs[f"vjp_{kind}:{f}"], rename)
                if f"vjp_{kind}:{history_buffer(f)}" in prog.outputs:
                    value = prog.outputs[f"vjp_{kind}:{history_buffer(f)}"]
                    describe(f"lh_{f}[{cells}] (history) =", value, rename)
            for p in params:
                if f"vjp_{kind}:{p}" in prog.outputs:
                    describe(
                        f"dL/d{p} += sum over cells of", prog.outputs[f"vjp_{kind}:{p}"], rename
                    )
        lines.append("  with the new state (at t + dt):")
        rename = {f"bar:res:{f}": f"mu_{f}" for f in info.fields}
        for p in params:
            if f"vjp_res:{p}" in prog.outputs:
                describe(f"dL/d{p} -= sum over cells of", prog.outputs[f"vjp_res:{p}"], rename)
        for f in info.fields:  # the residual's own boundary parameters (subtracted too)
            if f"vjp_res:{f}" in prog.outputs:
                describe("", prog.outputs[f"vjp_res:{f}"], rename, gather=False, sign="-")
        return "\n".join(lines) + "\n"
    steady = any(name.startswith("res:") for name in prog.outputs)
    rename = {cotangent(f, steady): f"w_{f}" for f in info.fields}
    if steady and not params:
        lines.append("  (no parameters: the gradient is lambda itself)")
    for f in info.fields:
        if f"vjp:{f}" in prog.outputs:  # steady: transposed only for boundary parameters
            sign = "-" if steady else "+"
            describe(f"mu_{f}[{cells}] =", prog.outputs[f"vjp:{f}"], rename, not steady, sign)
    for p in params:
        if f"vjp:{p}" in prog.outputs:
            label = f"dL/d{p} = -sum over cells of" if steady else f"dL/d{p} += sum over cells of"
            describe(label, prog.outputs[f"vjp:{p}"], rename)
    return "\n".join(lines) + "\n"
