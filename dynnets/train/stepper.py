"""One optimizer step of one phase behind one interface (`Stepper`: `TorchStepper`, `lm.LevenbergMarquardt`)
with the non-finite guards: a non-finite loss or gradient raises NonFiniteLossError before the update (one
fused check, one host read); a non-finite L-BFGS update is undone and raises."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..errors import ConfigError, DtypeError, NonFiniteLossError, ShapeError
from . import distributed as D
from .phase import OPTIMIZERS, Phase


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
    if isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.requires_grad and loss.is_floating_point():
        return loss  # the usual case, checked in one line (this runs every step)
    loss = real_tensor(loss, step)
    if loss.numel() != 1:
        raise ShapeError(f"loss_fn returned a tensor of shape {tuple(loss.shape)} at step {step}, expected a "
                         "scalar")
    if not loss.requires_grad:
        raise ConfigError(f"the loss at step {step} does not depend on any trainable parameter "
                          "(loss.requires_grad is False)")
    return loss if loss.dim() == 0 else loss.reshape(())


def nonfinite(what: str, step: int, checkpoint) -> NonFiniteLossError:
    where = f"; the last checkpoint is {checkpoint}" if checkpoint else ""
    return NonFiniteLossError(f"{what} at step {step} (rule: a finite loss and gradient); the parameters are left "
                              f"as they were before that step{where}")


def all_finite(tensors) -> bool:
    """Every entry of every tensor is finite: one reduction over their concatenation and one host read (a
    sum that overflowed is looked at tensor by tensor)."""
    with torch.no_grad():
        flat = [t.reshape(-1) for t in tensors if t is not None]
        if not flat or math.isfinite(torch.cat(flat).sum()):
            return True
        return all(bool(torch.isfinite(t).all()) for t in flat)


def grads_finite(params, flags: dict) -> bool:
    """Every gradient is finite, by GradScaler's fused check (``flags``: cached (found, 1) tensors per
    device); :func:`all_finite` where that is refused."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    dev = grads[0].device
    if dev not in flags:
        flags[dev] = torch.zeros(1, device=dev), torch.ones(1, device=dev)
    found, one = flags[dev]
    try:
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, one)
    except (RuntimeError, AttributeError):  # e.g. gradients on several devices
        return all_finite(grads)
    if not found.item():
        return True
    found.zero_()
    return False


#: dtypes of torch's fused Adam kernel (one kernel for all parameters)
_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class TorchStepper(Stepper):
    """A torch.optim optimizer and its schedule; one step = one ``optimizer.step`` (L-BFGS: one call with its
    closure, up to ``max_iter`` iterations). Under DDP the reported loss is the mean over ranks."""

    def __init__(self, phase: Phase, model: torch.nn.Module, loss_fn, use_ddp: bool, checkpoint=None):
        self.loss_fn, self.use_ddp, self.checkpoint = loss_fn, use_ddp, checkpoint
        self.params = [p for p in model.parameters() if p.requires_grad]
        options = dict(phase.options)
        # Adam: one fused kernel for every parameter instead of a loop (docs/training.md)
        if (phase.optimizer == "adam" and "fused" not in options and "foreach" not in options
                and all(p.dtype in _FUSED_DTYPES and p.device.type in ("cpu", "cuda") for p in self.params)):
            options["fused"] = True
        self.opt = OPTIMIZERS[phase.optimizer](self.params, lr=phase.lr, **options)
        self.scheduler = scheduler = None if phase.schedule is None else phase.schedule(self.opt)
        bound = isinstance(scheduler, LRScheduler) and scheduler.optimizer is self.opt
        if scheduler is not None and not bound:
            raise ConfigError(f"schedule(optimizer) returned {type(scheduler).__name__}, not a "
                              "torch.optim.lr_scheduler.LRScheduler bound to that optimizer")
        self.flags: dict = {}

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
            before = float(value)
            first.append(before)
            if not math.isfinite(before) or not grads_finite(self.params, self.flags):
                what = (f"the parameters are not finite (an update before step {step} overflowed)"
                        if not all_finite(self.params) else f"loss is {before}" if not math.isfinite(before)
                        else f"the gradient is not finite (loss {before:.6g})")
                raise nonfinite(what, step, self.checkpoint)
        return value

    def step(self, net, batch, step: int) -> Outcome:
        first: list[float] = []
        if isinstance(self.opt, torch.optim.LBFGS):  # its line search moves the parameters in place
            saved = [p.detach().clone() for p in self.params]
            self.opt.step(lambda: self._evaluate(net, batch, step, first))
            if not all_finite(self.params):
                with torch.no_grad():
                    for p, s in zip(self.params, saved, strict=True):
                        p.copy_(s)
                raise nonfinite(f"the update made the parameters non-finite (loss before it {first[0]:.6g})",
                                step, self.checkpoint)
        else:
            self._evaluate(net, batch, step, first)
            self.opt.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return Outcome(first[0])

    def loss_of(self, net, batch) -> float:
        value = self.loss_fn(net, batch).detach().reshape(())
        return float(D.all_reduce_mean(value) if self.use_ddp else value)

    def reset(self) -> None:
        self.opt.state.clear()

    def state_dict(self) -> dict:
        return {"optimizer": self.opt.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
