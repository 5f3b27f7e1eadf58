"""dynnets: structure-preserving neural networks as compositions of numerical-integrator steps.

    import dynnets as dn
    step = dn.Step(dn.fields.Dense(4, 16), dn.methods.Euler(), h=0.1)
    net = dn.Flow.repeat(step, 10)
"""

from . import errors, fields, methods, pde, structure, testing, train
from . import approx  # noqa: E402,F401  (Presnov decomposition, issue 11)
from .step import Flow, Step

__version__ = "0.1.0"
__all__ = ["Flow", "Step", "__version__", "errors", "fields", "methods", "pde", "structure", "testing", "train"]
