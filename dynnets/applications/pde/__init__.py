"""PDE applications on the fixed systems of ``dynnets.systems`` (grids, stencils, heat and Fisher fields):
reference data (``data``), the exact ConvFD construction (``construct``), the slides' one-step error
splitting (``error_split``), a CNN baseline (``baselines``). Finite-difference heat solves are
``dn.solve(HeatField1D(grid), u0, times, Euler() or CrankNicolson(), h=dt)``."""

from . import baselines, construct, data, error_split
from .construct import exact_convfd, polynomial_convfd

__all__ = ["baselines", "construct", "data", "error_split", "exact_convfd", "polynomial_convfd"]
