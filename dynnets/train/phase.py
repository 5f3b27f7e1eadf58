"""A phase of a training run: one optimizer with its learning rate, schedule, options, step count and
optionally its own loss; ``check_phases`` validates them before any work and fills in defaults.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import torch

from ..checks import check_int, positive_real, real
from ..errors import ConfigError

# the optimizer of each name (Levenberg-Marquardt is dynnets.train.lm)
OPTIMIZERS = {"adam": torch.optim.Adam, "lbfgs": torch.optim.LBFGS, "lm": None, "rmsprop": torch.optim.RMSprop,
              "sgd": torch.optim.SGD}
DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-3, "rmsprop": 1e-2, "lbfgs": 1.0}
# the keyword arguments of each torch optimizer other than params and lr (read once: inspect is slow)
OPTION_NAMES = {k: tuple(inspect.signature(cls).parameters)[2:] for k, cls in OPTIMIZERS.items() if cls is not None}
# Levenberg-Marquardt: initial damping and the damping floor relative to max diag(J^T J)
LM_OPTIONS = {"mu0": 1e-2, "tau": 1e-9}


@dataclass(frozen=True)
class Stall:
    """Restart on stall: every ``every`` steps, when the loss is not below ``(1 - rtol)`` times the loss
    ``every`` steps earlier, the optimizer's state is reset."""

    every: int = 1
    rtol: float = 1e-4


@dataclass(frozen=True)
class Phase:
    """``steps`` optimizer steps of ``optimizer`` ("adam", "sgd", "rmsprop", "lbfgs" or "lm"); ``lr`` None:
    ``DEFAULT_LR`` (LM has none: its damping is options["mu0"]); ``schedule``: None or ``optimizer ->
    LRScheduler``, stepped once per step; ``options``: the optimizer's other keyword arguments (defaults
    ``LM_OPTIONS`` for LM, line_search_fn="strong_wolfe" for L-BFGS); ``loss``: this phase's own, None for the
    run's; ``stall``: a :class:`Stall` rule. See docs/training.md, "Phases".
    """

    optimizer: str = "adam"
    steps: int = 1
    lr: float | None = None
    schedule: Callable | None = None
    options: Mapping | None = None
    loss: Callable | None = None
    stall: Stall | None = None
    name: str | None = None


def _check_options(kind: str, options, where: str) -> dict:
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"{where}options must be a dict, got {type(options).__name__}")
    options = dict(options or {})
    allowed = tuple(LM_OPTIONS) if kind == "lm" else OPTION_NAMES[kind]
    if kind == "lbfgs":
        if options.get("line_search_fn", "strong_wolfe") not in (None, "strong_wolfe"):
            raise ConfigError(f"{where}line_search_fn={options['line_search_fn']!r} must be None or 'strong_wolfe'")
        options = {"line_search_fn": "strong_wolfe", **options}
    elif kind == "lm":
        options = {**LM_OPTIONS, **options}
        for key in LM_OPTIONS:
            positive_real(f"{where}{key}", options[key], symbol=key)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}options has unknown key(s) {unknown} for optimizer {kind!r}")
    return options


def check_phase(phase, where: str = "") -> Phase:
    """The phase with its optimizer name lower-cased and its lr and options filled in, or ConfigError."""
    if not isinstance(phase, Phase):
        raise ConfigError(f"{where}phase must be a dynnets.train.Phase, got {type(phase).__name__}")
    kind, lr = phase.optimizer.lower() if isinstance(phase.optimizer, str) else None, phase.lr
    if kind not in OPTIMIZERS:
        raise ConfigError(f"{where}optimizer={phase.optimizer!r} is not one of {', '.join(map(repr, OPTIMIZERS))}")
    if kind == "lm" and lr is not None:
        raise ConfigError(f"{where}lr={lr!r} given for optimizer 'lm', which has no learning rate (rule: set its "
                          "damping with options={'mu0': ...})")
    if kind != "lm":
        lr = DEFAULT_LR[kind] if lr is None else positive_real(f"{where}lr", lr, symbol="lr")
    check_int(f"{where}steps", phase.steps, minimum=0)
    if phase.schedule is not None and (kind == "lm" or not callable(phase.schedule)):
        raise ConfigError(f"{where}schedule must be None or a callable optimizer -> LRScheduler (and None for "
                          f"'lm'), got {type(phase.schedule).__name__}")
    if phase.loss is not None and not callable(phase.loss):
        raise ConfigError(f"{where}loss must be None or callable as loss(model, batch)")
    stall = phase.stall
    if stall is not None:
        if not isinstance(stall, Stall):
            raise ConfigError(f"{where}stall must be None or a dynnets.train.Stall, got "
                              f"{type(stall).__name__}")
        check_int(f"{where}stall every", stall.every, minimum=1)
        real(f"{where}stall rtol", stall.rtol, symbol="rtol", minimum=0.0, below=1.0)
    if phase.name is not None and not isinstance(phase.name, str):
        raise ConfigError(f"{where}name={phase.name!r} must be None or a string")
    return replace(phase, optimizer=kind, lr=lr, options=_check_options(kind, phase.options, where),
                   name=phase.name or kind)


def check_phases(phases) -> tuple[Phase, ...]:
    phases = (phases,) if isinstance(phases, Phase) else phases
    if not isinstance(phases, (list, tuple)) or not phases:
        raise ConfigError(f"phases must be a non-empty list of dynnets.train.Phase, got {phases!r}")
    out = tuple(check_phase(p, f"phase {i + 1}: " if len(phases) > 1 else "") for i, p in enumerate(phases))
    if sum(p.steps for p in out) < 1:
        raise ConfigError(f"steps={sum(p.steps for p in out)}: a run must take at least one step (rule: "
                          "steps >= 1)")
    return out
