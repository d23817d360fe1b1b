"""The ordered pass lists, one per problem kind and method: the one page to read.

PDE, method fd, explicit scheme:
  lower       (compiler.lower.pde)  checked PdeProblem -> Program of right-hand sides (Diff ops)
  discretise  Diff -> centred finite-difference stencils of Shift ops, weights from SymPy
  simplify    inline Maps into Maps: every value one Map over leaves and Shift chains
  integrate   right-hand sides -> the stage updates of the Butcher tableau (fused combinations)
  simplify    flatten the stage combinations into the right-hand sides
  fuse        stage Program -> KernelGroup: one stencil loop nest per stage, ghost/wrap kernels

PDE, method fd, explicit scheme, discrete adjoint (sol.vjp): lower, discretise, simplify, then
  adjoint      right-hand sides -> also their vjps (rule table: one reverse sweep)
  fuse_adjoint the explicit step's group (integrate, flatten, fuse inside) plus the entries
               adjoint_step (the step's stages transposed, last first) and adjoint_initial

PDE, method fd, implicit scheme, adjoint: as implicit with ``adjoint`` after theta (vjps of the
  explicit half, its first-step variant and the residual); fuse_steady adds the entries
  adjoint_residual, adjoint_explicit, adjoint_start and adjoint_initial

PDE, method fd, steady, adjoint: as steady with ``adjoint`` (parameters only) before linearize;
  fuse_steady adds the entry param_vjp ((dR/dp)^T lambda, cell by cell)

PDE, method fd, steady (no time line): lower, discretise, simplify, then
  linearize   residuals -> residuals and their exact Jacobian-vector products (rule table)
  flatten     as simplify
  fuse_steady KernelGroup with entries `residual` and `jvp` for the Newton driver

PDE, method fd, implicit scheme (cn, imex): lower, discretise, simplify, then
  theta       right-hand sides -> the explicit half of the step and the implicit residual
              (imex: split symbolically into the part linear in the state and the rest)
  linearize, flatten as for steady problems
  fuse_steady the same entries plus `explicit`, run once per step before the Newton solve
"""

from __future__ import annotations

from .adjoint import adjoint
from .discretise import discretise
from .integrate import integrate
from .linearize import linearize
from .manager import Pass
from .simplify import simplify
from .theta import theta

PDE_FD_EXPLICIT: tuple[Pass, ...] = (
    Pass("discretise", discretise, "Diff -> finite-difference stencils of Shift ops"),
    Pass("simplify", simplify, "inline Maps into Maps"),
    Pass("integrate", integrate, "right-hand sides -> fused Runge-Kutta stage updates"),
    Pass("flatten", simplify, "flatten stage combinations into the right-hand sides"),
)

PDE_FD_ADJOINT: tuple[Pass, ...] = (
    Pass("discretise", discretise, "Diff -> finite-difference stencils of Shift ops"),
    Pass("simplify", simplify, "inline Maps into Maps"),
    Pass("adjoint", adjoint, "right-hand sides -> also their vector-Jacobian products"),
    Pass("flatten", simplify, "flatten the transposed Maps into single Maps"),
)

PDE_FD_STEADY_ADJOINT: tuple[Pass, ...] = (
    Pass("discretise", discretise, "Diff -> finite-difference stencils of Shift ops"),
    Pass("simplify", simplify, "inline Maps into Maps"),
    Pass("adjoint", adjoint, "residuals -> also their vjps for the parameters"),
    Pass("linearize", linearize, "residuals -> residuals and Jacobian-vector products"),
    Pass("flatten", simplify, "flatten the derivative Maps into single Maps"),
)

PDE_FD_IMPLICIT_ADJOINT: tuple[Pass, ...] = (
    Pass("discretise", discretise, "Diff -> finite-difference stencils of Shift ops"),
    Pass("simplify", simplify, "inline Maps into Maps"),
    Pass("theta", theta, "right-hand sides -> explicit half step and implicit residual"),
    Pass("adjoint", adjoint, "the step's parts -> also their vjps"),
    Pass("linearize", linearize, "residuals -> residuals and Jacobian-vector products"),
    Pass("flatten", simplify, "flatten the derivative Maps into single Maps"),
)

PDE_FD_STEADY: tuple[Pass, ...] = (
    Pass("discretise", discretise, "Diff -> finite-difference stencils of Shift ops"),
    Pass("simplify", simplify, "inline Maps into Maps"),
    Pass("linearize", linearize, "residuals -> residuals and Jacobian-vector products"),
    Pass("flatten", simplify, "flatten the derivative Maps into single Maps"),
)

PDE_FD_IMPLICIT: tuple[Pass, ...] = (
    Pass("discretise", discretise, "Diff -> finite-difference stencils of Shift ops"),
    Pass("simplify", simplify, "inline Maps into Maps"),
    Pass("theta", theta, "right-hand sides -> explicit half step and implicit residual"),
    Pass("linearize", linearize, "residuals -> residuals and Jacobian-vector products"),
    Pass("flatten", simplify, "flatten the derivative Maps into single Maps"),
)

PASS_NAMES = (
    "lower",
    "discretise",
    "simplify",
    "integrate",
    "theta",
    "adjoint",
    "linearize",
    "flatten",
    "fuse",
)
