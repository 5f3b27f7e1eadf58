"""Parametrised vector-field families F_theta (torch Modules). See DESIGN.md's guarantee table."""

from .activations import ACTIVATIONS, get_activation
from .base import Field
from .conserve import ConserveLinear
from .convfd import ConvFD
from .dense import Dense
from .gradient import Gradient
from .hamiltonian import Hamiltonian
from .linear import Linear
from .mass import MassPreserving
from .sphere import SpherePreserving
from .volume import VolumePreserving

__all__ = [
    "ACTIVATIONS",
    "ConserveLinear",
    "ConvFD",
    "Dense",
    "Field",
    "Gradient",
    "Hamiltonian",
    "Linear",
    "MassPreserving",
    "SpherePreserving",
    "VolumePreserving",
    "get_activation",
]
