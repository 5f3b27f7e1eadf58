"""Up-front validation of everything `fit` is given, so a bad option fails before any work is done.

Each check raises :class:`dynnets.errors.ConfigError` with one message naming the value and the rule.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError

OPTIMIZERS = ("adam", "lbfgs", "sgd")
DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-3, "lbfgs": 1.0}
# keyword arguments of torch.optim.LBFGS other than params and lr
LBFGS_OPTIONS = tuple(p for p in inspect.signature(torch.optim.LBFGS).parameters if p not in ("params", "lr"))
_DTYPES = {
    "float32": torch.float32, "float": torch.float32, "float64": torch.float64, "double": torch.float64,
    "float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
}


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _positive_finite(name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name}={value!r} must be a positive finite number")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{name}={value!r} must be a positive finite number")
    return v


def resolve_device(device) -> torch.device:
    """'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device that exists on this machine."""
    if isinstance(device, torch.device):
        d = device
    elif isinstance(device, str):
        try:
            d = torch.device(device)
        except RuntimeError:
            raise ConfigError(f"device={device!r} is not a device name (rule: 'cpu', 'cuda', 'cuda:N' or "
                              "'mps')") from None
    else:
        raise ConfigError(f"device={device!r} must be a string such as 'cpu' or 'cuda', or a torch.device")
    if d.type == "cpu":
        return torch.device("cpu")
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} requested but CUDA is not available on this machine "
                              "(torch.cuda.is_available() is False)")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r} does not exist: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        return d
    if d.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device={device!r} requested but MPS is not available on this machine")
        return d
    raise ConfigError(f"device={device!r} is not supported (rule: 'cpu', 'cuda', 'cuda:N' or 'mps')")


def resolve_dtype(dtype) -> torch.dtype | None:
    """None (keep the model's dtype), a floating torch.dtype, or one of its names ('float32', 'float64', ...)."""
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ConfigError(f"dtype={dtype} is not a floating-point dtype (rule: float32, float64, float16 "
                              "or bfloat16)")
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.")]
    raise ConfigError(f"dtype={dtype!r} is not a floating-point dtype (rule: None, a torch floating dtype or "
                      f"one of {sorted(_DTYPES)})")


@dataclass(frozen=True)
class FitConfig:
    """The validated, normalised options of one `fit` call."""

    steps: int
    optimizer: str | torch.optim.Optimizer
    lr: float | None
    clip_grad_norm: float | None
    checkpoint: Path | None
    checkpoint_every: int
    resume: bool
    progress: bool
    device: torch.device
    dtype: torch.dtype | None
    seed: int | None
    lbfgs_options: dict
    time_budget: float | None
    desc: str | None


def validate_fit_config(*, model, loss_fn, data, steps, optimizer, lr, schedule, clip_grad_norm, checkpoint,
                        checkpoint_every, resume, progress, device, dtype, seed, lbfgs_options, time_budget,
                        desc) -> FitConfig:
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {type(model).__name__} has no trainable parameters (rule: at least one "
                          "parameter with requires_grad=True)")
    if not callable(loss_fn):
        raise ConfigError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    if data is not None and not callable(data):
        try:
            it = iter(data)
        except TypeError:
            raise ConfigError(f"data must be None, an iterable of batches (e.g. a DataLoader) or a callable "
                              f"step -> batch; got {type(data).__name__}") from None
        if it is data:
            raise ConfigError(f"data is a one-shot iterator ({type(data).__name__}); it cannot be cycled or "
                              "replayed on resume (rule: pass a re-iterable such as a list or a DataLoader, or "
                              "a callable step -> batch)")
    if not _is_int(steps) or steps < 1:
        raise ConfigError(f"steps={steps!r} must be an integer >= 1")
    if isinstance(optimizer, torch.optim.Optimizer):
        if lr is not None:
            raise ConfigError(f"lr={lr!r} was given together with an optimizer instance, whose own lr would "
                              "be used (rule: set the learning rate on the instance and pass lr=None)")
        owned = {id(p) for p in model.parameters()}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in owned:
                    raise ConfigError("the optimizer instance holds a parameter that is not a parameter of "
                                      "model (rule: build it from model.parameters())")
        name = optimizer
    elif isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        name = optimizer.lower()
        lr = DEFAULT_LR[name] if lr is None else _positive_finite("lr", lr)
    else:
        raise ConfigError(f"optimizer={optimizer!r} is not one of {', '.join(map(repr, OPTIMIZERS))} or a "
                          "torch.optim.Optimizer instance")
    if lbfgs_options is not None:
        if name != "lbfgs":
            raise ConfigError(f"lbfgs_options={lbfgs_options!r} given but optimizer={optimizer!r} is not "
                              "'lbfgs'")
        if not isinstance(lbfgs_options, dict):
            raise ConfigError(f"lbfgs_options must be a dict, got {type(lbfgs_options).__name__}")
        unknown = sorted(set(lbfgs_options) - set(LBFGS_OPTIONS))
        if unknown:
            raise ConfigError(f"lbfgs_options has unknown key(s) {unknown} (rule: keys among {list(LBFGS_OPTIONS)})")
        if lbfgs_options.get("line_search_fn", "strong_wolfe") not in (None, "strong_wolfe"):
            raise ConfigError(f"lbfgs_options line_search_fn={lbfgs_options['line_search_fn']!r} must be None "
                              "or 'strong_wolfe'")
    lbfgs = {"line_search_fn": "strong_wolfe", **(lbfgs_options or {})}
    if schedule is not None and not callable(schedule):
        raise ConfigError(f"schedule must be None or a callable optimizer -> LRScheduler, got "
                          f"{type(schedule).__name__}")
    clip = _positive_finite("clip_grad_norm", clip_grad_norm, allow_none=True)
    path = None
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise ConfigError(f"checkpoint={checkpoint!r} must be a file path (str or os.PathLike)")
        path = Path(checkpoint)
        if path.is_dir():
            raise ConfigError(f"checkpoint={str(checkpoint)!r} is a directory (rule: a file path)")
    if not _is_int(checkpoint_every) or checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every={checkpoint_every!r} must be an integer >= 1")
    if not isinstance(resume, bool):
        raise ConfigError(f"resume={resume!r} must be True or False")
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise ConfigError(f"seed={seed!r} must be None or an integer >= 0")
    budget = _positive_finite("time_budget", time_budget, allow_none=True)
    if desc is not None and not isinstance(desc, str):
        raise ConfigError(f"desc={desc!r} must be None or a string")
    return FitConfig(steps=int(steps), optimizer=name, lr=lr, clip_grad_norm=clip, checkpoint=path,
                     checkpoint_every=int(checkpoint_every), resume=resume, progress=bool(progress),
                     device=resolve_device(device), dtype=resolve_dtype(dtype), seed=seed, lbfgs_options=lbfgs,
                     time_budget=budget, desc=desc)
