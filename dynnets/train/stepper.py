"""One optimizer step of one phase, behind one interface (`Stepper`), with the non-finite guards.

`TorchStepper` drives a torch.optim optimizer (Adam, SGD, L-BFGS with its closure, or an instance) and its
learning-rate schedule; `dynnets.train.lm.LevenbergMarquardt` is the other implementation. The training
loop (dynnets.train.loop) only calls this interface, so checkpoints, resume, DDP, time budgets, restarts
on stall and keep-best work the same for every optimizer.

Guards: a non-finite loss or gradient at the start of a step raises NonFiniteLossError before the
update; parameters that an update left non-finite are put back (L-BFGS, whose line search moves them in
place, works on a snapshot) and raise NonFiniteLossError, so no checkpoint of them is ever written.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ..errors import CheckpointError, ConfigError, DtypeError, NonFiniteLossError, ShapeError
from . import distributed as D
from .phase import Phase


@dataclass
class Outcome:
    """What one step did: the loss of the parameters before it, after it when known, and whether the
    phase cannot progress any further (Levenberg-Marquardt with its damping exhausted)."""

    loss: float
    after: float | None = None
    done: bool = False


class Stepper(ABC):
    @abstractmethod
    def step(self, net, batch, step: int) -> Outcome:
        """One update of the parameters; ``step`` (1-based, whole run) is used in error messages."""

    @abstractmethod
    def loss_of(self, net, batch) -> float:
        """The loss of the current parameters (no update)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the optimizer state (restart on stall)."""

    @abstractmethod
    def state_dict(self) -> dict:
        ...

    @abstractmethod
    def check_state(self, state, where: str) -> None:
        """CheckpointError if ``state`` cannot be loaded; nothing is changed."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        ...

    @property
    @abstractmethod
    def lr(self) -> float:
        """The current learning rate (LM: the damping mu), recorded once per step."""


def real_tensor(value, step: int, what: str = "loss_fn") -> torch.Tensor:
    """What ``what`` returned at ``step``: a real floating tensor (a complex loss has no order to minimise, and
    autograd refuses its implicit gradient), else a typed error."""
    if not isinstance(value, torch.Tensor):
        raise ConfigError(f"{what} returned {type(value).__name__} at step {step}, expected a tensor")
    if not value.is_floating_point():
        raise DtypeError(f"{what} returned a {value.dtype} tensor at step {step} (rule: a real floating tensor; "
                         "take .abs() or .real of a complex one)")
    return value


def scalar_loss(loss, step: int) -> torch.Tensor:
    loss = real_tensor(loss, step)
    if loss.numel() != 1:
        raise ShapeError(f"loss_fn returned a tensor of shape {tuple(loss.shape)} at step {step}, expected a "
                         "scalar")
    if not loss.requires_grad:
        raise ConfigError(f"the loss at step {step} does not depend on any trainable parameter "
                          "(loss.requires_grad is False)")
    return loss.reshape(())


def nonfinite(what: str, step: int, checkpoint) -> NonFiniteLossError:
    where = f"; the last checkpoint is {checkpoint}" if checkpoint else ""
    return NonFiniteLossError(f"{what} at step {step} (rule: a finite loss and gradient); the parameters are left "
                              f"as they were before that step{where}")


def all_finite(tensors) -> bool:
    tensors = [t for t in tensors if t is not None]
    return not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def _make_optimizer(phase: Phase, params) -> torch.optim.Optimizer:
    if isinstance(phase.optimizer, torch.optim.Optimizer):
        return phase.optimizer
    cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "lbfgs": torch.optim.LBFGS}[phase.optimizer]
    return cls(params, lr=phase.lr, **phase.options)


def _make_scheduler(schedule, optimizer):
    if schedule is None:
        return None
    scheduler = schedule(optimizer)
    if not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        raise ConfigError(f"schedule(optimizer) returned {type(scheduler).__name__}, not a "
                          "torch.optim.lr_scheduler.LRScheduler")
    if scheduler.optimizer is not optimizer:
        raise ConfigError("schedule(optimizer) returned a scheduler bound to a different optimizer")
    return scheduler


