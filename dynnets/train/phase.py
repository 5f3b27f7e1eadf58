"""A phase of a training run: one optimizer with its learning rate, schedule, options and step count.

A run is a sequence of phases (e.g. Adam warm-up then L-BFGS); each phase has its own optimizer state
and may minimise its own loss. ``check_phases`` validates them before any work and fills in defaults.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import torch

from ..errors import ConfigError

OPTIMIZERS = ("adam", "lbfgs", "lm", "sgd")
DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-3, "lbfgs": 1.0}
# keyword arguments of torch.optim.LBFGS other than params and lr
LBFGS_OPTIONS = tuple(p for p in inspect.signature(torch.optim.LBFGS).parameters if p not in ("params", "lr"))
# Levenberg-Marquardt: initial damping and the damping floor relative to max diag(J^T J)
LM_OPTIONS = {"mu0": 1e-2, "tau": 1e-9}


@dataclass(frozen=True)
class Stall:
    """Restart on stall: after every ``every`` steps of a phase, when the loss at the start of the step is
    not below ``(1 - rtol)`` times the loss ``every`` steps earlier, the optimizer's state is reset (an
    L-BFGS memory whose curvature pairs no longer describe the landscape, an Adam's moments)."""

    every: int = 1
    rtol: float = 1e-4


@dataclass(frozen=True)
class Phase:
    """``steps`` optimizer steps of ``optimizer``.

    optimizer: "adam" | "sgd" | "lbfgs" | "lm" (Levenberg-Marquardt: the loss returns a residual tensor
               and minimised is its sum of squares) | a torch.optim.Optimizer built on the model's
               parameters (then lr=None).
    lr:        default 1e-3 (adam, sgd), 1.0 (lbfgs); LM has none (its damping is options["mu0"]).
    schedule:  None or ``optimizer -> LRScheduler``, stepped once per step (ReduceLROnPlateau gets the loss).
    options:   keyword arguments of the optimizer: torch.optim.LBFGS's (default line_search_fn=
               "strong_wolfe"), Adam's/SGD's other arguments, or LM's mu0 (1e-2) and tau (1e-9).
    loss:      this phase's ``loss(model, batch)``; None = the run's loss.
    clip_grad_norm: clip the global gradient 2-norm before every update.
    stall:     a :class:`Stall` rule that resets the optimizer state when the loss stalls.
    """

    optimizer: str | torch.optim.Optimizer = "adam"
    steps: int = 1
    lr: float | None = None
    schedule: Callable | None = None
    options: Mapping | None = None
    loss: Callable | None = None
    clip_grad_norm: float | None = None
    stall: Stall | None = None
    name: str | None = None


def is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def positive_finite(name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value!r} must be a positive finite number")
    return float(value)


def _check_instance(opt: torch.optim.Optimizer, lr, model, where: str) -> None:
    if lr is not None:
        raise ConfigError(f"{where}lr={lr!r} was given together with an optimizer instance, whose own lr would "
                          "be used (rule: set the learning rate on the instance and pass lr=None)")
    owned = {id(p) for p in model.parameters()}
    if any(id(p) not in owned for group in opt.param_groups for p in group["params"]):
        raise ConfigError(f"{where}the optimizer instance holds a parameter that is not a parameter of model "
                          "(rule: build it from model.parameters())")


