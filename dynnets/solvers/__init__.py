"""Solving ODEs: ``solve`` by fixed steps or error-controlled (module ``integrate``), and its ``Solution``."""

from .controller import PIController
from .integrate import solve
from .solution import Solution

__all__ = ["PIController", "Solution", "solve"]
