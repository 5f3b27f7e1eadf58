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

from ..checks import real
from ..errors import StepSizeError
from ..fields.activations import activation_slopes, leaky_relu
from ..fields.gradient_bounds import gradient_euler_bound

__all__ = ["activation_slopes", "gradient_euler_bound", "leaky_relu", "seed_contraction"]


def seed_contraction(h: float) -> float:
    """sqrt(1 - h + h^2): the seed slides' contraction factor (orthogonal A, slopes in [1/2, 1]); h >= 0."""
    h = real("seed_contraction's step size h", h, StepSizeError, symbol="h", minimum=0.0)
    return math.sqrt(1.0 - h + h * h)
