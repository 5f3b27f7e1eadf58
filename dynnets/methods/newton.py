"""The stage equations of an implicit Runge-Kutta step, solved by Newton's method.

With states flattened to x in R^n and s stages K = (K_1, ..., K_s), per sample

    G(K) = K - F(X) = 0,     X_i = x + h sum_j a_ij K_j.

Newton with the exact Jacobian (``Field.linearizer``), M dK = -G(K), M = I - h [a_ij DF(X_i)], its start,
backtracking, continuation in h and stopping rule (Newton's correction within TOLERANCE_FACTOR eps of the
step's scale) are docs/structure.md's ("The solve"). A sample outside the tolerance after ``max_iterations``
and the continuation raises ``NotConvergedError``; the others return their best iterate. Backward: ``ift``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import NotConvergedError

#: the C of the stopping rule C * eps * scale (docs/structure.md, "The solve")
TOLERANCE_FACTOR = 8.0
#: step halvings of the backtracking line search per Newton iteration
MAX_HALVINGS = 10
#: sub-steps of the continuation in h tried for samples Newton did not solve from its start
CONTINUATION = (4, 16)
#: Newton iterations without a 10% drop of the worst unconverged correction after which a run gives up
STALL = 10


@dataclass(frozen=True)
class _Attempt:
    """One damped Newton run: best iterate, its correction |h| |M^-1 G| and tolerance per sample, which
    samples converged, and the number of updates."""

    K: torch.Tensor
    residual: torch.Tensor
    tolerance: torch.Tensor
    done: torch.Tensor
    iterations: int


@dataclass(frozen=True)
class StageSolution:
    """Converged stages (batch, s, n), Newton updates taken (continuation included) and the runs."""

    stages: torch.Tensor
    iterations: int
    attempts: tuple[_Attempt, ...]

    @property
    def residual_ratio(self) -> float:
        """The largest residual relative to its tolerance over the converged samples of the runs (<= 1)."""
        tiny = torch.finfo(self.stages.dtype).tiny
        ratios = [(a.residual / a.tolerance.clamp_min(tiny))[a.done] for a in self.attempts]
        return max((float(r.max()) for r in ratios if r.numel()), default=0.0)


def _solve(lu, G: torch.Tensor) -> torch.Tensor:
    """-M^-1 G from M's LU factors (LU, pivots), shape of G (batch, s, n)."""
    return torch.linalg.lu_solve(*lu, -G.reshape(G.shape[0], -1, 1)).reshape(G.shape)


def _keep_best(best, ratio, K, *per_sample):
    """Per sample, (ratio, K, *per_sample) of the iterate with the smallest ratio so far (NaN never wins);
    K (batch, s, n), the others (batch,)."""
    if best is None:
        return (ratio, K, *per_sample)
    better = ratio < best[0]  # False for NaN
    return (torch.where(better, ratio, best[0]), torch.where(better.reshape(-1, 1, 1), K, best[1]),
            *(torch.where(better, new, old) for new, old in zip(per_sample, best[2:])))


class _Jacobian(nn.Module):
    """field.jacobian as a module forward, so that ``functional_call`` can evaluate it with given parameters."""

    def __init__(self, field):
        super().__init__()
        self.field = field

    def forward(self, x):
        return self.field.jacobian(x)