def _check_options(kind: str, options, where: str) -> dict:
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"{where}options must be a dict, got {type(options).__name__}")
    options = dict(options or {})
    if kind == "lbfgs":
        unknown = sorted(set(options) - set(LBFGS_OPTIONS))
        if options.get("line_search_fn", "strong_wolfe") not in (None, "strong_wolfe"):
            raise ConfigError(f"{where}line_search_fn={options['line_search_fn']!r} must be None or 'strong_wolfe'")
        options = {"line_search_fn": "strong_wolfe", **options}
    elif kind == "lm":
        unknown = sorted(set(options) - set(LM_OPTIONS))
        options = {**LM_OPTIONS, **options}
        for key in LM_OPTIONS:
            positive_finite(f"{where}{key}", options[key])
    elif kind in ("adam", "sgd"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
        unknown = sorted(set(options) - (set(inspect.signature(cls).parameters) - {"params", "lr"}))
    else:
        unknown = sorted(options) if options else []
        if unknown:
            raise ConfigError(f"{where}options={options!r} given with an optimizer instance (rule: configure "
                              "the instance itself)")
    if unknown:
        raise ConfigError(f"{where}options has unknown key(s) {unknown} for optimizer {kind!r}")
    return options


def check_phase(phase, model: torch.nn.Module, where: str = "") -> Phase:
    """The phase with its optimizer name lower-cased and its lr and options filled in, or ConfigError."""
    if not isinstance(phase, Phase):
        raise ConfigError(f"{where}phase must be a dynnets.train.Phase, got {type(phase).__name__}")
    opt, lr = phase.optimizer, phase.lr
    if isinstance(opt, torch.optim.Optimizer):
        _check_instance(opt, lr, model, where)
        kind = "instance"
    elif isinstance(opt, str) and opt.lower() in OPTIMIZERS:
        kind = opt = opt.lower()
        if kind == "lm":
            if lr is not None:
                raise ConfigError(f"{where}lr={lr!r} given for optimizer 'lm', which has no learning rate "
                                  "(rule: set its damping with options={'mu0': ...})")
        else:
            lr = DEFAULT_LR[kind] if lr is None else positive_finite(f"{where}lr", lr)
    else:
        raise ConfigError(f"{where}optimizer={opt!r} is not one of {', '.join(map(repr, OPTIMIZERS))} or a "
                          "torch.optim.Optimizer instance")
    if not is_int(phase.steps) or phase.steps < 0:
        raise ConfigError(f"{where}steps={phase.steps!r} must be an integer >= 0")
    if phase.schedule is not None and (kind == "lm" or not callable(phase.schedule)):
        raise ConfigError(f"{where}schedule must be None or a callable optimizer -> LRScheduler (and None for "
                          f"'lm'), got {type(phase.schedule).__name__}")
    if phase.loss is not None and not callable(phase.loss):
        raise ConfigError(f"{where}loss must be None or callable as loss(model, batch)")
    clip = positive_finite(f"{where}clip_grad_norm", phase.clip_grad_norm, allow_none=True)
    if clip is not None and kind == "lm":
        raise ConfigError(f"{where}clip_grad_norm has no meaning for optimizer 'lm'")
    _check_stall(phase.stall, where)
    if phase.name is not None and not isinstance(phase.name, str):
        raise ConfigError(f"{where}name={phase.name!r} must be None or a string")
    return replace(phase, optimizer=opt, lr=lr, options=_check_options(kind, phase.options, where),
                   clip_grad_norm=clip, name=phase.name or (kind if kind != "instance" else type(opt).__name__))


def _check_stall(stall, where: str) -> None:
    if stall is None:
        return
    if not isinstance(stall, Stall):
        raise ConfigError(f"{where}stall must be None or a dynnets.train.Stall, got {type(stall).__name__}")
    if not is_int(stall.every) or stall.every < 1:
        raise ConfigError(f"{where}stall every={stall.every!r} must be an integer >= 1")
    if isinstance(stall.rtol, bool) or not isinstance(stall.rtol, numbers.Real) or not 0 <= stall.rtol < 1:
        raise ConfigError(f"{where}stall rtol={stall.rtol!r} must be a number in [0, 1)")


def check_phases(phases, model: torch.nn.Module) -> tuple[Phase, ...]:
    if isinstance(phases, Phase):
        phases = (phases,)
    if not isinstance(phases, (list, tuple)) or not phases:
        raise ConfigError(f"phases must be a non-empty list of dynnets.train.Phase, got {phases!r}")
    out = tuple(check_phase(p, model, f"phase {i + 1}: " if len(phases) > 1 else "") for i, p in enumerate(phases))
    if sum(p.steps for p in out) < 1:
        raise ConfigError(f"steps={sum(p.steps for p in out)}: a run must take at least one step (rule: "
                          "steps >= 1)")
    return out
