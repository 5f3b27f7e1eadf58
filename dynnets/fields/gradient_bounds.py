"""Certified bounds shared by the gradient-field families F(x) = sign * A^T sigma(A x + b): a family mixes in
``GradientBounds`` with ``weight_name``, A a matrix (exact SVD) or a circular-convolution kernel on the grid
``input_size`` (exact FFT symbol), and gets ``lipschitz_bound()``, ``euler_lipschitz_bound(h)``
(``gradient_euler_bound``; None without a certified slope range) and ``stiffness()`` = beta ||A||_2^2 for
sign -1 (Euler's largest stable step is then its largest 1-Lipschitz step, to which
``constraints.ContractiveStep`` clamps h).
"""

from __future__ import annotations

import math

import torch

from ..checks import real
from ..errors import ConfigError, NonFiniteWeightError, NotCertifiedError, StepSizeError
from ..linalg import conv_bounds, matrix_bounds, memoized
from .activations import activation_slopes

SAFETY = 1.0 - 64 * torch.finfo(torch.float64).eps
#: the largest step size a certified rule ever derives (a zero weight would otherwise give h = inf, and inf * 0 =
#: NaN); any smaller h keeps every certified inequality, so the cap only makes a step more conservative
STEP_CAP = 1e6


def gradient_euler_bound(h: float, sign: int, smin: float, smax: float, slopes: tuple[float, float]) -> float:
    """Lip of x -> x + sign h A^T sigma(A x + b): max(|1 - h beta smax^2|, |1 - h a smin^2|) for sign -1, 1 +
    h beta smax^2 for +1 (docs/lipschitz.md); every argument a finite real number (h >= 0, 0 <= smin <=
    smax, slopes (a, beta) with 0 <= a <= beta), else a typed error."""
    h = real("gradient_euler_bound's step size h", h, StepSizeError, symbol="h", minimum=0.0)
    smin = real("gradient_euler_bound's smin", smin, symbol="smin", minimum=0.0)
    smax = real("gradient_euler_bound's smax", smax, symbol="smax", minimum=smin)
    if isinstance(slopes, (str, bytes)) or not isinstance(slopes, (tuple, list)) or len(slopes) != 2:
        raise ConfigError(f"gradient_euler_bound's slopes must be a pair (a, beta), got {slopes!r}")
    a = real("gradient_euler_bound's slope a", slopes[0], symbol="a", minimum=0.0)
    beta = real("gradient_euler_bound's slope beta", slopes[1], symbol="beta", minimum=a)
    if sign == -1:
        return max(abs(1.0 - h * beta * smax * smax), abs(1.0 - h * a * smin * smin))
    if sign == 1:
        return 1.0 + h * beta * smax * smax
    raise ConfigError(f"sign must be -1 or +1, got {sign!r}")


def check_sign(sign) -> int:
    """A gradient field's sign, -1 (contractive) or +1 (expansive); ConfigError otherwise."""
    if isinstance(sign, bool) or sign not in (-1, 1):
        raise ConfigError(f"sign must be -1 (contractive, -grad V) or +1 (expansive), got sign={sign!r}")
    return int(sign)


class GradientBounds:
    sign: int
    #: the attribute holding the weight whose norms bound the field: A (dense) or K (convolution); None: none
    weight_name: str | None = None

    def spectral_bounds(self, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact (s_min, s_max) of the field's linear map, differentiable, in ``dtype``."""
        return memoized(self._weight(), ("spectral_bounds", dtype),
                        lambda: self._spectral_bounds(self._weight(dtype)))

    def _weight(self, dtype=None) -> torch.Tensor:
        w = getattr(self, self.weight_name)
        return w if dtype is None else w.to(dtype)

    def _spectral_bounds(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return matrix_bounds(w) if w.dim() == 2 else conv_bounds(w, self.input_size)

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        smin, smax = self.spectral_bounds(torch.float64)
        return float(self.activation.lipschitz * smax * smax)

    @torch.no_grad()
    def euler_lipschitz_bound(self, h) -> float | None:
        try:
            slopes = activation_slopes(self.activation)
        except NotCertifiedError:
            return None
        h = float(h.detach()) if isinstance(h, torch.Tensor) else float(h)
        smin, smax = (float(s) for s in self.spectral_bounds(torch.float64))
        if not (math.isfinite(smin) and math.isfinite(smax)):  # an inf weight: the SVD gives NaN, no error
            raise NonFiniteWeightError(f"{type(self).__name__}'s weight has NaN or inf entries (singular values "
                                       f"{smin}, {smax}; rule: finite weights)")
        return gradient_euler_bound(h, self.sign, smin, smax, slopes)

    def stiffness(self) -> torch.Tensor | None:
        """beta ||A||_2^2, a differentiable float64 tensor; None for an expansive field (positive spectrum) or
        an activation without a certified slope range."""
        if self.sign != -1:
            return None
        try:
            _, beta = activation_slopes(self.activation)
        except NotCertifiedError:
            return None
        _, smax = self.spectral_bounds(torch.float64)
        return beta * smax * smax
