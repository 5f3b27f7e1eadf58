"""Solving ODEs: ``solve(field, x0, t_eval, ...)`` by fixed steps of any method, or error-controlled with an
embedded pair (``dynnets.methods.DormandPrince5``, ``BogackiShampine3``, ``DormandPrince853``) and a PI
step-size controller; the result is a ``Solution`` whose accepted steps form a ``Flow``."""

from .controller import PIController
from .integrate import solve
from .solution import Solution

__all__ = ["PIController", "Solution", "solve"]
