"""Euler steps of gradient fields whose Lipschitz bound is certified by construction, and the switching pairs
(expansive, contractive) built from them, 1-Lipschitz (docs/lipschitz.md). Bounds are recomputed from the
actual weights in float64 at every call, never trusted from a parametrisation or clamp.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..checks import positive_real
from ..errors import ConfigError, StepSizeError
from ..fields.activations import activation_slopes, leaky_relu
from ..fields.conv_gradient import ConvGradient
from ..fields.gradient import Gradient
from ..fields.gradient_bounds import SAFETY, STEP_CAP, GradientBounds
from ..linalg import conv_spectral_norm
from ..methods.rk import Euler
from ..step import Flow, Step
from .parametrize import ConvSpectralNormBound, Orthogonal, SpectralNormBound

__all__ = ["ContractiveStep", "ExpansiveStep", "conv_switching_pair", "is_certified", "switching_pair"]

#: the smallest partner bound L_C the exact rule divides by (1 / L_C - 1 stays finite)
_MIN_PARTNER_BOUND = 1.0 / (1.0 + STEP_CAP)


def _check_gradient_field(field, sign: int, who: str) -> None:
    if not isinstance(field, GradientBounds):
        raise ConfigError(f"{who} needs a gradient field (Gradient, ConvGradient, RescaledGradient, ...), got "
                          f"{type(field).__name__}")
    if isinstance(field, ConvGradient) and not field.tied:  # the untied baseline form B sigma(K x + b)
        raise ConfigError(f"{who} needs a tied gradient field K^T sigma(K x + b), got tied=False")
    if field.sign != sign:
        raise ConfigError(f"{who} needs a field with sign={sign:+d}, got sign={field.sign:+d}")
    activation_slopes(field.activation)  # NotCertifiedError for non-monotone activations


class ContractiveStep(Step):
    """x -> x - h_eff A^T sigma(A x + b), h_eff = min(h, 2 / (beta ||A||_2^2)): 1-Lipschitz whatever training
    does to A or h. ``h=None`` uses h_eff = 2 / (beta ||A||^2) itself (times 1 - 64 eps); otherwise h may be
    learned (``learn_h``, ``h_max``) like any Step and is clamped on top. ``step.h`` is the clamped value.
    """

    def __init__(self, field, h: float | None = None, *, learn_h: bool = False, h_max: float | None = None):
        _check_gradient_field(field, -1, "ContractiveStep")
        _check_free_step("ContractiveStep", h is None, learn_h, h_max)
        super().__init__(field, Euler(), 1.0 if h is None else h, learn_h=learn_h, h_max=h_max)
        self._at_limit = h is None

    @property
    def h(self):
        # Euler's limit 2 / (beta ||A||^2) times SAFETY (SVD round-off), capped at STEP_CAP (finite for A = 0)
        limit = torch.clamp(SAFETY * self.method.max_stable_step(self.field), max=STEP_CAP)
        if self._at_limit:
            return limit
        h = Step.h.fget(self)
        return torch.minimum(torch.as_tensor(h, dtype=torch.float64, device=limit.device), limit)

    def extra_repr(self) -> str:
        with torch.no_grad():
            return f"method={self.method!r}, h={float(self.h):.4g} (certified rule)"


class ExpansiveStep(Step):
    """x -> x + h W^T sigma(W x + v), bound 1 + h beta ||W||_2^2 (exact). With ``partner`` (a ContractiveStep)
    h is derived so that (this step, then partner) is 1-Lipschitz: rule="exact": h = (1 / L_C - 1) /
    (beta ||W||^2), L_C the partner's exact bound; rule="seed" (the seed slides): h = (1 / sqrt(1 - h_C +
    h_C^2) - 1) / (beta ||W||^2), for an ``Orthogonal`` partner A with slopes in [1/2, 1] (checked).
    """

    def __init__(self, field, h: float | None = None, *, partner: ContractiveStep | None = None,
                 rule: str = "exact", learn_h: bool = False, h_max: float | None = None):
        _check_gradient_field(field, 1, "ExpansiveStep")
        if (h is None) == (partner is None):
            raise ConfigError("ExpansiveStep needs exactly one of h (free step) or partner (derived step)")
        if rule not in ("exact", "seed"):
            raise ConfigError(f"unknown switching rule {rule!r}; use 'exact' or 'seed'")
        if partner is not None:
            if not isinstance(partner, ContractiveStep):
                raise ConfigError(f"partner must be a ContractiveStep, got {type(partner).__name__}")
            if rule == "seed":
                _check_seed_conditions(partner)
        _check_free_step("ExpansiveStep", h is None, learn_h, h_max)
        super().__init__(field, Euler(), 1.0 if h is None else h, learn_h=learn_h, h_max=h_max)
        # stored outside the module tree: the partner is a sibling layer, not a child
        self._partner = (partner,) if partner is not None else None
        self.rule = rule
        if partner is None:
            return
        with torch.no_grad():
            h_e, hc = float(self.h), float(partner.h)
        if not h_e > 0.0:  # the partner's bound leaves no room
            raise StepSizeError(f"the expansive step derived from its partner's h_C={hc:.6g} by rule={rule!r}"
                                f" has size h_E={h_e:g} (rule: the seed rule needs h_C < 1, the exact rule a "
                                f"partner bound below 1, h_C < 2 / (beta ||A||^2); use a smaller h_c)")

    @property
    def h(self):
        if self._partner is None:
            return Step.h.fget(self)
        p = self._partner[0]
        hc = torch.as_tensor(p.h, dtype=torch.float64)
        if self.rule == "seed":
            lc = torch.sqrt(1.0 - hc + hc * hc)
        else:
            a, beta = activation_slopes(p.field.activation)
            smin, smax = p.field.spectral_bounds(torch.float64)
            lc = torch.maximum((1.0 - hc * beta * smax * smax).abs(), (1.0 - hc * a * smin * smin).abs())
        _, beta_e = activation_slopes(self.field.activation)
        _, sw = self.field.spectral_bounds(torch.float64)
        # h_E = gain / den, finite: den = 0 or gain -> inf gives the cap, gain = den = 0 gives 0
        gain = torch.clamp(1.0 / torch.clamp(lc, min=_MIN_PARTNER_BOUND) - 1.0, min=0.0)
        den = torch.maximum(beta_e * sw * sw, gain / STEP_CAP)
        return SAFETY * gain / torch.clamp(den, min=torch.finfo(torch.float64).tiny)

    extra_repr = ContractiveStep.extra_repr


def _check_free_step(who: str, derived: bool, learn_h, h_max) -> None:
    """A derived step size (h=None) has nothing to learn and no bound to keep: learn_h and h_max need an h."""
    if derived and (learn_h is not False or h_max is not None):
        raise ConfigError(f"{who} with h=None derives its step size (rule: learn_h={learn_h!r} and h_max={h_max!r} "
                          "need a starting h)")


def _pair(fe, fc, h_c: float, learn_h: bool, rule: str) -> Flow:
    """(expansive, contractive) steps of the two fields; an h_c at or above the contractive limit
    2 / (beta ||A||^2) is refused (it would leave h_E ~ 0)."""
    c = ContractiveStep(fc, h_c, learn_h=learn_h, h_max=2.0 if learn_h else None)
    with torch.no_grad():
        limit = float(c.method.max_stable_step(c.field))
    if not h_c < limit:
        raise StepSizeError(f"h_c={h_c:g} is not below the contractive limit 2 / (beta ||A||^2) = {limit:.6g} of the "
                            "pair's contractive step (rule: h_c < limit; the seed rule needs h_c < 1)")
    return Flow([ExpansiveStep(fe, partner=c, rule=rule), c])


def _check_seed_conditions(partner: ContractiveStep) -> None:
    field = partner.field
    a, beta = activation_slopes(field.activation)
    if a < 0.5 or beta > 1.0:
        raise ConfigError(f"the seed switching rule needs contractive slopes in [1/2, 1], got [{a}, {beta}] "
                          f"({field.activation.name})")
    name = field.weight_name
    if name is None or not (parametrize.is_parametrized(field, name)
            and any(isinstance(p, Orthogonal) for p in field.parametrizations[name])):
        raise ConfigError("the seed switching rule needs the contractive weight A to carry the Orthogonal "
                          "parametrisation (A^T A = I); use rule='exact' otherwise")


def switching_pair(dim: int, width: int, h_c: float = 0.5, *, rule: str = "seed", slope: float = 0.5,
                   expansive_activation="relu", learn_h: bool = False) -> Flow:
    """(expansive, contractive) dense pair, 1-Lipschitz by construction (seed slides). Contractive: A
    orthogonal (width >= dim), LeakyReLU(slope), h_c (learned in (0, 2) with ``learn_h``); expansive:
    ||W||_2 <= 1, step size derived by ``rule``."""
    h_c = positive_real("the contractive step size h_c", h_c, StepSizeError, symbol="h_c")
    if width < dim:
        raise ConfigError(f"an orthogonal contractive weight needs width >= dim, got width={width}, dim={dim}")
    fc = Gradient(dim, width, sign=-1, activation=leaky_relu(slope))
    parametrize.register_parametrization(fc, "A", Orthogonal())
    fe = Gradient(dim, width, sign=1, activation=expansive_activation)
    parametrize.register_parametrization(fe, "A", SpectralNormBound(1.0))
    return _pair(fe, fc, h_c, learn_h, rule)


def conv_switching_pair(channels: int, hidden: int, input_size, kernel_size: int = 3, h_c: float | None = None,
                        *, slope: float = 0.5, expansive_activation="relu", learn_h: bool = False) -> Flow:
    """(expansive, contractive) circular-conv pair, 1-Lipschitz by construction with the exact rule. Both
    kernels have ||K||_op <= 1, the contractive one starting near an isometry (default h_c = 1 < limit 2)."""
    fc = ConvGradient(channels, hidden, input_size, kernel_size, sign=-1, activation=leaky_relu(slope))
    with torch.no_grad():  # near-isometric start (identity in the first channels) so s_min is not tiny
        k = 0.1 * fc.K / conv_spectral_norm(fc.K, input_size)
        k[: min(channels, hidden), :, kernel_size // 2, kernel_size // 2] += torch.eye(min(channels, hidden), channels)
        fc.K.copy_(k)
    parametrize.register_parametrization(fc, "K", ConvSpectralNormBound(1.0, input_size))
    fe = ConvGradient(channels, hidden, input_size, kernel_size, sign=1, activation=expansive_activation)
    parametrize.register_parametrization(fe, "K", ConvSpectralNormBound(1.0, input_size))
    h_c = 1.0 if h_c is None else positive_real("the contractive step size h_c", h_c, StepSizeError, symbol="h_c")
    return _pair(fe, fc, h_c, learn_h, "exact")


def is_certified(module: nn.Module) -> bool:
    """False if any parametrisation inside ``module`` is not a certified dynnets constraint (e.g. torch's
    power-iteration ``spectral_norm``). Bounds never depend on this: they always use exact norms."""
    plists = [m.parametrizations for m in module.modules() if parametrize.is_parametrized(m)]
    return all(getattr(p, "certified", False) for plist in plists for name in plist for p in plist[name])
