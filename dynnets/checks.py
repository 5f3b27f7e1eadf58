"""The one validation layer: each check returns the normalised value or raises a typed error
(``ConfigError`` unless told otherwise) naming the value and the rule. A bool or a string is not a number;
a tensor that requires grad is not a constant. The per-call checks (``check_state``, ``check_time``,
``check_step_fits``) read metadata only (no host synchronisation).
"""

from __future__ import annotations

import math
import numbers

import torch

from .errors import ConfigError, DeviceError, DtypeError, ShapeError, StepSizeError

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
         minimum: float | None = None, positive: bool = False, below: float | None = None,
         finite: bool = True) -> float:
    """``value`` as a finite float (``finite=False``: or +-inf, never NaN): a real number (``as_real``);
    ``positive`` requires > 0, ``minimum`` requires >= minimum, ``below`` requires < below."""
    shown = symbol or name
    v = as_real(name, value, error)
    if not math.isfinite(v) and (finite or math.isnan(v)):
        raise error(f"{name} must be {'finite' if finite else 'a number, not NaN'}, got {shown}={v}")
    if positive and not v > 0:
        raise error(f"{name} must be positive and finite, got {shown}={v}")
    if minimum is not None and v < minimum:
        raise error(f"{name} must be >= {minimum:g}, got {shown}={v}")
    if below is not None and not v < below:
        raise error(f"{name} must be < {below:g}, got {shown}={v}")
    return v


