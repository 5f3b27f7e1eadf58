"""Certified Lipschitz bounds of explicit Euler steps of gradient fields (``gradient_euler_bound``) and the
seed slides' contraction factor; the theorem and its proof: docs/lipschitz.md."""

from __future__ import annotations

import math

from ..checks import real
from ..errors import StepSizeError
from ..fields.activations import activation_slopes, leaky_relu
from ..fields.gradient_bounds import gradient_euler_bound

__all__ = ["activation_slopes", "gradient_euler_bound", "leaky_relu", "seed_contraction"]


def seed_contraction(h: float) -> float:
    """sqrt(1 - h + h^2) >= the contractive bound for A^T A = I, slopes in [1/2, 1] (seed slides); h >= 0."""
    h = real("seed_contraction's step size h", h, StepSizeError, symbol="h", minimum=0.0)
    return math.sqrt(1.0 - h + h * h)
