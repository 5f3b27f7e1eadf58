"""Argument checks shared across dynnets: each returns the normalised value or raises a typed error
that names the value and the rule."""

from __future__ import annotations

import math

from .errors import ConfigError


def check_size(name: str, value) -> int:
    """A size argument must be a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_real(name: str, value, error: type[Exception] = ConfigError, *, symbol: str | None = None) -> float:
    """``value`` as a float; ``error`` unless it is a real number, finite and > 0. The message names the
    value as ``symbol=value`` (``symbol`` defaults to ``name``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a real number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise error(f"{name} must be positive and finite, got {symbol or name}={v}")
    return v