def as_real(name: str, value, error: type[Exception] = ConfigError) -> float:
    """``value`` as a float (NaN and inf included): int, float, numpy scalar or 0-d tensor without grad;
    not a bool, string or complex."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex():
            raise error(f"{name} must be a real number, got a tensor of shape {tuple(value.shape)}")
        if value.requires_grad:
            raise error(f"{name} must be a constant, got a tensor that requires grad (its gradient would be "
                        "dropped; use the layer's option to learn it)")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a real number, got {value!r}")
    return float(value)


def positive_real(name: str, value, error: type[Exception] = ConfigError, *, symbol: str | None = None) -> float:
    """``real(..., positive=True)``: a finite number > 0."""
    return real(name, value, error, symbol=symbol, positive=True)


def init_scale(value, positive: bool = False) -> float:
    """An initialisation scale relative to the variance-preserving one, in [0, 1e3] ((0, 1e3] with
    ``positive``)."""
    v = real("init_scale", value, minimum=None if positive else 0.0, positive=positive)
    if v > 1e3:
        raise ConfigError(f"init_scale must be <= 1000, got init_scale={v}")
    return v


def real_array(name: str, value, error: type[Exception] = ConfigError) -> torch.Tensor:
    """``value`` (tensor, array, number or nested sequences) as a non-empty float64 CPU tensor of finite
    real entries (no string, bool or complex)."""
    if isinstance(value, (str, bytes)):
        raise error(f"{name} must be real numbers, got the string {value!r}")
    _check_real_entries(name, value, error)
    if isinstance(value, torch.Tensor):
        out = value.detach().to("cpu", torch.float64)
    else:
        try:
            out = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise error(f"{name} must be a (nested) sequence of real numbers of one shape, got {value!r} "
                        f"({err})") from None
    if out.numel() == 0:
        raise error(f"{name} must not be empty, got shape {tuple(out.shape)}")
    if not bool(torch.isfinite(out).all()):
        raise error(f"{name} must be finite, got NaN or inf entries")
    return out


def _check_real_entries(name: str, value, error) -> None:
    """Every leaf of nested sequences (or a numpy array's dtype) is a real number, not a bool or string."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise error(f"{name} must be real numbers, got a tensor of dtype {value.dtype}")
        return
    kind = getattr(getattr(value, "dtype", None), "kind", None)  # a numpy array
    if kind is not None:
        if kind not in "fiu":
            raise error(f"{name} must be real numbers, got an array of dtype {value.dtype}")
        return
    if isinstance(value, (numbers.Number, str, bytes)):
        if isinstance(value, (bool, str, bytes)) or not isinstance(value, numbers.Real):
            raise error(f"{name} must be real numbers, got the entry {value!r}")
        return
    try:
        items = list(value)
    except TypeError:
        raise error(f"{name} must be real numbers, got {type(value).__name__}") from None
    for item in items:
        _check_real_entries(name, item, error)


def _named(who) -> str:
    """``who``: a name, or a callable giving it (built only for an error message, off the hot path)."""
    return who() if callable(who) else who


def check_state(x, who, reference: torch.Tensor | None = None) -> None:
    """A non-empty floating tensor of states with a batch axis, of the dtype and device of ``reference``
    (a parameter of the layer; None: any). ``who`` names the layer (a string or a callable giving one)."""
    if isinstance(x, torch.Tensor):
        if x.dim() != 0 and x.numel() != 0 and x.is_floating_point() and (
                reference is None or (x.dtype == reference.dtype and x.device == reference.device)):
            return  # the common case in one test; the errors below say which rule failed
    _refuse_state(x, _named(who), reference)


def _refuse_state(x, who: str, reference) -> None:
    """The typed error for states ``check_state`` did not accept, naming the rule they broke."""
    if not isinstance(x, torch.Tensor):
        raise DtypeError(f"{who} takes a torch.Tensor of states, got {type(x).__name__} (rule: convert it first, "
                         "torch.as_tensor(x, dtype=...))")
    if x.dim() == 0 or x.numel() == 0:
        raise ShapeError(f"{who} takes a non-empty batch of states (batch, ...), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DtypeError(f"{who} takes floating-point states, got {x.dtype}")
    if reference is not None:
        if x.dtype != reference.dtype:
            raise DtypeError(f"{who} has {reference.dtype} parameters but got {x.dtype} states (rule: one dtype; "
                             f"convert the states, x.to({reference.dtype}), or the model, .to({x.dtype}))")
        if x.device != reference.device:
            raise DeviceError(f"{who} has its parameters on {reference.device} but got states on {x.device} "
                              f"(rule: one device; move the states or the model, .to(device))")


def check_time(t, x: torch.Tensor, who) -> None:
    """A step's start time: a finite real number, or a real tensor of shape () or (batch,)."""
    if t.__class__ in (float, int) and -math.inf < t < math.inf:
        return  # the common case: a finite Python number (NaN fails the comparison)
    who = _named(who)
    if isinstance(t, torch.Tensor):
        if t.is_complex() or t.dtype == torch.bool:
            raise DtypeError(f"{who}'s start time t must be real, got a tensor of dtype {t.dtype}")
        if t.dim() > 1 or (t.dim() == 1 and t.shape[0] != x.shape[0]):
            raise ShapeError(f"{who}'s start time t must have shape () or (batch,) = ({x.shape[0]},), got "
                             f"{tuple(t.shape)}")
        return
    real(f"{who}'s start time t", t, symbol="t")


def per_sample_h(h, x: torch.Tensor, who) -> torch.Tensor:
    """A step size given per call (``Step.forward(x, h=...)``): a real floating tensor of shape () or (batch,)
    in x's dtype and device, returned shaped (batch or 1, 1, ..., 1) to broadcast against x. Its values are
    not read (no host synchronisation)."""
    who = _named(who)
    if not isinstance(h, torch.Tensor):
        raise DtypeError(f"{who}'s per-sample step size h must be a torch.Tensor of shape () or (batch,), got "
                         f"{type(h).__name__} (rule: a fixed h is given at construction, Step(field, method, h))")
    if not h.is_floating_point() or h.dtype != x.dtype or h.device != x.device:
        raise DtypeError(f"{who}'s per-sample step size h must be a {x.dtype} tensor on {x.device} (the states'), "
                         f"got {h.dtype} on {h.device}")
    if h.dim() > 1 or (h.dim() == 1 and h.shape[0] != x.shape[0]):
        raise ShapeError(f"{who}'s per-sample step size h must have shape () or (batch,) = ({x.shape[0]},), got "
                         f"{tuple(h.shape)}")
    return h.reshape(-1, *([1] * (x.dim() - 1)))


_DTYPE_MAX: dict = {}


def check_step_fits(h: float, dtype: torch.dtype, who) -> None:
    """A fixed step size must be finite in the dtype the step runs in (1e39 is inf in float32)."""
    top = _DTYPE_MAX.get(dtype)
    if top is None:
        top = _DTYPE_MAX[dtype] = torch.finfo(dtype).max
    if h > top:
        raise StepSizeError(f"{_named(who)}: h={h:g} is too large for {dtype}: it is inf there (rule: h <= {top:.6g}, the "
                            f"largest {dtype} number)")
