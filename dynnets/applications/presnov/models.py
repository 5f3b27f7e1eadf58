"""The two networks the Presnov experiment compares, with matched parameter counts: ``presnov_flow`` and
``dense_resnet`` (n_steps explicit Euler steps of ``Dense``: an unstructured ResNet)."""

from __future__ import annotations

from ...checks import check_int
from ...errors import ConfigError
from ...fields import Dense, Gradient, SpherePreserving
from ...methods import Cayley, Euler
from ...step import Flow, Step


def presnov_flow(dim: int, n_steps: int, width: int, *, t: float = 1.0, signs: str = "alternate",
                 activation: str = "tanh") -> Flow:
    """G(+1), S, G(-1), S, ... (explicit Euler of ``Gradient(sign=s)``, Cayley of ``SpherePreserving``),
    n_steps / 2 of each; each family's steps span total time t. ``signs``: "alternate" (+1, -1, +1, ...) or
    "negative" (all -1, the ablation; why one sign is not enough: docs/theory.md)."""
    if check_int("n_steps", n_steps, minimum=1) % 2:
        raise ConfigError(f"n_steps must be even (gradient/sphere pairs), got n_steps={n_steps}")
    if signs not in ("alternate", "negative"):
        raise ConfigError(f"signs must be 'alternate' or 'negative', got {signs!r}")
    h, steps = t / (n_steps // 2), []
    for k in range(n_steps // 2):
        sign = 1 if signs == "alternate" and k % 2 == 0 else -1
        steps += [Step(Gradient(dim, width, sign=sign, activation=activation), Euler(), h),
                  Step(SpherePreserving(dim, width, activation=activation), Cayley(), h)]
    return Flow(steps)


def dense_resnet(dim: int, n_steps: int, width: int, *, t: float = 1.0, activation: str = "tanh") -> Flow:
    check_int("n_steps", n_steps, minimum=1)
    return Flow([Step(Dense(dim, width, activation=activation), Euler(), t / n_steps) for _ in range(n_steps)])


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def matched_dense_width(dim: int, n_steps: int, width: int) -> int:
    """Width of ``dense_resnet(dim, n_steps, .)`` whose parameter count is closest to presnov_flow's."""
    target = n_params(presnov_flow(dim, n_steps, width))
    per_unit = n_params(dense_resnet(dim, n_steps, 1))  # Dense: (2 dim + 1) per hidden unit
    return max(1, round(target / per_unit))
