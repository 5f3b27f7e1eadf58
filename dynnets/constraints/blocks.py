"""Certified blocks beyond the switching pairs, each a step or a flow of steps; proofs: docs/lipschitz.md."""

from __future__ import annotations

from ..checks import positive_real
from ..errors import StepSizeError
from ..fields.maxmin import MaxMin
from ..fields.rescaled_gradient import CERTIFIED_STIFFNESS, ConvRescaledGradient, RescaledGradient
from ..methods.rk import Euler
from ..step import Flow, Step
from .layers import OrthogonalLinear

__all__ = ["conv_rescaled_step", "maxmin_step", "orthogonal_block", "rescaled_step"]


def _rescaled_h(h, learn_h: bool) -> tuple[float, float | None]:
    """h and the learned bound h_max from Euler's largest stable step on any rescaled gradient field: its
    real stability interval over the stiffness the rescaling certifies for every A (2 / 1)."""
    h = positive_real("step size h", h, StepSizeError, symbol="h")
    limit = Euler().real_stability_interval / CERTIFIED_STIFFNESS
    if h > limit or (learn_h and h >= limit):
        raise StepSizeError(f"a rescaled gradient step is certified 1-Lipschitz for h <= {limit:g} (Euler's "
                            f"stability interval 2 over the certified stiffness 1; a learned h starts below its "
                            f"bound h_max = {limit:g}), got h={h}")
    return h, (limit if learn_h else None)


def rescaled_step(dim: int, width: int, activation="relu", h: float = 2.0, *, learn_h: bool = False,
                  init_scale: float = 1.0) -> Step:
    """Euler of ``RescaledGradient``, x -> x - h A^T T^{-1} sigma(A x + b), 1-Lipschitz for every A (h <= 2;
    h = 2: the SDP-based Lipschitz layer, SLL; a learned h stays in (0, 2) by construction)."""
    h, h_max = _rescaled_h(h, learn_h)
    field = RescaledGradient(dim, width, activation, init_scale=init_scale)
    return Step(field, Euler(), h, learn_h=learn_h, h_max=h_max)


def conv_rescaled_step(channels: int, hidden: int, input_size, kernel_size: int = 3, activation="relu",
                       h: float = 2.0, *, learn_h: bool = False, init_scale: float = 1.0) -> Step:
    """U -> U - h K^T T^{-1} sigma(K U + b), circular convolutions on ``input_size``; 1-Lipschitz for every K."""
    h, h_max = _rescaled_h(h, learn_h)
    field = ConvRescaledGradient(channels, hidden, input_size, kernel_size, activation, init_scale=init_scale)
    return Step(field, Euler(), h, learn_h=learn_h, h_max=h_max)


def maxmin_step(size: int, axis: int = -1) -> Step:
    """MaxMin on ``size`` features along ``axis`` as the Euler step h = 1 of ``dynnets.fields.MaxMin``."""
    return Step(MaxMin(size, axis), Euler(), 1.0)


def orthogonal_block(n_in: int, n_out: int, bias: bool = True) -> Flow:
    """x -> MaxMin(Q x + b), Q with orthonormal columns or rows (exact QR; Anil et al. 2019); bound 1 to
    round-off."""
    return Flow([OrthogonalLinear(n_in, n_out, bias), maxmin_step(n_out)])
