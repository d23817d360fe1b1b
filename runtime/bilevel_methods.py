"""The bilevel methods besides the implicit function theorem, on the same compiled entries.

``unroll(k = K)``: the lower level is K projected gradient steps from its initial values,
``x_{t+1} = P(x_t - eta R(x_t, y))``, and the hypergradient is reverse mode through them: the
stored iterates are replayed backwards with the derived products ``J^T u`` and ``(dR/dy)^T u``.
It is the exact derivative of the K-step map (so it agrees with differences of whole unrolled
solves), and it needs no lower level that converges, nor an invertible J.

``penalty(rho = r)``: the first-order value-function penalty method. With g the lower objective
and g*(y) = min_x g(x, y), the penalty function ``L_r(y) = min_x F(x, y) + r (g(x, y) - g*(y))``
has a gradient of first derivatives only: ``F_y(x_r, y) + r (g_y(x_r, y) - g_y(x*, y))``, with
``x_r`` the minimiser of ``F + r g`` and ``x*`` the lower solution, both found by L-BFGS-B
within the bounds. L_r differs from F(x*(y), y) by O(1/r); the upper level minimises the
Richardson extrapolation ``2 L_2r - L_r``, which differs by O(1/r^2).

rho is in units of F per unit of g: ``rho = auto`` is a dimensionless value times the ratio of
F's scale to g's (``PenaltyProblem.unit``), so that scaling the lower objective by a constant
(``1e12 * (...)``) scales rho inversely and gives the same hypergradient. A rho given as a
number is used as written.
"""

from __future__ import annotations

import numpy as np

from ..dsl.check.common import most_rho, rho_beyond, unroll_beyond
from ..dsl.diagnostics import RuntimeInputError
from .bilevel import _Problem


