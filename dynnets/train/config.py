"""Up-front validation of `fit`'s options (ConfigError naming the value and the rule) before any work;
a phase's options are checked by :mod:`dynnets.train.phase`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch

from ..checks import check_bool, check_int, positive_real
from ..errors import ConfigError
from .monitor import Monitor
from .phase import Phase, check_phases
from .rng import MAX_SEED

_DTYPES = {
    "float32": torch.float32, "float": torch.float32, "float64": torch.float64, "double": torch.float64,
    "float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
}
TIMERS = ("wall", "cpu")


def resolve_device(device) -> torch.device:
    """'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device that exists on this machine."""
    if not isinstance(device, (str, torch.device)):
        raise ConfigError(f"device={device!r} must be a string such as 'cpu' or 'cuda', or a torch.device")
    try:
        d = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device={device!r} is not a device name (rule: 'cpu', 'cuda', 'cuda:N' or "
                          "'mps')") from None
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
    if d.type == "mps" and torch.backends.mps.is_available():
        return d
    raise ConfigError(f"device={device!r} is not available (rule: 'cpu', 'cuda', 'cuda:N' or 'mps' on a "
                      "machine that has it)")


def resolve_dtype(dtype) -> torch.dtype | None:
    """None (keep the model's dtype), a floating torch.dtype, or one of its names ('float32', 'float64', ...)."""
    if dtype is None or (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.")]
    raise ConfigError(f"dtype={dtype!r} is not a floating-point dtype (rule: None, a torch floating dtype or "
                      f"one of {sorted(_DTYPES)})")


@dataclass(frozen=True)
class Options:
    """How `fit` carries a run out (everything but its phases); see docs/training.md."""

    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int = 100
    resume: bool = True
    progress: bool = True
    device: str | torch.device | None = None
    dtype: str | torch.dtype | None = None
    seed: int | None = None
    time_budget: float | None = None
    timer: str = "wall"
    keep_best: bool = False
    monitor: Monitor | None = None
    desc: str | None = None
    on_step: Callable | None = None
    settings: dict = field(default_factory=dict)


RUN_OPTIONS = tuple(f.name for f in fields(Options))
# the single-phase shorthand of fit: fit(model, loss, data, steps=..., optimizer=..., lr=..., schedule=...)
PHASE_OPTIONS = ("steps", "optimizer", "lr", "schedule")


def check_checkpoint_path(checkpoint) -> Path | None:
    """The resolved checkpoint path, refused when it cannot be written: a directory, a parent that is a
    file, or a directory this process cannot write to (tried with a real write: os.access is not reliable)."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise ConfigError(f"checkpoint={checkpoint!r} must be a file path (str or os.PathLike)")
    path = Path(os.path.realpath(checkpoint))
    if path.is_dir():
        raise ConfigError(f"checkpoint={str(checkpoint)!r} is a directory (rule: a file path)")
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "is a file, not a directory")
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        raise ConfigError(f"checkpoint={str(checkpoint)!r} cannot be written: {existing}: {e.strerror} (rule: a "
                          "path whose parent is a writable directory)") from None
    return path


def check_options(run: Options) -> Options:
    """The run options, validated and normalised (path resolved, device and dtype resolved)."""
    check_int("checkpoint_every", run.checkpoint_every, minimum=1)
    if run.seed is not None:
        check_int("seed", run.seed, minimum=0, maximum=MAX_SEED)
    if run.timer not in TIMERS:
        raise ConfigError(f"timer={run.timer!r} must be one of {', '.join(map(repr, TIMERS))}")
    if run.monitor is not None and not isinstance(run.monitor, Monitor):
        raise ConfigError(f"monitor must be None or a dynnets.train.Monitor, got {type(run.monitor).__name__}")
    if run.desc is not None and not isinstance(run.desc, str):
        raise ConfigError(f"desc={run.desc!r} must be None or a string")
    if run.on_step is not None and not callable(run.on_step):
        raise ConfigError(f"on_step must be None or callable, got {type(run.on_step).__name__}")
    budget = None if run.time_budget is None else positive_real("time_budget", run.time_budget)
    return replace(run, settings=_json_dict(run.settings), checkpoint=check_checkpoint_path(run.checkpoint),
                   time_budget=budget,
                   device=None if run.device is None else resolve_device(run.device), dtype=resolve_dtype(run.dtype),
                   **{k: check_bool(k, getattr(run, k)) for k in ("resume", "keep_best", "progress")})


def _json_dict(settings) -> dict:
    """The caller's own settings as they read back from JSON (so a tuple compares equal to its list)."""
    if settings is None:
        return {}
    try:
        if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
            raise TypeError("not a dict with string keys")
        return json.loads(json.dumps(settings, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"settings={settings!r} must be a dict of JSON-able values with string keys, no NaN "
                          f"({e})") from None


def split_options(model, loss_fn, data, phases, options: dict) -> tuple[tuple[Phase, ...], Options]:
    """fit's keywords as (checked phases, checked options); ConfigError before any work."""
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {type(model).__name__} has no trainable parameters (rule: at least one "
                          "parameter with requires_grad=True)")
    if not callable(loss_fn):
        raise ConfigError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    check_data(data)
    unknown = sorted(set(options) - set(RUN_OPTIONS) - set(PHASE_OPTIONS))
    if unknown:
        raise ConfigError(f"fit got unknown option(s) {unknown} (rule: run options {list(RUN_OPTIONS)}, "
                          f"phase options {list(PHASE_OPTIONS)})")
    shorthand = {k: v for k, v in options.items() if k in PHASE_OPTIONS}
    if phases is not None and shorthand:
        raise ConfigError(f"{sorted(shorthand)} given together with phases= (rule: describe each phase with "
                          "dynnets.train.Phase)")
    if phases is None:  # the one phase of the shorthand keywords
        steps = shorthand.get("steps")
        if steps is None:
            raise ConfigError("fit needs steps=N (one phase) or phases=[Phase(...), ...]")
        check_int("steps", steps, minimum=1)
        phases = Phase(shorthand.get("optimizer", "adam"), steps, lr=shorthand.get("lr"),
                       schedule=shorthand.get("schedule"))
    phases = check_phases(phases)
    run = check_options(Options(**{k: v for k, v in options.items() if k in RUN_OPTIONS}))
    if run.keep_best and data is not None and not callable(data):
        raise ConfigError("keep_best=True with an iterable of batches: losses of different batches cannot be "
                          "compared (rule: keep_best with data=None or a callable step -> batch)")
    return phases, run


def check_data(data) -> None:
    """None, a callable step -> batch, or a re-iterable of batches; a tuple or list of two or more tensors is
    refused (ambiguous: one batch (x, y) or two batches)."""
    if data is None or callable(data):
        return
    if isinstance(data, (tuple, list)) and len(data) > 1 and all(isinstance(b, torch.Tensor) for b in data):
        raise ConfigError(f"data is a {type(data).__name__} of {len(data)} tensors, which fit would iterate as "
                          f"{len(data)} separate batches; pass [({', '.join('x' + str(i) for i in range(len(data)))})] "
                          "for one batch used at every step (rule: a tuple or list of tensors is ambiguous)")
    try:
        it = iter(data)
    except TypeError:
        raise ConfigError(f"data must be None, an iterable of batches (e.g. a DataLoader) or a callable "
                          f"step -> batch; got {type(data).__name__}") from None
    if it is data:
        raise ConfigError(f"data is a one-shot iterator ({type(data).__name__}); it cannot be cycled or "
                          "replayed on resume (rule: pass a re-iterable such as a list or a DataLoader, or "
                          "a callable step -> batch)")
