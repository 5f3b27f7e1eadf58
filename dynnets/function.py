"""Fields given by a function or a user's own ``nn.Module`` (``FunctionField``, ``as_field``: the rule by which
``dn.solve`` and ``dn.Step`` take any callable), and a field run backwards in time (``Negated``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from .base import Field
from .checks import check_bool, check_size
from .errors import ConfigTypeError, DtypeError, ShapeError


class FunctionField(Field):
    """F(x) = fn(x), or with ``time_dependent=True`` F(t, x) = fn(t, x) (t of shape () or (batch,)), for any
    callable on (batch, ...) states (a user's ``nn.Module`` trains like any field). A signature contradicting
    ``time_dependent`` is refused at construction. No traits. ``dim`` (optional) fixes the last axis; None
    accepts any shape. Every output must have the input's shape and dtype (``ShapeError``, ``DtypeError``).
    """

    def __init__(self, fn: Callable, dim: int | None = None, *, time_dependent: bool = False):
        super().__init__()
        if isinstance(fn, Field) or not callable(fn):
            raise ConfigTypeError(f"FunctionField needs a callable that is not already a Field, got "
                                  f"{type(fn).__name__}")
        self.fn = fn
        self.dim = None if dim is None else check_size("dim", dim)
        self.state_ndim = None if dim is None else 1
        self.time_dependent = check_bool("time_dependent", time_dependent)
        required = _required_positional(fn)
        if required == (1 if self.time_dependent else 2):  # would fail at the first call with a TypeError
            raise ConfigTypeError(f"FunctionField({_name(fn)}, time_dependent={self.time_dependent}) calls it as "
                                  f"{'f(t, x)' if self.time_dependent else 'f(x)'}, but it takes {required} required "
                                  f"positional parameter(s) (rule: time_dependent=True for f(t, x), False for f(x))")

    def check_input(self, x: torch.Tensor) -> None:
        if self.dim is not None:
            super().check_input(x)

    def forward(self, *args) -> torch.Tensor:
        x = args[-1]
        self.check_input(x)
        out = self.fn(*args)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ShapeError(f"FunctionField's function returned {shape} for a state of shape {tuple(x.shape)} "
                             "(rule: F(x) has the shape of x)")
        if out.dtype != x.dtype:
            raise DtypeError(f"FunctionField's function returned {out.dtype} for a state of {x.dtype} (rule: F(x) "
                             "has the dtype of x)")
        return out

    def extra_repr(self) -> str:
        timed = ", time_dependent=True" if self.time_dependent else ""
        return f"fn={_name(self.fn)}, dim={self.dim}{timed}"


def as_field(fn) -> Field:
    """``fn`` as a field: a ``Field`` as it is, another callable as a ``FunctionField`` by its signature (an
    ``nn.Module``: its ``forward``): exactly two required positional parameters is ``fn(t, x)``, exactly one
    ``fn(x)``, anything else ``ConfigTypeError`` (wrap it in ``FunctionField(fn, time_dependent=...)``)."""
    if isinstance(fn, Field):
        return fn
    if not callable(fn):
        raise ConfigTypeError(f"field must be a dynnets Field, an nn.Module or a function, got {type(fn).__name__}")
    required = _required_positional(fn)
    if required not in (1, 2):
        raise ConfigTypeError(f"cannot tell how to call {_name(fn)}: it has "
                              f"{'no readable signature' if required is None else f'{required} required positional parameters'}"
                              " (rule: exactly 2 means f(t, x), exactly 1 means f(x); else wrap it: "
                              "dn.fields.FunctionField(fn, time_dependent=...))")
    return FunctionField(fn, time_dependent=required == 2)


def _required_positional(fn) -> int | None:
    """The number of required positional parameters of ``fn`` (an ``nn.Module``: of its ``forward``), or
    None where Python cannot read its signature (some builtins)."""
    try:
        params = inspect.signature(fn.forward if isinstance(fn, nn.Module) else fn).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional and p.default is p.empty for p in params)


def _name(fn) -> str:
    return getattr(fn, "__qualname__", type(fn).__name__)


class Negated(Field):
    """G(s, x) = -F(-s, x): ``field`` backwards in time (s = -t; F gets the true time). No traits."""

    def __init__(self, field: Field):
        super().__init__()
        self.field = field
        self.dim, self.state_ndim, self.time_dependent = field.dim, field.state_ndim, field.time_dependent

    def check_input(self, x: torch.Tensor) -> None:
        self.field.check_input(x)

    def forward(self, *args) -> torch.Tensor:
        return -self.field.at(-args[0], args[1]) if self.time_dependent else -self.field(args[0])