def _projected_step(x: np.ndarray, step: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """The length of the step from x to clip(x - step) (zero at a box-constrained stationary
    point for a gradient step; inf where it overflows), without forming x - step: a step below
    the rounding of x (the gradient of an objective scaled by 1e-12) keeps its length instead
    of counting as none, so that tolerances relative to the objective's scale are reached."""
    with np.errstate(over="ignore", invalid="ignore"):
        kept = np.where(step > 0, np.minimum(step, x - lo), np.maximum(step, x - hi))
        return float(np.linalg.norm(kept))


class UnrollProblem(_Problem):
    """Reverse mode through ``k`` projected gradient steps of the lower level."""

    def step_size(self, x: np.ndarray) -> float:
        """``inner_lr``, or 1 / |J|_2 at this evaluation's starting point (power iteration on
        J^T J): the curvature may depend on y (``exp(lam) * sum(w^2)``), so a step sized once
        would diverge elsewhere. The step is a constant of the differentiation (its own
        dependence on y is not differentiated)."""
        given = self.options.get("inner_lr", "auto")
        return float(given) if given != "auto" else 1.0 / self._norm_of_j(x)

    def _diverged(self, eta: float, why: str) -> None:
        raise RuntimeInputError(
            f"the {self.options['k']} unrolled steps of '{self.handle.name}' do not converge "
            f"with the step {eta:.3g}: {why}",
            self.handle._method_span,
            "give a smaller step ('inner_lr = ...'), or leave it to 'auto'"
            if self.options.get("inner_lr", "auto") != "auto"
            else "give a smaller step ('inner_lr = ...'): 'auto' sizes it from the curvature "
            "at the initial point, and the curvature grows on the way",
            code="R542",
        )

    def _norm_of_j(self, w: np.ndarray) -> float:
        rng = np.random.default_rng(0)
        v = np.where(self.lower_mask, rng.standard_normal(w.size), 0.0).astype(w.dtype)
        v /= np.linalg.norm(v)
        sigma = 0.0
        for _ in range(50):
            _, jv = self.call("residual_jvp", w, v)
            _, jtjv = self.call("residual_vjp", w, np.where(self.lower_mask, jv, 0.0))
            jtjv = np.where(self.lower_mask, jtjv, 0.0)
            norm = float(np.linalg.norm(jtjv))
            if not np.isfinite(norm) or norm == 0.0:
                break
            previous, sigma = sigma, np.sqrt(norm)
            v = (jtjv / norm).astype(w.dtype)
            if abs(sigma - previous) <= 1e-4 * sigma:
                break
        if not np.isfinite(sigma) or sigma == 0.0:
            raise RuntimeInputError(
                f"the lower level of '{self.handle.name}' has no curvature at its initial point "
                "to size the unrolled steps from",
                self.handle._method_span,
                "give the step: 'unroll(k = ..., inner_lr = ...)'",
                code="R542",
            )
        return sigma

    def _storage(self, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The k iterates and inside-the-bounds masks the reverse pass replays, allocated before
        the first step: R538 where they would take more than half of the machine's memory (as
        ``ritz check`` reports it where the file gives k and the sizes), or where the allocation
        fails all the same (a process limit), never a MemoryError part way."""
        beyond = unroll_beyond(k, size)
        if beyond is None:
            try:
                return np.empty((k, size)), np.empty((k, size), dtype=bool)
            except MemoryError:
                beyond = unroll_beyond(k, size, failed=True)
        assert beyond is not None
        raise RuntimeInputError(beyond[0], self.handle._method_span, beyond[1], code="R538")

    def value_and_hypergrad(self, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        lower = self.lower_mask
        x = np.where(lower, self.initial(), w)  # every evaluation starts from the initial values
        eta = self.step_size(x)
        k = int(self.options["k"])
        lo, hi = self.lo[lower], self.hi[lower]
        iterates, inside = self._storage(k, x.size)
        start = None
        steps: list[np.ndarray] = []  # the last two projected steps, to see a bounce
        for t in range(k):
            _, r = self.call("residual", x)
            steps = [*steps[-1:], np.where(lower, r, 0.0)]
            z = np.where(lower, x - eta * r, x)
            if start is None:
                start = _projected_step(x[lower], eta * r[lower], lo, hi)
            inside[t] = ~lower | ((z > self.lo) & (z < self.hi))
            iterates[t] = x
            x = np.clip(z, self.lo, self.hi)
            if not np.all(np.isfinite(x)):
                self._diverged(eta, "its iterates overflow")
        _, r = self.call("residual", x)
        end = _projected_step(x[lower], eta * r[lower], lo, hi)
        if start is not None and not end <= start:  # a step too long oscillates, even in a box
            self._diverged(eta, f"its projected step grew from {start:.3g} to {end:.3g}")
        if start and len(steps) == 2 and end > 0.5 * start:
            a, b = steps
            cosine = float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-300)
            if cosine < -0.5:  # the last steps point back and forth: a two-point bounce
                self._diverged(eta, "its iterates bounce between two points")
        value, g = self.call("upper", x)
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            self._diverged(eta, "the upper objective is not finite at its end")
        adj = np.where(lower, g, 0.0)  # d F / d x_k
        grad = np.where(lower, 0.0, g)  # d F / d y, accumulated over the steps
        for xt, keep in zip(iterates[::-1], inside[::-1], strict=True):
            a = np.where(keep & lower, adj, 0.0)
            _, both = self.call("residual_vjp", xt, a)  # J^T a below, (dR/dy)^T a above
            adj = a - eta * np.where(lower, both, 0.0)
            grad = grad - eta * np.where(lower, 0.0, both)
        self.solves += 1
        return self.sign * value, self.sign * grad, x, self.sign * value


# the distance (relative to |x*|, at least 1) beyond which x_rho is too far from the lower
# solution for the penalty's 1/rho expansion: measured on ridge, 3e-3 gives a relative error
# of 7e-5 at rho = 1e4, 2e-2 one of 2e-2, and 0.3 a hypergradient of the wrong sign
DISPLACED = 1e-3


class PenaltyProblem(_Problem):
    """The value-function penalty method: three first-order lower solves per evaluation (the
    lower solution and the minimisers at rho and 2 rho)."""

    x_rho: np.ndarray | None = None
    unit: float | None = None  # rho's unit: F's scale over g's, fixed at the first evaluation

    def _scale_of(self, entry: str, w: np.ndarray, probe: np.ndarray, size: float) -> float:
        """The scale of an objective's gradient in the lower variables at ``w``: its norm, or
        the change a relative step of one along the unit ``probe`` makes at its curvature
        (``|H p| max(|x|, 1)``, by a difference of gradients), whichever is larger. Scaling
        the objective by a constant scales this alike."""
        lower = self.lower_mask
        _, grad = self.call(entry, w)
        step = float(np.sqrt(np.finfo(self.art.dtype).eps)) * size
        moved = np.where(lower, np.clip(w + step * probe, self.lo, self.hi), w)
        length = float(np.linalg.norm((moved - w)[lower]))
        curvature = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            if length > 0.0:
                _, other = self.call(entry, moved)
                curvature = float(np.linalg.norm((other - grad)[lower])) / length
            return max(float(np.linalg.norm(grad[lower])), curvature * size)

    def _unit(self, w: np.ndarray) -> float:
        """rho's unit at the start ``w``: the scale of F's gradient over g's (``_scale_of``,
        along the fixed random probe of ``reference_norm``), 1 where either says nothing (no
        gradient and no curvature, or not finite). ``rho = auto`` is tol^(-2/5) times it: the
        displacement of x_rho, |F_x| / (rho |g_xx|), and the rounding of rho (g_y(x_rho) -
        g_y(x*)) stay those of the unscaled problem when g is scaled by a constant, where a rho
        fixed in g's units made F + rho g either g alone (1e12 g: x_rho was x* to the last bit,
        a hypergradient of exactly 0) or F alone (1e-12 g: R542)."""
        lower = self.lower_mask
        probe = self.probe(lower)
        size = max(float(np.linalg.norm(w[lower])), 1.0)
        upper = self._scale_of("upper", w, probe, size)
        lower_scale = self._scale_of("lower_objective", w, probe, size)
        unit = upper / lower_scale if lower_scale > 0.0 else 0.0
        return unit if np.isfinite(unit) and unit > 0.0 else 1.0

    def dimensionless(self) -> float:
        """rho in units of F per unit of g (``_unit``): what the 1/rho expansion and the
        rounding of the difference of g_y depend on."""
        return self.rho() / (self.unit or 1.0)

    def _minimise(self, w: np.ndarray, rho: float | None) -> tuple[np.ndarray, float, np.ndarray]:
        """Minimise g (``rho`` None) or F + rho g over the lower variables by L-BFGS-B within
        the bounds, to ``tol`` of the first solve's initial gradient norm (rho times it for
        F + rho g, so both minimisers are equally accurate), then further where rounding allows.
        Returns the minimiser, g there and g's full gradient there."""
        from scipy.optimize import minimize

        idx = np.flatnonzero(self.lower_mask)
        lo, hi = self.lo[idx], self.hi[idx]
        full = w.astype(self.art.dtype, copy=True)
        cache: dict[bytes, tuple[float, np.ndarray, float, np.ndarray]] = {}

        def evaluate(xl: np.ndarray) -> tuple[float, np.ndarray, float, np.ndarray]:
            key = xl.tobytes()
            if key not in cache:
                full[idx] = xl
                g_value, g_grad = self.call("lower_objective", full)
                value, grad = g_value, g_grad
                if rho is not None:
                    f_value, f_grad = self.call("upper", full)
                    value, grad = f_value + rho * g_value, f_grad + rho * g_grad
                cache.clear()
                cache[key] = (value, grad[idx].astype(np.float64), g_value, g_grad)
            return cache[key]

        def fun(xl: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad, _, _ = evaluate(xl)
            return value, grad

        x0 = w[idx].astype(np.float64)
        _, grad0, _, _ = evaluate(x0)
        if self.ref_norm is None:
            self.ref_norm = self.reference_norm(full, _projected_step(x0, grad0, lo, hi))
        target = float(self.options["tol"]) * self.ref_norm * (1.0 if rho is None else rho)
        steps = int(self.options.get("inner_steps", 1000))
        bounds = list(zip(lo, hi, strict=True))
        bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b) for a, b in bounds]
        res = minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={
                "maxiter": steps,
                "ftol": 0.0,
                "gtol": target / np.sqrt(idx.size),
                "maxcor": 20,
            },
        )
        x = res.x
        _, grad, _, _ = evaluate(x)
        norm = _projected_step(x, grad, lo, hi)
        # L-BFGS-B's line search stops where the objective's rounding hides its decrease
        # (a relative gradient of about 1e-9). Projected Barzilai-Borwein steps use gradients
        # alone: they reach tol, and go on towards tol / rho as far as rounding allows, since
        # the hypergradient's difference of g_y amplifies the minimisers' errors by rho.
        goal = target / self.dimensionless()
        best, best_norm, since = x, norm, 0
        # a first step of 1e-6 relative to x along the projected gradient; BB then sizes the
        # steps by the curvature it sees
        alpha = 1e-6 * max(float(np.linalg.norm(x)), 1.0) / max(norm, 1e-300)
        for _ in range(steps):
            if best_norm <= goal or (best_norm <= target and since >= 30):
                break
            trial = np.clip(x - alpha * grad, lo, hi)
            _, t_grad, _, _ = evaluate(trial)
            s, y = trial - x, t_grad - grad
            if not np.any(s):
                break  # a step below rounding: nothing moves any more
            sy = float(s @ y)
            alpha = float(s @ s) / sy if sy > 0 else alpha
            x, grad = trial, t_grad
            norm = _projected_step(x, grad, lo, hi)
            if not np.isfinite(norm):
                break
            if norm < best_norm:
                best, best_norm, since = x, norm, 0
            else:
                since += 1
        x, norm = best, best_norm
        _, _, g_value, g_grad = evaluate(x)
        if norm > target:
            what = "lower level" if rho is None else f"penalised lower level (rho = {rho:.3g})"
            raise RuntimeInputError(
                f"the {what} of '{self.handle.name}' did not converge in {steps} steps "
                f"(projected gradient {norm:.3g}, target {target:.3g})",
                self.handle._method_span,
                "raise inner_steps, or loosen tol",
                code="R542",
            )
        full[idx] = x
        return full, float(g_value), g_grad

    # rho = auto (dimensionless), raised for a lower level that needs more
    raised: float | None = None

    def _settle_rho(
        self, start: np.ndarray, x_star: np.ndarray
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """The penalised minimiser at rho, after making sure the 1/rho expansion holds there:
        x_rho must lie within DISPLACED (relative) of the lower solution x*. Its distance is
        about |F_x| / (rho lambda_min(g_xx)): an ill-conditioned lower level (ridge with more
        features than samples and a small regulariser) puts x_rho far away, where the
        extrapolation returns numbers of the wrong sign. rho = auto is then raised to bring
        the distance to DISPLACED / 5 (at most to the dtype's limit); auto at its limit that
        still leaves it beyond 10 DISPLACED, or a given rho beyond 100 DISPLACED, is R542."""
        lower = self.lower_mask
        scale = max(float(np.linalg.norm(x_star[lower])), 1.0)
        most = most_rho(self.art.dtype)
        auto = self.options.get("rho", "auto") == "auto"
        for _ in range(3):
            rho, plain = self.rho(), self.dimensionless()
            found = self._minimise(start, rho)
            moved = float(np.linalg.norm((found[0] - x_star)[lower])) / scale
            if moved <= DISPLACED:
                return found
            if auto and plain < most:
                self.raised = min(plain * moved / (DISPLACED / 5), most)
                start = found[0]
                continue
            # a given rho is the user's choice of accuracy (errors of some percent at a
            # distance of 1e-2): refused only where the sign itself is in doubt
            if moved <= (10 if auto else 100) * DISPLACED:
                return found
            raise RuntimeInputError(
                f"the penalty method cannot resolve the lower level of '{self.handle.name}': "
                f"at rho = {rho:.3g} its minimiser lies {moved:.2g} (relative) from the lower "
                "solution, where the 1/rho expansion the method extrapolates does not hold "
                "(an ill-conditioned lower level)",
                self.handle._method_span,
                "use implicit or unroll" + ("" if auto else ", or a larger rho (or rho = auto)"),
                code="R542",
            )
        return found

    def rho(self) -> float:
        """``rho``, or tol^(-2/5) (1e4 at tol 1e-10) in rho's unit (``_unit``): the
        extrapolated estimate's bias falls as 1/rho^2, while the lower solves' rounding,
        amplified by rho in the difference of g_y, grows with it; on ridge problems this choice
        is within 3e-7 of the exact value, and it is raised where the lower level needs more
        (``_settle_rho``). Beyond eps^(-1/2) of the dtype (dimensionless) the rounding wins:
        refused (auto stops there)."""
        given = self.options.get("rho", "auto")
        most = most_rho(self.art.dtype)
        if given == "auto":
            plain = self.raised
            if plain is None:
                plain = min(float(self.options["tol"]) ** -0.4, most)
            return plain * (self.unit or 1.0)
        rho = float(given)
        beyond = rho_beyond(rho, self.art.dtype)  # as ritz check reports it on a solve line
        if beyond is not None:
            raise RuntimeInputError(beyond[0], self.handle._method_span, beyond[1], code="R538")
        return rho

    def value_and_hypergrad(self, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """The penalty function at rho and 2 rho, extrapolated: 2 L(2 rho) - L(rho) differs from
        F(x*(y), y) by O(1/rho^2), and its gradient is the same combination of the two
        penalty gradients (exact, so line searches see one smooth function of y)."""
        lower = self.lower_mask
        if self.unit is None:
            self.unit = self._unit(np.asarray(w, dtype=np.float64))
        x_star, g_star, gy_star = self._minimise(w, None)
        start = w if self.x_rho is None else np.where(lower, self.x_rho, w)
        found = self._settle_rho(start, x_star)  # the minimiser at rho (rho may be raised)
        self.x_rho = found[0]
        values: list[float] = []
        grads: list[np.ndarray] = []
        for rho in (self.rho(), 2.0 * self.rho()):
            if values:  # the minimiser at 2 rho, from the one at rho
                found = self._minimise(found[0], rho)
            x_rho, g_rho, gy_rho = found
            f_rho, fy_rho = self.call("upper", x_rho)
            values.append(f_rho + rho * (g_rho - g_star))
            grads.append(np.where(lower, 0.0, fy_rho + rho * (gy_rho - gy_star)))
        f_star, _ = self.call("upper", x_star)
        self.solves += 1
        value = 2.0 * values[1] - values[0]
        grad = 2.0 * grads[1] - grads[0]
        return self.sign * value, self.sign * grad, x_star, self.sign * f_star


__all__ = ["PenaltyProblem", "UnrollProblem"]
