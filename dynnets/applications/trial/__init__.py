"""Trial-function network solvers (Lagaris et al. 1998): u = g + d N with the data built in exactly;
``network`` holds the generic pieces, ``heat`` the seed's heat problem and its two recipes."""

from . import heat, network
from .network import LinearPDE, TrialNetwork, TrialSolution, derivative, grid_points, residual_function

__all__ = ["LinearPDE", "TrialNetwork", "TrialSolution", "derivative", "grid_points", "heat", "network",
           "residual_function"]
