"""The one table of named activation functions and everything the library knows about each.

An ``Activation`` carries ``lipschitz`` (sup |sigma'|, inf when unbounded), ``slopes`` ([a, beta] of the
difference quotients of a monotone activation, else None), ``jet`` (p -> (sigma, sigma', sigma'') for Taylor
mode), ``antiderivative`` (Gamma' = sigma, e.g. log cosh for tanh) and ``slope_of_value`` (sigma' from
sigma(p), e.g. 1 - s^2 for tanh); None where not provided. ``relu2``..``relu4`` (ConvFD powers) are not
globally Lipschitz: no certified bound is claimed for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from ..checks import real
from ..errors import ConfigError, NotCertifiedError


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    lipschitz: float
    slopes: tuple[float, float] | None = None
    jet: Callable | None = None
    antiderivative: Callable | None = None
    antiderivative_name: str | None = None
    slope_of_value: Callable | None = None


def _relu2(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x).square()


def _relu3(x: torch.Tensor) -> torch.Tensor:
    r = torch.relu(x)
    return r * r * r


def _relu4(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x).square().square()


def _logcosh(z: torch.Tensor) -> torch.Tensor:
    a = z.abs()
    return a + F.softplus(-2.0 * a) - math.log(2.0)  # log cosh z without overflow


def _tanh_slope(s):
    return 1.0 - s * s


def _tanh_jet(p):
    s = torch.tanh(p)
    d1 = _tanh_slope(s)
    return s, d1, -2.0 * s * d1


def _sigmoid_slope(s):
    return s * (1.0 - s)


def _sigmoid_jet(p):
    s = torch.sigmoid(p)
    d1 = _sigmoid_slope(s)
    return s, d1, d1 * (1.0 - 2.0 * s)


def _sin_jet(p):
    s = torch.sin(p)
    return s, torch.cos(p), -s


def _softplus_jet(p):
    sg = torch.sigmoid(p)
    return F.softplus(p), sg, sg * (1.0 - sg)


ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("tanh", torch.tanh, 1.0, (0.0, 1.0), _tanh_jet, _logcosh, "logcosh", _tanh_slope),
        Activation("sigmoid", torch.sigmoid, 0.25, (0.0, 0.25), _sigmoid_jet, F.softplus, "softplus", _sigmoid_slope),
        Activation("relu", torch.relu, 1.0, (0.0, 1.0)),
        Activation("relu2", _relu2, math.inf),
        Activation("relu3", _relu3, math.inf),
        Activation("relu4", _relu4, math.inf),
        Activation("softplus", F.softplus, 1.0, (0.0, 1.0), _softplus_jet),
        Activation("sin", torch.sin, 1.0, None, _sin_jet),
        Activation("silu", F.silu, 1.1),  # sup |d/dx x sigmoid(x)| = 1.0998...; not monotone
        Activation("identity", lambda x: x, 1.0, (1.0, 1.0)),
    )
}


def get_activation(name) -> Activation:
    """The activation of that name (an ``Activation`` as is); ConfigError listing the choices otherwise."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def leaky_relu(a: float) -> Activation:
    """LeakyReLU with negative slope a in [0, 1]: monotone, difference quotients in [a, 1]."""
    a = real("leaky_relu's negative slope a", a, symbol="a")
    if not (0.0 <= a <= 1.0):
        raise ConfigError(f"leaky_relu needs a negative slope a in [0, 1], got a={a}")
    return Activation(f"leaky_relu({a!r})", partial(F.leaky_relu, negative_slope=a), 1.0, (a, 1.0))


def activation_slopes(activation) -> tuple[float, float]:
    """[a, beta] bounding the difference quotients of a *monotone* activation; NotCertifiedError otherwise."""
    act = get_activation(activation)
    if act.slopes is None:
        monotone = sorted(n for n, a in ACTIVATIONS.items() if a.slopes is not None)
        raise NotCertifiedError(f"activation {act.name!r} is not a known monotone activation with bounded "
                                f"slopes; certified gradient-step bounds need one of {monotone} or "
                                "leaky_relu(a), 0 <= a <= 1")
    return act.slopes
