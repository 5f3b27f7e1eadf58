"""Parametrised vector-field families F_theta (torch Modules); the guarantee table of README.md and
docs/structure.md says which method keeps what on each."""

from ..base import Field
from ..function import FunctionField
from .activations import ACTIVATIONS, Activation, get_activation, leaky_relu
from .conv_gradient import ConvGradient
from .convfd import ConvFD, MirroredConvFD
from .dense import Dense
from .gradient import Gradient
from .hamiltonian import GeneralHamiltonian, Hamiltonian
from .linear import Linear
from .mass import MassPreserving
from .maxmin import MaxMin
from .poisson import LiePoisson
from .projected import Projected
from .quadratic import QuadraticHamiltonian
from .rescaled_gradient import ConvRescaledGradient, RescaledGradient
from .sphere import QuadraticPreserving, SpherePreserving
from .volume import VolumePreserving

__all__ = [
    "ACTIVATIONS", "Activation", "ConvFD", "ConvGradient", "ConvRescaledGradient", "Dense", "Field", "FunctionField",
    "GeneralHamiltonian", "Gradient", "Hamiltonian", "LiePoisson", "Linear", "MassPreserving", "MaxMin", "MirroredConvFD",
    "Projected", "QuadraticHamiltonian", "QuadraticPreserving", "RescaledGradient", "SpherePreserving", "VolumePreserving",
    "get_activation", "leaky_relu",
]
