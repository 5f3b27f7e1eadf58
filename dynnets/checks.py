"""The one validation layer for options: each check returns the normalised value or raises a typed error
(``ConfigError`` unless told otherwise) whose one-line message names the value and the rule.

Strict on types: a bool is not a number (``h=True``), a string is not a number (``h='0.1'``), a tensor
that requires grad is not a constant (its gradient would be dropped silently).
"""

from __future__ import annotations

import math
import numbers

import torch

from .errors import ConfigError

#: the largest size (a dimension, a width, a grid) any constructor accepts: torch's index range
MAX_SIZE = 2**31 - 1
#: the most steps one Flow holds (weight-tied steps are stored by index: 8 bytes each)
MAX_STEPS = 10**7


def check_size(name: str, value) -> int:
    """A size argument must be a positive int (at most MAX_SIZE)."""
    return check_int(name, value, minimum=1, maximum=MAX_SIZE)


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
              error: type[Exception] = ConfigError) -> int:
    """An integer (not a bool) in [minimum, maximum]."""
    rule = ("a positive integer" if minimum == 1 else "an integer" if minimum is None
            else f"an integer >= {minimum}")
    if maximum is not None:
        rule += f" (at most {maximum})"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be {rule}, got {value!r}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise error(f"{name} must be {rule}, got {v}")
    return v


def check_bool(name: str, value) -> bool:
    """True or False, nothing that merely converts to one (``learn_h='no'`` is refused)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return value


def real(name: str, value, error: type[Exception] = ConfigError, *, symbol: str | None = None,
         minimum: float | None = None, positive: bool = False) -> float:
    """``value`` as a finite float: a real number (int, float, numpy scalar or 0-d tensor without grad),
    not a bool or string; ``positive`` requires > 0, ``minimum`` requires >= minimum."""
    shown = symbol or name
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex():
            raise error(f"{name} must be a real number, got a tensor of shape {tuple(value.shape)}")
        if value.requires_grad:
            raise error(f"{name} must be a constant, got a tensor that requires grad (its gradient would be "
                        "dropped; use the layer's option to learn it)")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise error(f"{name} must be finite, got {shown}={v}")
    if positive and not v > 0:
        raise error(f"{name} must be positive and finite, got {shown}={v}")
    if minimum is not None and v < minimum:
        raise error(f"{name} must be >= {minimum:g}, got {shown}={v}")
    return v


def positive_real(name: str, value, error: type[Exception] = ConfigError, *, symbol: str | None = None) -> float:
    """``real(..., positive=True)``: a finite number > 0."""
    return real(name, value, error, symbol=symbol, positive=True)


MAX_INIT_SCALE = 1e3


def init_scale(value, positive: bool = False) -> float:
    """An initialisation scale relative to the variance-preserving one: a number in [0, 1e3] ((0, 1e3] with
    ``positive``: a scale the weights are normalised to); larger initial weights make float32 states
    overflow within a few layers."""
    v = real("init_scale", value, minimum=None if positive else 0.0, positive=positive)
    if v > MAX_INIT_SCALE:
        raise ConfigError(f"init_scale must be <= {MAX_INIT_SCALE:g}, got init_scale={v}")
    return v
