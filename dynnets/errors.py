"""Typed errors. Each names the offending value and the rule it broke."""


class DynnetsError(Exception):
    """Base class of every error raised by dynnets."""


class IncompatibleFieldError(DynnetsError, TypeError):
    """A method cannot integrate a field (e.g. a partitioned method on an unpartitioned field)."""


class NotInvertibleError(DynnetsError, TypeError):
    """An explicit inverse was asked of a step or flow that has none."""


class TableauError(DynnetsError, ValueError):
    """A Butcher tableau is malformed or inconsistent, claims an order it does not have, or is implicit where
    an explicit one is needed."""


class NotConvergedError(DynnetsError, ArithmeticError):
    """An implicit step's equations were not solved to their stated tolerance (the message names h, the
    residual, the tolerance and the number of iterations); never returned as an unconverged result."""


class ToleranceError(DynnetsError, ArithmeticError):
    """An error-controlled solve could not meet its tolerance: the step size fell below the time resolution
    or the step budget ran out (the message names t, h and the error estimate); never returned as a result."""


class StepSizeError(DynnetsError, ValueError):
    """A step size is not positive and finite, or lies outside a scheme's stability region."""


class ShapeError(DynnetsError, ValueError):
    """An input does not have the shape a field expects."""


class DtypeError(DynnetsError, TypeError):
    """Tensors that must share a dtype do not (a float32 model given float64 states, a field returning
    another dtype than its input, integer states), or a dtype is not supported."""


class DeviceError(DynnetsError, ValueError):
    """Tensors that must be on one device are not (a model on one device given states on another)."""


class NonFiniteWeightError(DynnetsError, FloatingPointError):
    """A weight whose exact norm (SVD, FFT symbol) a bound needs has NaN or infinite entries, so no bound
    exists (the message names the layer)."""


class NotCertifiedError(DynnetsError, TypeError):
    """No certified (exactly computed) bound is available for a layer."""


class ConfigError(DynnetsError, ValueError):
    """A configuration value (option, size, name) breaks its documented rule."""


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value has the wrong type (a Step given something that is not a Method, ...)."""


class CheckpointError(DynnetsError, ValueError):
    """A checkpoint file is missing, truncated, corrupt, or does not fit the model it is loaded into."""


class SettingsMismatchError(CheckpointError):
    """A training checkpoint was written by a run with other settings; ``keys`` names every setting that
    differs (the message shows both values of each)."""

    def __init__(self, message: str, keys=()):
        super().__init__(message)
        self.keys = list(keys)


class NonFiniteLossError(DynnetsError, FloatingPointError):
    """Training produced a NaN or infinite loss; the parameters are left as they were before that step."""


class DivergenceError(DynnetsError, FloatingPointError):
    """A rollout, a validation run, a solve (``dn.solve``) or a reported result became non-finite or grew past
    its stated limit (the message names where: the seed and the step, or the time)."""


class GuaranteeError(DynnetsError, AssertionError):
    """A guarantee a network claims was not confirmed by its measurement (a bug, never a user error)."""
