"""Parametrised vector-field families F_theta (torch Modules). See DESIGN.md's guarantee table."""

from .activations import ACTIVATIONS, get_activation
from .base import Field
from .convfd import ConvFD
from .dense import Dense
from .linear import Linear

__all__ = ["ACTIVATIONS", "ConvFD", "Dense", "Field", "Linear", "get_activation"]
