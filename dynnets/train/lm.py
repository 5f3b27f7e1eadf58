"""Levenberg-Marquardt as one more optimizer of `fit` (``Phase("lm", iterations)``): Gauss-Newton with
Marquardt's damping (Nocedal & Wright, Numerical Optimization, sec. 10.3) on the residual tensor r the loss
returns, minimising sum(r**2); the system, J by torch.func.jacfwd, the damping rule (mu bounded by MU_MIN and
MU_MAX) and the sums over ranks: docs/training.md, "Levenberg-Marquardt".
"""

from __future__ import annotations

import math

import torch
from torch.func import functional_call, jacfwd

from . import distributed as D
from .phase import Phase
from .stepper import Outcome, Stepper, nonfinite, real_tensor

MU_MAX, MU_MIN = 1e15, 1e-15


class _Call(torch.nn.Module):
    """The model evaluated at the parameters ``params`` (a functional view the Jacobian can be taken through)."""

    def __init__(self, model, params):
        super().__init__()
        self._model, self._params = [model], params

    def forward(self, *args, **kwargs):
        return functional_call(self._model[0], self._params, args, kwargs)


class LevenbergMarquardt(Stepper):
    def __init__(self, phase: Phase, model: torch.nn.Module, residual_fn, checkpoint=None):
        self.model, self.residual_fn, self.checkpoint = model, residual_fn, checkpoint
        self.mu0, self.tau = float(phase.options["mu0"]), float(phase.options["tau"])
        self.mu = self.mu0
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._cache = None  # (theta, residual, loss) of the current parameters
        self._step = 0  # the step being taken (named by a residual-type error)

    @property
    def lr(self) -> float:
        return self.mu

    def _residual(self, theta: torch.Tensor, batch) -> torch.Tensor:
        params = {n: c.view(p.shape) for (n, p), c in zip(self.named, theta.split([p.numel() for _, p in self.named]),
                                                          strict=True)}
        residual = self.residual_fn(_Call(self.model, {**params, **dict(self.model.named_buffers())}), batch)
        return real_tensor(residual, self._step, "the residual function").reshape(-1)

    @staticmethod
    def _loss(r: torch.Tensor) -> float:
        return float(D.all_reduce_sum(r.detach().pow(2).sum().reshape(1)))

    def _current(self, batch, step: int):
        self._step = step
        theta = torch.cat([p.detach().reshape(-1) for _, p in self.named])
        if self._cache is not None and torch.equal(self._cache[0], theta):
            return self._cache
        with torch.no_grad():
            r = self._residual(theta, batch)
        loss = self._loss(r)
        if not math.isfinite(loss):
            raise nonfinite(f"loss is {loss}", step, self.checkpoint)
        return theta, r, loss

    def step(self, net, batch, step: int) -> Outcome:
        theta, r, loss = self._current(batch, step)
        before = loss
        jac = jacfwd(lambda t: self._residual(t, batch))(theta)
        jtj = D.all_reduce_sum(jac.T @ jac)
        jtr = D.all_reduce_sum(jac.T @ r)
        del jac
        if not bool(torch.isfinite(jtj).all() and torch.isfinite(jtr).all()):
            raise nonfinite(f"the Jacobian is not finite (loss {loss:.6g})", step, self.checkpoint)
        diag = torch.diagonal(jtj)
        floor = max(self.tau * float(diag.max()), 1e-300)
        while True:
            delta, status = torch.linalg.solve_ex(jtj + self.mu * torch.diag(diag + floor), -jtr)
            if int(status) != 0 or not bool(torch.isfinite(delta).all()):
                new = math.inf  # (numerically) singular system: damp more
            else:
                with torch.no_grad():
                    r_new = self._residual(theta + delta, batch)
                new = self._loss(r_new)
            if math.isfinite(new) and new < loss:
                theta, r, loss = theta + delta, r_new, new
                self.mu = max(self.mu / 3.0, MU_MIN)
                break
            self.mu *= 4.0
            if self.mu > MU_MAX:
                break
        with torch.no_grad():
            for (_, p), c in zip(self.named, theta.split([p.numel() for _, p in self.named]), strict=True):
                p.copy_(c.view(p.shape))
        self._cache = (theta, r, loss)
        return Outcome(before, after=loss, done=self.mu > MU_MAX)

    def loss_of(self, net, batch) -> float:
        return self._current(batch, 0)[2]

    def reset(self) -> None:
        self.mu, self._cache = self.mu0, None

    def state_dict(self) -> dict:
        return {"mu": self.mu}

    def load_state_dict(self, state: dict) -> None:
        self.mu, self._cache = float(state["mu"]), None
