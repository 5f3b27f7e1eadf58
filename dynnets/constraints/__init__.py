"""Lipschitz constraints with certified bounds: exact norms, parametrisations, certified steps.

    parametrize    SpectralNormBound, ConvSpectralNormBound, Orthogonal (torch parametrize modules)
    bounds         the certified Euler-step bound of gradient fields, activation slope ranges
    steps          ContractiveStep, ExpansiveStep, switching pairs, Normalize, ZeroPad, BoundedLinear, Chain

See docs/lipschitz.md for the mathematics and its conditions.
"""

from ..linalg import conv_spectral_norm, power_iteration_norm, spectral_norm
from . import bounds
from .bounds import activation_slopes, gradient_euler_bound, leaky_relu, seed_contraction
from .parametrize import ConvSpectralNormBound, Orthogonal, SpectralNormBound, orthogonality_penalty
from .steps import (
    BoundedLinear,
    Chain,
    ContractiveStep,
    ExpansiveStep,
    Normalize,
    ZeroPad,
    conv_switching_pair,
    is_certified,
    switching_pair,
)

__all__ = [
    "BoundedLinear", "Chain", "ContractiveStep", "ConvSpectralNormBound", "ExpansiveStep", "Normalize",
    "Orthogonal", "SpectralNormBound", "ZeroPad", "activation_slopes", "bounds", "conv_spectral_norm",
    "conv_switching_pair", "gradient_euler_bound", "is_certified", "leaky_relu",
    "orthogonality_penalty", "power_iteration_norm", "seed_contraction", "spectral_norm", "switching_pair",
]
