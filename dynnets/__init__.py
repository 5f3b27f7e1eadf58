"""dynnets: structure-preserving neural networks as compositions of numerical-integrator steps.

    import dynnets as dn
    step = dn.Step(dn.fields.Dense(4, 16), dn.methods.Euler(), h=0.1)
    net = dn.Flow.repeat(step, 10)

``import dynnets`` loads the core, the families and ``dn.solve``; ``dynnets.train`` and
``dynnets.applications.*`` are imported explicitly (docs/architecture.md).
"""

import importlib as _importlib

from . import constraints, errors, fields, memory, methods, networks, solvers, structure, systems, testing
from .solvers import solve
from .step import Flow, Step

__version__ = "0.2.0"
__all__ = ["Flow", "Step", "__version__", "constraints", "errors", "fields", "memory", "methods", "networks", "solve", "solvers",
           "structure", "systems", "testing"]


def __getattr__(name: str):
    """``dn.train`` (the training runtime) is imported on first use, not by ``import dynnets``."""
    if name == "train":
        return _importlib.import_module("dynnets.train")
    raise AttributeError(f"module 'dynnets' has no attribute {name!r}")
