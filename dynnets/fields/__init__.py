"""Parametrised vector-field families F_theta (torch Modules). See DESIGN.md's guarantee table."""

from ..base import Field
from .activations import ACTIVATIONS, Activation, get_activation, leaky_relu
from .conserve import ConserveLinear
from .conv_gradient import ConvGradient
from .convfd import ConvFD, MirroredConvFD
from .dense import Dense
from .function import FunctionField
from .gradient import Gradient
from .hamiltonian import GeneralHamiltonian, Hamiltonian
from .linear import Linear
from .low_rank import LowRankMassPreserving, LowRankSpherePreserving
from .mass import MassPreserving
from .maxmin import MaxMin
from .rescaled_gradient import ConvRescaledGradient, RescaledGradient
from .sphere import QuadraticPreserving, SpherePreserving
from .volume import VolumePreserving

__all__ = [
    "ACTIVATIONS", "Activation", "ConserveLinear", "ConvFD", "ConvGradient", "ConvRescaledGradient", "Dense", "Field",
    "FunctionField", "GeneralHamiltonian", "Gradient", "Hamiltonian", "Linear", "LowRankMassPreserving",
    "LowRankSpherePreserving", "MassPreserving", "MaxMin", "MirroredConvFD", "QuadraticPreserving", "RescaledGradient",
    "SpherePreserving", "VolumePreserving",
    "get_activation", "leaky_relu",
]
