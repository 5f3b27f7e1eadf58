"""Step-size control for embedded pairs: the scaled error norm, the PI controller and the first step.

Error norm (Hairer, Norsett, Wanner I, II.4, (4.11)): the RMS of e_j / (atol + rtol max(|x_j|, |x'_j|)) over a
state's components (``scaled_rms``), reduced over the batch by ``norm``: "worst" (the largest row) or "rms"
(one RMS over the batch; README, "The error norm"). A step is accepted when the norm is at most 1.

PI controller (Gustafsson 1991; HNW I, II.4 and II, IV.2, (2.43c)): after an accepted step with error err_n,

    h_(n+1) = h_n * clamp(safety * err_n^(-alpha) * err_(n-1)^beta, min_factor, max_factor),

for an error estimate of order k (``EmbeddedPair.error_order``), beta = 0.1 / k, alpha = 1 / k - 0.75 beta
(the choice of beta: benchmarks/README.md, "solve"). No growth right after a rejection; a rejected step is
retried with h * max(min_factor, safety * err^(-1/k)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..checks import positive_real, real
from ..errors import ConfigError, ToleranceError

#: errors below this are treated as this when they enter a power (the PI memory err_(n-1) too)
FLOOR = 1e-10
#: how a batch's error is reduced (module docstring)
NORMS = ("worst", "rms")


@dataclass(frozen=True)
class PIController:
    """The PI controller of the module docstring; ``beta`` None: 0.1/k, ``alpha`` None: 1/k - 0.75 beta."""

    alpha: float | None = None
    beta: float | None = None
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0

    def __post_init__(self):
        for name in ("alpha", "beta"):
            if getattr(self, name) is not None:
                real(f"PIController {name}", getattr(self, name), minimum=0.0)
        safety = positive_real("PIController safety", self.safety)
        low = positive_real("PIController min_factor", self.min_factor)
        high = positive_real("PIController max_factor", self.max_factor)
        if not (safety <= 1.0 and low < 1.0 < high):
            raise ConfigError(f"PIController needs safety <= 1 and min_factor < 1 < max_factor, got safety={safety}, "
                              f"min_factor={low}, max_factor={high}")

    def accepted(self, h: float, err: float, previous: float, k: int, after_rejection: bool) -> float:
        """The next step size after an accepted step of size h with error err (previous: the error of
        the step accepted before it, 1 at the start; k: the order of the error estimate)."""
        beta = 0.1 / k if self.beta is None else self.beta
        alpha = 1.0 / k - 0.75 * beta if self.alpha is None else self.alpha
        factor = self.safety * max(err, FLOOR) ** -alpha * max(previous, FLOOR) ** beta
        factor = min(self.max_factor, max(self.min_factor, factor))
        return h * (min(factor, 1.0) if after_rejection else factor)

    def rejected(self, h: float, err: float, k: int) -> float:
        """The retry size after a rejected step (err > 1, or not finite: then min_factor)."""
        if not math.isfinite(err):
            return h * self.min_factor
        return h * max(self.min_factor, self.safety * err ** (-1.0 / k))


def _rms(ratio: torch.Tensor, norm: str = "worst") -> torch.Tensor:
    """Per row ("worst"; the whole batch as one row for "rms"): sqrt(mean_j ratio_j^2) without overflow (the
    largest |entry| when it exceeds 1e150)."""
    ratio = ratio.flatten(1) if norm == "worst" else ratio.reshape(1, -1)
    largest = ratio.abs().amax(dim=1)
    return torch.where(largest < 1e150, ratio.square().mean(dim=1).sqrt(), largest)


def scaled_rms(e: torch.Tensor, x: torch.Tensor, x_new: torch.Tensor, rtol: float, atol: float,
               norm: str = "worst") -> torch.Tensor:
    """Per row: sqrt(mean_j (e_j / (atol + rtol max(|x_j|, |x'_j|)))^2) (``_rms``); 0/0 counts as 0, a nonzero
    e_j over a zero scale stays inf."""
    scale = torch.maximum(x.abs(), x_new.abs()).mul_(rtol).add_(atol)
    ratio = e / scale
    if atol == 0.0:  # only then can a scale be 0
        ratio = torch.where((e == 0) & (scale == 0), 0.0, ratio)
    return _rms(ratio, norm)


@torch.no_grad()
def pair_error(pair, ks, h: float, x: torch.Tensor, x_new: torch.Tensor, rtol: float, atol: float,
               norm: str = "worst") -> float:
    """The error of one attempted step, reduced over the batch by ``norm``: ||e|| for one estimator,
    ||e_1||^2 / sqrt(||e_1||^2 + 0.01 ||e_2||^2) for two (``EmbeddedPair``); nan-safe (nan -> inf)."""
    norms = [scaled_rms(pair.combine(None, h, ks, weights), x, x_new, rtol, atol, norm)
             for weights in pair.error_weights]
    if len(norms) == 1:
        err = norms[0]
    else:
        high, low = norms
        denominator = torch.hypot(high, 0.1 * low)
        err = torch.where(denominator > 0, high * (high / torch.where(denominator > 0, denominator, 1.0)), 0.0)
    worst = float(err.max())
    return worst if worst == worst else math.inf


@torch.no_grad()
def initial_step(field, k0: torch.Tensor, x0: torch.Tensor, t0: float, span: float, order: int, rtol: float,
                 atol: float, norm: str = "worst") -> float:
    """Hairer's starting step (HNW I, II.4): d0 = ||x0||, d1 = ||F(t0, x0)|| in the scaled norm (scale
    atol + rtol |x0_j|, zero-scale components left out), h0 = 0.01 d0 / d1, d2 = ||F(t0 + h0, x1) - F(t0, x0)||
    / h0 after one Euler step, h = min(100 h0, (0.01 / max(d1, d2))^(1/order), span); the smallest over rows.
    One evaluation. Finite and positive, else ``ToleranceError``."""
    scale = x0.abs() * rtol + atol
    d0, d1 = _rms(_measured(x0, scale), norm), _rms(_measured(k0, scale), norm)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1)
    h0 = min(float(h0.min()), span)
    if not h0 > 0.0:
        raise ToleranceError(f"no first step at t={t0!r}: 0.01 ||x0|| / ||F(t0, x0)|| = {h0!r} in the scaled norm "
                             f"(rtol={rtol:g}, atol={atol:g}); F(t0, x0) is not finite or too large for the scale "
                             "(rule: a step must be finite and positive)")
    k1 = field.at(t0 + h0, x0 + h0 * k0)
    d2 = float(_rms(_measured(k1 - k0, scale), norm).max()) / h0
    d12 = max(float(d1.max()), d2 if d2 == d2 else math.inf)
    h1 = max(1e-6, h0 * 1e-3) if not d12 > 1e-15 else (0.01 / d12) ** (1.0 / order)
    h = min(100.0 * h0, h1, span)
    return h if h > 0.0 else h0  # h1 = 0 where F(t0 + h0, x1) is not finite: h0 it is, the error norm decides


def _measured(v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """v / scale, 0 where the scale is 0 (the starting step's norm leaves such components out)."""
    return torch.where(scale > 0, v / scale, 0.0)
