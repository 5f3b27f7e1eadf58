"""Fixed classical vector fields: ODE systems (DETEST problems, a forced oscillator), the Yi eigen-ODE, and
semi-discretised PDEs with their grids and stencils. A field with a real, non-positive spectrum declares
``stiffness()``: explicit steps outside the stability region are refused.
"""

from . import grids, stencils
from .detest import Brusselator, LotkaVolterra, TwoBody, VanDerPol
from .diffusion import FisherField2D, HeatField2D
from .forced import ForcedOscillator
from .grids import PeriodicGrid2D, UniformGrid1D
from .heat import HeatField1D, sine_mode_solution
from .ode import SIR, DampedForced, DoublePendulum, Pendulum, RigidBody, SkewMass3D
from .yi import NotSymmetricError, YiField, check_symmetric, spread_bound

__all__ = ["SIR", "Brusselator", "DampedForced", "DoublePendulum", "FisherField2D", "ForcedOscillator", "HeatField1D",
           "HeatField2D", "LotkaVolterra", "NotSymmetricError", "Pendulum", "PeriodicGrid2D", "RigidBody", "SkewMass3D",
           "TwoBody", "UniformGrid1D", "VanDerPol", "YiField", "check_symmetric", "grids", "sine_mode_solution",
           "spread_bound", "stencils"]