class StageProblem:
    """The stage equations of one (field, tableau) pair, evaluated with the given parameters."""

    def __init__(self, field, a: torch.Tensor, name: str, max_iterations: int):
        self.field, self.name, self.max_iterations = field, name, max_iterations
        self._a64 = a
        self._constants: dict = {}
        self._linearize = None  # the field's linearizer during a solve with its own parameters
        self.names = tuple(name for name, _ in field.named_parameters())
        self.own = tuple(p for _, p in field.named_parameters())

    def _cached(self, key, like: torch.Tensor, make):
        """make() in the dtype and on the device of ``like``, made once per key."""
        key = (key, like.dtype, like.device)
        value = self._constants.get(key)
        if value is None:
            value = self._constants[key] = make(dtype=like.dtype, device=like.device)
        return value

    def a_like(self, like: torch.Tensor) -> torch.Tensor:
        """A in the dtype and on the device of ``like`` (cached)."""
        return self._cached("a", like, self._a64.to)

    def combine(self, c: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """sum_j c_ij K_j per sample for coefficients c (rows, s) and K (batch, s, n): one bmm (what ``c @ K``
        runs, without its broadcasting ops)."""
        return torch.bmm(c.expand(K.shape[0], -1, -1), K)

    def _is_own(self, params) -> bool:
        return len(params) == len(self.own) and all(p is q for p, q in zip(params, self.own))

    def field_at(self, params, X: torch.Tensor, shape) -> torch.Tensor:
        flat = X.reshape(-1, *shape)
        if self._is_own(params):
            return self.field(flat).reshape(X.shape)
        return torch.func.functional_call(self.field, dict(zip(self.names, params)), (flat,)).reshape(X.shape)

    def linearize_at(self, params, X: torch.Tensor, shape):
        """(F(X), jac), jac() = DF(X) (batch, s, n, n) on demand: the field's ``linearizer`` (value and Jacobian
        sharing work) within a solve with its own parameters, else ``functional_call``s."""
        if self._linearize is None:
            return self.field_at(params, X, shape), lambda: self.jacobian_at(params, X, shape)
        lin = self._linearize(X.reshape(-1, *shape))
        return lin.value.reshape(X.shape), lambda: lin.jacobian().reshape(*X.shape, X.shape[-1])

    def jacobian_at(self, params, X: torch.Tensor, shape) -> torch.Tensor:
        flat = X.reshape(-1, *shape)
        if self._is_own(params):
            J = self.field.jacobian(flat)
        else:
            named = {f"field.{k}": p for k, p in zip(self.names, params)}
            J = torch.func.functional_call(_Jacobian(self.field), named, (flat,))
        return J.reshape(*X.shape, X.shape[-1])  # (batch, s, n, n)

    def stage_points(self, x: torch.Tensor, h, K: torch.Tensor) -> torch.Tensor:
        """X_i = x + h sum_j a_ij K_j, shape (batch, s, n)."""
        return x.unsqueeze(1) + h * self.combine(self.a_like(K), K)

    def newton_matrix(self, J: torch.Tensor, h) -> torch.Tensor:
        """M = I - h [a_ij J_i], shape (batch, s n, s n)."""
        b, s, n, _ = J.shape
        a = self._cached("a blocks", J, lambda **kw: self.a_like(J)[:, None, :, None])
        M = ((-h * a) * J.unsqueeze(-2)).reshape(b, s * n, s * n)
        M.diagonal(dim1=-2, dim2=-1).add_(1.0)  # + I, touching only the diagonal
        return M

    @torch.no_grad()
    def solve(self, x: torch.Tensor, h: float, params) -> StageSolution:
        """Newton, then continuation in h for unsolved samples; x: (batch, *state). Raises
        NotConvergedError, never returns unconverged K."""
        self._linearize = self.field.linearizer() if self._is_own(params) else None
        try:
            shape, flat = x.shape[1:], x.reshape(x.shape[0], -1)
            first = self._newton(params, flat, h, *self._start(params, flat, h, shape), shape)
            K, iterations, attempts = first.K, first.iterations, [first]
            if not bool(first.done.all()):
                lost = (~first.done).nonzero().squeeze(1)
                for pieces in CONTINUATION:
                    result, used = self._continued(params, flat[lost], h, pieces, shape)
                    iterations += used
                    attempts.append(result)
                    if bool(result.done.all()):
                        K = K.index_copy(0, lost, result.K)
                        break
                else:
                    self._fail(h, result)
            return StageSolution(K, iterations, tuple(attempts))
        finally:
            self._linearize = None

    def _start(self, params, flat, h, shape):
        """(K, G, jac) of the start with the smaller max |G| per sample: the predictor K_i = F(x + c_i h F(x))
        (c_i = sum_j a_ij) or K = 0 (G = -F(x)), the latter for stiff fields where the predictor blows up."""
        f0, jac0 = self.linearize_at(params, flat.unsqueeze(1), shape)
        c = self.a_like(flat).sum(dim=1)
        predictor = self.linearize_at(params, flat.unsqueeze(1) + (h * c).unsqueeze(-1) * f0, shape)[0]
        G, jac = self.residual(params, flat, h, predictor, shape)
        keep = (G.abs().amax(dim=(1, 2)) <= f0.abs().amax(dim=(1, 2)))[:, None, None]
        if not bool(keep.all()):  # DF at the stages of the start each sample took
            predictor_jac = jac

            def jac():
                return torch.where(keep[..., None], predictor_jac(), jac0())
        return torch.where(keep, predictor, torch.zeros_like(predictor)), torch.where(keep, G, -f0), jac

    def _continued(self, params, flat, h, pieces: int, shape):
        """Solve for h k / pieces, k = 1..pieces, each from the previous solution; the intermediate
        solves only provide starts (at most STALL iterations)."""
        K = self._start(params, flat, h / pieces, shape)[0]
        used = 0
        for k in range(1, pieces + 1):
            limit = self.max_iterations if k == pieces else min(STALL, self.max_iterations)
            hk = h * k / pieces
            attempt = self._newton(params, flat, hk, K, *self.residual(params, flat, hk, K, shape), shape, limit)
            used += attempt.iterations
            K = torch.where(torch.isfinite(attempt.K), attempt.K, K)
        return attempt, used

    def _newton(self, params, flat, h: float, K, G, jac, shape, limit: int | None = None) -> _Attempt:
        """At most ``limit`` (default ``max_iterations``) damped Newton updates from (K, G, DF) under the
        module's stopping rule; stops early when the unconverged samples' best correction has not dropped
        by 10% over STALL iterations. The correction uses the previous iteration's factorised M."""
        limit = self.max_iterations if limit is None else limit
        eps = torch.finfo(flat.dtype).eps
        x_size = flat.abs().amax(dim=1)
        previous = torch.full_like(x_size, float("inf"))
        best, lu = None, None  # best: per sample (correction / tolerance, K, correction, scale)
        worst: list[float] = []  # worst unconverged best correction per iteration, recorded from STALL on
        for iteration in range(limit + 1):
            fresh = lu is None
            if fresh:
                lu = self._factor(jac, h)
            step = _solve(lu, G)
            correction = abs(h) * step.abs().amax(dim=(1, 2))
            scale = torch.maximum(x_size, abs(h) * K.abs().amax(dim=(1, 2)))
            tolerance = TOLERANCE_FACTOR * eps * scale
            best = _keep_best(best, correction / tolerance, K, correction, scale)
            _, best_K, best_correction, best_scale = best
            best_tolerance = TOLERANCE_FACTOR * eps * best_scale  # bitwise the tolerance kept with it
            within = best_correction <= best_tolerance
            if iteration == limit or (iteration >= STALL and self._stalled(worst, best_correction, within)):
                return _Attempt(best_K, best_correction, best_tolerance, within, iteration)
            # at the output's unit round-off, or within the tolerance and no longer halving (stagnation)
            done = (best_correction <= eps * best_scale) | (within & ~(correction <= 0.5 * previous))
            if bool((done | ~(best_correction < math.inf)).all()):  # (corrections are >= 0 or NaN)
                return _Attempt(best_K, best_correction, best_tolerance, done, iteration)
            previous = correction
            if not fresh:  # Newton's step with the Jacobian at the current stages
                lu = self._factor(jac, h)
                step = _solve(lu, G)
            K, G, jac = self._damped(params, flat, h, K, G, step, done, within, shape)

    def _factor(self, jac, h):
        """LU factors of M = I - h [a_ij DF(X_i)] (jac() = DF(X)); a singular M gives non-finite corrections
        (sample lost)."""
        return torch.linalg.lu_factor_ex(self.newton_matrix(jac(), h))[:2]

    @staticmethod
    def _stalled(worst: list, correction, within) -> bool:
        """Record the worst unconverged correction; True when it has not dropped by 10% in STALL iterations."""
        worst.append(float(torch.where(within, 0.0, torch.nan_to_num(correction, nan=float("inf"))).max()))
        return len(worst) > STALL and not worst[-1] < 0.9 * min(worst[:-STALL])

    def residual(self, params, flat, h, K, shape):
        """(G(K), jac): G = K - F(X) at the stage points X = x + h A K, (batch, s, n); jac() = DF(X) on demand."""
        value, jac = self.linearize_at(params, self.stage_points(flat, h, K), shape)
        return K - value, jac

    def _damped(self, params, flat, h, K, G, step, done, within, shape):
        """K + lam step, per sample the first lam = 1, 1/2, ... (at most MAX_HALVINGS halvings) that lowers
        max |G|. Converged samples stay put; samples within the tolerance take the full step."""
        norm = G.abs().amax(dim=(1, 2))
        stay, lam = done.reshape(-1, 1, 1), None  # lam None: the full step (bitwise 1.0 * step)
        for halving in range(MAX_HALVINGS + 1):
            trial = torch.where(stay, K, K + (step if lam is None else lam.reshape(-1, 1, 1) * step))
            trial_G, trial_jac = self.residual(params, flat, h, trial, shape)
            better = done | within | (trial_G.abs().amax(dim=(1, 2)) < norm)
            if bool(better.all()) or halving == MAX_HALVINGS:
                return trial, trial_G, trial_jac
            lam = torch.ones_like(norm) if lam is None else lam
            lam = torch.where(better, lam, 0.5 * lam)

    def _fail(self, h, attempt: _Attempt):
        ratio = torch.nan_to_num(attempt.residual / attempt.tolerance, nan=float("inf"))
        worst = int(ratio.argmax())
        raise NotConvergedError(
            f"{self.name}: Newton's method did not solve the stage equations for h={float(h):.6g} "
            f"({self.max_iterations} Newton iterations, also after continuation in h over "
            f"{' and '.join(map(str, CONTINUATION))} sub-steps): "
            f"residual {float(attempt.residual[worst]):.3e} > tolerance {float(attempt.tolerance[worst]):.3e} "
            f"(Newton's correction |h| |M^-1 G| against {TOLERANCE_FACTOR:g} eps max(|x|, |h| |K|)) at sample "
            f"{worst} of the unsolved ones after {attempt.iterations} iterations; use a smaller h"
        )
