"""One-step methods Psi^h_F. Each declares which field traits it needs and what it guarantees."""

from .base import Method
from .crank_nicolson import CrankNicolson
from .rk import RK4, Euler, ExplicitRK, Heun
from .tableau import EULER, HEUN, MIDPOINT, RK4 as RK4_TABLEAU, SSPRK3, ButcherTableau

__all__ = [
    "Method", "ExplicitRK", "Euler", "Heun", "RK4", "CrankNicolson", "ButcherTableau",
    "EULER", "HEUN", "MIDPOINT", "SSPRK3", "RK4_TABLEAU",
]