class TorchStepper(Stepper):
    """A torch.optim optimizer and its schedule; one step = one ``optimizer.step`` (L-BFGS: one call with its
    closure, up to ``max_iter`` iterations). Under DDP the reported loss is the mean over ranks."""

    def __init__(self, phase: Phase, model: torch.nn.Module, loss_fn, use_ddp: bool, checkpoint=None):
        self.loss_fn, self.use_ddp, self.checkpoint = loss_fn, use_ddp, checkpoint
        self.clip = phase.clip_grad_norm
        self.opt = _make_optimizer(phase, [p for p in model.parameters() if p.requires_grad])
        self.scheduler = _make_scheduler(phase.schedule, self.opt)
        self.params = [p for group in self.opt.param_groups for p in group["params"]]
        self.closure_driven = isinstance(self.opt, torch.optim.LBFGS)

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def _evaluate(self, net, batch, step: int, first: list) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = scalar_loss(self.loss_fn(net, batch), step)
        loss.backward()
        # every rank must see the same loss: L-BFGS's line search branches on it
        value = D.all_reduce_mean(loss) if self.use_ddp else loss.detach()
        if not first:  # the parameters are still those before the step: refuse here, before any update
            first.append(float(value))
            if not math.isfinite(first[0]):
                raise nonfinite(f"loss is {first[0]}", step, self.checkpoint)
            if not all_finite(p.grad for p in self.params):
                raise nonfinite(f"the gradient is not finite (loss {first[0]:.6g})", step, self.checkpoint)
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        return value

    def step(self, net, batch, step: int) -> Outcome:
        first: list[float] = []
        if self.closure_driven:
            saved = [p.detach().clone() for p in self.params]
            self.opt.step(lambda: self._evaluate(net, batch, step, first))
        else:
            saved = None
            self._evaluate(net, batch, step, first)
            self.opt.step()
        if not all_finite(self.params):
            if saved is not None:
                with torch.no_grad():
                    for p, s in zip(self.params, saved, strict=True):
                        p.copy_(s)
            raise nonfinite(f"the update made the parameters non-finite (loss before it {first[0]:.6g})", step,
                            self.checkpoint)
        if self.scheduler is not None:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(first[0])
            else:
                self.scheduler.step()
        return Outcome(first[0])

    def loss_of(self, net, batch) -> float:
        value = self.loss_fn(net, batch).detach().reshape(())
        return float(D.all_reduce_mean(value) if self.use_ddp else value)

    def reset(self) -> None:
        self.opt.state.clear()

    def state_dict(self) -> dict:
        return {"optimizer_class": type(self.opt).__name__, "optimizer": self.opt.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict()}

    def check_state(self, state, where: str) -> None:
        if not isinstance(state, dict) or state.get("optimizer_class") != type(self.opt).__name__:
            found = state.get("optimizer_class") if isinstance(state, dict) else None
            raise CheckpointError(f"{where}: written with optimizer {found}, this run uses {type(self.opt).__name__}")
        if (state.get("scheduler") is None) != (self.scheduler is None):
            raise CheckpointError(f"{where}: the checkpoint {'has no' if state.get('scheduler') is None else 'has a'} "
                                  f"learning-rate schedule but this run {'has one' if self.scheduler else 'has none'}")
        try:
            opt, sched = copy.deepcopy((self.opt, self.scheduler))
        except Exception:  # noqa: BLE001 - cannot be copied: compare the parameter groups instead
            groups = state["optimizer"].get("param_groups") if isinstance(state["optimizer"], dict) else None
            if not isinstance(groups, list) or [len(g.get("params", ())) for g in groups] != \
                    [len(g["params"]) for g in self.opt.param_groups]:
                raise CheckpointError(f"{where}: optimizer state does not match this optimizer's parameter groups") \
                    from None
            return
        try:
            opt.load_state_dict(state["optimizer"])
            if sched is not None:
                sched.load_state_dict(state["scheduler"])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"{where}: does not fit this optimizer/schedule: {' '.join(str(e).split())}") \
                from None

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
