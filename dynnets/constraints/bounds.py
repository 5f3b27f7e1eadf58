"""Certified Lipschitz bounds of explicit Euler steps of gradient fields x -> x + s h A^T sigma(A x + b).

Theorem (exact, no mean-value argument needed). Let sigma act entrywise, be monotone, with difference
quotients (sigma(u) - sigma(v)) / (u - v) in [a, beta], 0 <= a <= beta. For any x, y,

    Psi(x) - Psi(y) = (I + s h A^T D A)(x - y),   D = diag(difference quotients) in [a, beta],

and A^T D A is symmetric with eigenvalues in [a s_min^2, beta s_max^2], where s_max = ||A||_2 and s_min
is the smallest singular value of A as a map on R^dim (0 if A has fewer rows than columns). Hence

    s = -1 (contractive):  Lip <= max(|1 - h beta s_max^2|, |1 - h a s_min^2|)   (<= 1 iff h beta s_max^2 <= 2)
    s = +1 (expansive):    Lip <= 1 + h beta s_max^2.

With A^T A = I and slopes in [a, 1] the contractive factor is max(|1 - h|, |1 - a h|); for a >= 1/2 this
is <= sqrt(1 - h + h^2), the factor of the seed slides, for every h > 0 (h <= 1: (1 - h/2)^2 =
1 - h + h^2/4; h > 1: (h - 1)^2 = 1 - h + h^2 - h). The same holds verbatim for circular convolutions A,
whose s_min, s_max come from the FFT symbol (``norms.conv_bounds``).
"""

from __future__ import annotations

import math
import re
from functools import partial

import torch.nn.functional as F

from ..errors import ConfigError, NotCertifiedError
from ..fields.activations import Activation, get_activation

__all__ = ["activation_slopes", "gradient_euler_bound", "leaky_relu", "seed_contraction"]

#: monotone activations with their difference-quotient range [a, beta]
_SLOPES = {
    "relu": (0.0, 1.0),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 0.25),
    "softplus": (0.0, 1.0),
    "identity": (1.0, 1.0),
}
_LEAKY = re.compile(r"^leaky_relu\((.+)\)$")


def leaky_relu(a: float) -> Activation:
    """LeakyReLU with negative slope a in [0, 1]: monotone, difference quotients in [a, 1]."""
    a = float(a)
    if not (0.0 <= a <= 1.0):
        raise ConfigError(f"leaky_relu needs a negative slope a in [0, 1], got a={a}")
    return Activation(f"leaky_relu({a!r})", partial(F.leaky_relu, negative_slope=a), 1.0)


def activation_slopes(activation) -> tuple[float, float]:
    """[a, beta] bounding the difference quotients of a *monotone* activation; NotCertifiedError otherwise."""
    act = get_activation(activation)
    if act.name in _SLOPES:
        return _SLOPES[act.name]
    m = _LEAKY.match(act.name)
    if m:
        a = float(m.group(1))
        if 0.0 <= a <= 1.0:
            return a, 1.0
    raise NotCertifiedError(
        f"activation {act.name!r} is not a known monotone activation with bounded slopes; certified "
        f"gradient-step bounds need one of {sorted(_SLOPES)} or leaky_relu(a), 0 <= a <= 1"
    )


def gradient_euler_bound(h: float, sign: int, smin: float, smax: float, slopes: tuple[float, float]) -> float:
    """The bound of the module docstring for x -> x + sign h A^T sigma(A x + b)."""
    a, beta = slopes
    h, smin, smax = float(h), float(smin), float(smax)
    if sign == -1:
        return max(abs(1.0 - h * beta * smax * smax), abs(1.0 - h * a * smin * smin))
    if sign == 1:
        return 1.0 + h * beta * smax * smax
    raise ConfigError(f"sign must be -1 or +1, got {sign!r}")


def seed_contraction(h: float) -> float:
    """sqrt(1 - h + h^2): the seed slides' contraction factor (orthogonal A, slopes in [1/2, 1])."""
    h = float(h)
    return math.sqrt(1.0 - h + h * h)
