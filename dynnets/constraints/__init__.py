"""Lipschitz constraints with certified bounds: parametrisations, certified steps, blocks and layers, composed
by ``dynnets.Flow``. Mathematics and conditions: docs/lipschitz.md.
"""

from ..linalg import conv_spectral_norm, power_iteration_norm, spectral_norm
from . import bounds
from .blocks import conv_rescaled_step, maxmin_step, orthogonal_block, rescaled_step
from .bounds import activation_slopes, gradient_euler_bound, leaky_relu, seed_contraction
from .layers import BoundedLinear, Normalize, OrthogonalLinear, ZeroPad
from .parametrize import ConvSpectralNormBound, Orthogonal, SpectralNormBound, orthogonality_penalty
from .steps import ContractiveStep, ExpansiveStep, conv_switching_pair, is_certified, switching_pair

__all__ = [
    "BoundedLinear", "ContractiveStep", "ConvSpectralNormBound", "ExpansiveStep", "Normalize",
    "Orthogonal", "OrthogonalLinear", "SpectralNormBound", "ZeroPad", "activation_slopes", "bounds",
    "conv_rescaled_step", "conv_spectral_norm", "conv_switching_pair", "gradient_euler_bound", "is_certified",
    "leaky_relu", "maxmin_step", "orthogonal_block", "orthogonality_penalty", "power_iteration_norm",
    "rescaled_step", "seed_contraction", "spectral_norm", "switching_pair",
]
