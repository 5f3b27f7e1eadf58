"""dynnets: structure-preserving neural networks as compositions of numerical-integrator steps.

    import dynnets as dn
    step = dn.Step(dn.fields.Dense(4, 16), dn.methods.Euler(), h=0.1)
    net = dn.Flow.repeat(step, 10)
"""

from . import (
           constraints,
           eigen,
           errors,
           fields,
           memory,
           methods,
           pde,
           robust,
           structure,
           systems,
           testing,
           train,
)
from .step import Flow, Step

__version__ = "0.1.0"
__all__ = ["Flow", "Step", "__version__", "constraints", "eigen", "errors", "fields", "memory", "methods", "pde",
           "robust", "structure", "systems", "testing", "train"]
