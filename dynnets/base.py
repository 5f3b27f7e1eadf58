"""The interfaces the core composes: a vector field ``Field``, a one-step ``Method``, and a ``Layer``
(anything a ``Flow`` composes, with defaults that claim nothing). A trait's interface (``partition()``,
``skew(x)``, ...) is guaranteed by the declared trait (``Method.check`` refuses a field without it). See
docs/architecture.md.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import checks
from .errors import (
    ConfigTypeError,
    IncompatibleFieldError,
    NonFiniteWeightError,
    NotCertifiedError,
    NotInvertibleError,
    ShapeError,
    StepSizeError,
)
from .structure import LinearInvariant, Partitioned, QuadraticInvariant, Trait


class ExactConstants(nn.Module):
    """A module whose fixed tensors (``register_constant``) follow ``.to(dtype)``, ``.double()`` and
    ``.float()`` from a float64 master kept beside the buffer (a buffer converted from float32 would keep
    float32's rounding); a loaded state dict replaces the master."""

    def register_constant(self, name: str, value, *, dtype: torch.dtype | None = None,
                          persistent: bool = True) -> None:
        """Register ``value`` (a tensor, or numbers: read in float64) as a buffer of ``dtype`` (default: the
        tensor's own floating dtype, else torch's default dtype) whose conversions start from float64."""
        given = value if isinstance(value, torch.Tensor) else None
        exact = torch.as_tensor(value, dtype=torch.float64).detach().clone()
        if dtype is None:
            dtype = given.dtype if given is not None and given.is_floating_point() else torch.get_default_dtype()
        self.__dict__.setdefault("_exact", {})[name] = exact
        self.register_buffer(name, exact.to(dtype), persistent=persistent)

    def constant(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The constant ``name`` in ``like``'s dtype and device (cast from the float64 master if needed)."""
        buffer = self._buffers[name]
        if buffer.dtype == like.dtype and buffer.device == like.device:
            return buffer
        return self._exact[name].to(dtype=like.dtype, device=like.device)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        for name, exact in self.__dict__.get("_exact", {}).items():
            current = self._buffers[name]
            self._exact[name] = exact.to(device=current.device)
            self._buffers[name] = self._exact[name].to(dtype=current.dtype)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        for name in self.__dict__.get("_exact", {}):
            if prefix + name in state_dict:
                self._exact[name] = state_dict[prefix + name].detach().to(torch.float64).clone()


class Field(ExactConstants):
    """A vector field x -> F(x) as a torch Module; x has shape (batch, dim) (or (batch, C, H, W)).
    Subclasses set ``dim`` and ``traits`` (a frozenset of ``dynnets.structure.Trait``) and override
    what they can certify."""

    traits: frozenset = frozenset()
    dim: int
    #: trailing axes of one state: 1 for (batch, dim), 3 for (batch, C, H, W); None: any shape
    state_ndim: int | None = 1
    #: True for a non-autonomous field F(t, x): it implements ``forward(t, x)`` instead of ``forward(x)``
    time_dependent: bool = False

    def at(self, t, x: torch.Tensor) -> torch.Tensor:
        """F(t, x), the call through which methods evaluate a field. An autonomous field ignores t; a
        time-dependent one gets t as a tensor in x's dtype and device, of shape () or (batch,)."""
        if not self.time_dependent:
            return self(x)
        if not isinstance(t, torch.Tensor) or t.dtype != x.dtype or t.device != x.device:
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        return self(t, x)

    def check_input(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.dim:
            raise ShapeError(f"{type(self).__name__} expects inputs whose last dimension is dim={self.dim}, "
                             f"got shape {tuple(x.shape)}")

    def lipschitz_bound(self) -> float:
        """A certified upper bound of Lip(F) in the 2-norm (exact norms only)."""
        raise NotCertifiedError(f"{type(self).__name__} provides no certified Lipschitz bound")

    def euler_lipschitz_bound(self, h) -> float | None:
        """A certified bound of the explicit Euler step x + h F(x) sharper than 1 + h Lip(F), or None."""
        return None

    @property
    def fixed(self) -> bool:
        """True for a field without parameters: its stiffness is fixed, so a ``Step`` refuses an unstable
        explicit step and bounds a learned h (learned fields: ``constraints.ContractiveStep``)."""
        return next(self.parameters(), None) is None

    def stiffness(self):
        """rho >= max |lambda| for a field whose DF has a real, non-positive spectrum on the accepted states
        (a method with real stability interval [-r, 0] is stable for h rho <= r); None: no such bound. May
        be a (differentiable) 0-d tensor."""
        return None

    def describe_instability(self, h: float, interval: float, method_name: str) -> str:
        """Why h is unstable, in this field's terms (StepSizeError message); only when ``stiffness()`` is set."""
        rho = float(self.stiffness())
        return (f"h * stiffness = {h:.6g} * {rho:.6g} = {h * rho:.6g} exceeds the real stability interval "
                f"{interval:.6g} of {method_name}")

    def linear_invariants(self) -> tuple[LinearInvariant, ...]:
        """The field's declared LinearInvariant(c) traits (c^T F(x) = 0): what any Runge-Kutta method keeps."""
        return tuple(t for t in self.traits if isinstance(t, LinearInvariant))

    def quadratic_invariants(self) -> tuple[QuadraticInvariant, ...]:
        """The declared QuadraticInvariant(Q) traits (x^T Q F(x) = 0): what symplectic RK tableaus keep."""
        return tuple(t for t in self.traits if isinstance(t, QuadraticInvariant))

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """DF(x_i) for every row of x, shape (batch, n, n) (states flattened), in x's dtype. Default:
        ``batched_jacobian``; a field with a closed form overrides it."""
        return batched_jacobian(self, x)

    def linearizer(self):
        """x -> ``Linearization`` of F at x with the current parameters, for a solver that evaluates F at many
        points and needs derivatives at some of them (Newton, its implicit-function backward); a closed form
        computes what depends on the parameters only once per linearizer."""
        return lambda x: Linearization(self, x, self(x))

    def has_trait(self, trait: type[Trait]) -> bool:
        return any(isinstance(t, trait) for t in self.traits)

    # Interfaces promised by traits; a field declaring the trait overrides them.
    def partition(self):
        """(q_dim, f, g) with F(q, v) = (f(v), g(q)) (trait ``Partitioned``); f or g is None where that part is
        zero (a field with one energy): the partitioned methods skip its shears."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not Partitioned (it has no partition())")

    def partition_kick(self, which: str, z: torch.Tensor, point: torch.Tensor, coefficients) -> torch.Tensor:
        """A stretch of shears of a ``Partitioned`` field: z + c * part(point) for each c of ``coefficients`` in
        turn (floats, or tensors broadcasting against z), part ``which`` ("f" at point = v, "g" at point = q)
        evaluated once. Default: ``partition()``'s value, then a product and a sum per c (no add with alpha:
        docs/gpu.md); closed forms fuse them, each c applied as in a lone shear (a stretch is bitwise its
        shears one by one)."""
        _, f, g = self.partition()
        value = (f if which == "f" else g)(point)
        for c in coefficients:
            z = z + scaled(c, value)
        return z

    def partition_vjp(self, which: str, point: torch.Tensor, cotangent: torch.Tensor, params):
        """For a ``Partitioned`` field, part ``which`` ("f" at point = v, "g" at point = q) and its VJPs:
        (value, point_bar, grads), point_bar = D value(point)^T cotangent, grads[i] the gradient of
        <value, cotangent> w.r.t. params[i] (None if unused). The value is bitwise ``partition()``'s, so a
        reversible backward reconstructs exactly. Default: one ``torch.autograd.grad``; closed forms override."""
        _, f, g = self.partition()
        with torch.enable_grad():
            at = point.detach().requires_grad_(True)
            value = {"f": f, "g": g}[which](at)
            got = torch.autograd.grad(value, [at, *params], cotangent, allow_unused=True)
        return value.detach(), got[0], list(got[1:])

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        """S(x), skew-symmetric, with F(x) = S(x) x (trait ``SkewProduct``)."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not a SkewProduct (it has no skew(x))")

    def skew_factors(self, x: torch.Tensor) -> torch.Tensor | None:
        """Low-rank factors of S(x): rows u_1..u_k, v_1..v_k, shape (batch, 2k, n), with
        S(x) = sum_j u_j v_j^T - v_j u_j^T (Cayley: Woodbury). None (default): use ``skew(x)``."""
        return None

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """H(x) per batch row with F = J grad H (traits ``CanonicalHamiltonian``, ``SeparableHamiltonian``)."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not a Hamiltonian field (it has no hamiltonian(x))")

    def affine_parts(self, dtype=torch.float64, device=None):
        """(M, c) with F(x) = M x + c (trait ``Affine``)."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not Affine (it has no affine_parts())")


class Linearization:
    """``value`` = F(x) at a batch of points x, with ``jacobian()`` and ``vjp`` at x on demand
    (``Field.linearizer``). Default: ``Field.jacobian`` and one autograd VJP; a field's closed form shares their
    work with the value (e.g. its activation)."""

    def __init__(self, field: Field, x: torch.Tensor, value: torch.Tensor):
        self.field, self.x, self.value = field, x, value

    def jacobian(self) -> torch.Tensor:
        """DF(x), shape (batch, n, n)."""
        return self.field.jacobian(self.x)

    def vjp(self, cotangent: torch.Tensor, params) -> tuple:
        """(x_bar, grads): x_bar = DF(x)^T cotangent per row, grads[i] the gradient of <F(x), cotangent> w.r.t.
        params[i] (None if unused); no graph of its own (for a first-order backward)."""
        with torch.enable_grad():
            at = self.x.detach().requires_grad_(True)
            x_bar, *grads = torch.autograd.grad(self.field(at), [at, *params], cotangent, allow_unused=True)
        return x_bar, grads


class PartitionedField(Field):
    """F(q, v) = (f(v), g(q)) from a subclass's ``q_dim``, ``f`` and ``g``; ``partition()`` may give None
    for a zero part."""

    traits = frozenset({Partitioned()})

    def partition(self):
        return self.q_dim, self.f, self.g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        q, v = x[..., : self.q_dim], x[..., self.q_dim:]
        _, f, g = self.partition()
        return torch.cat([torch.zeros_like(v) if f is None else f(v),
                          torch.zeros_like(q) if g is None else g(q)], dim=-1)


def scaled(c, value):
    """c * value, skipped for a number c = 1 (bitwise the same, one operation less); c a number or a tensor,
    value a tensor or a number (a tableau weight times a step size h)."""
    return value if not isinstance(c, torch.Tensor) and c == 1.0 else c * value


def add_gradients(grads: dict, params, got) -> None:
    """grads[id(p)] += g for each parameter p and its gradient g (None: p did not contribute)."""
    for p, g in zip(params, got, strict=True):
        if g is not None:
            grads[id(p)] = g if id(p) not in grads else grads[id(p)] + g


def recompute_backward(inverse, forward, y: torch.Tensor, grad_y: torch.Tensor, n: int, params, grads: dict):
    """Reversible backward through n applications of an invertible map: per application ``inverse`` (no
    graph), ``forward`` recomputed and one VJP; ``params``' gradients added to ``grads``. Returns (x, grad_x)."""
    for _ in range(n):
        with torch.no_grad():
            x = inverse(y)
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            got = torch.autograd.grad(forward(x_in), [x_in, *params], grad_y, allow_unused=True)
        grad_y, y = got[0], x
        add_gradients(grads, params, got[1:])
    return y, grad_y


class Method:
    """One step x -> Psi^h_F(x) of a numerical integrator. Stateless; talks to fields through ``Field``."""

    name: str = "method"
    order: int = 0
    #: traits (``dynnets.structure.Trait`` classes) a field must declare to be integrable by this method
    requires: tuple = ()
    #: whether ``step(field, x, h, t)`` evaluates a time-dependent field at its stage times (t + c_i h)
    handles_time: bool = False
    #: whether ``step``/``advance`` take h as a per-row tensor (batch, 1, ...), ``guarantees`` holding for each
    per_sample_h: bool = False
    #: whether the method acts on the parts (q, v) of a partitioned state (``advance_parts``)
    acts_on_parts: bool = False

    def check(self, field) -> None:
        """Refuse a field this method cannot integrate (TypeError naming both)."""
        if not isinstance(field, Field):
            raise ConfigTypeError(f"a Step's field must be a dynnets.fields.Field (a torch Module declaring dim and "
                            f"traits), got {type(field).__name__}")
        if field.time_dependent and not self.handles_time:
            raise IncompatibleFieldError(
                f"method {self.name} evaluates an autonomous field F(x) only, but {type(field).__name__} is "
                "time-dependent (time_dependent=True, F(t, x)); rule: a non-autonomous field needs a method that "
                "evaluates its stages at t + c_i h (ExplicitRK, RK4, ImplicitRK, GaussLegendre, ...)")
        for needed in self.requires:
            if not field.has_trait(needed):
                raise IncompatibleFieldError(
                    f"method {self.name} needs a field with trait {needed.__name__}, but "
                    f"{type(field).__name__} declares {sorted(type(t).__name__ for t in field.traits) or 'none'}"
                )

    @property
    def real_stability_interval(self) -> float:
        """r: stable on y' = lambda y for h lambda in [-r, 0]; inf (default): no restriction."""
        return math.inf

    def max_stable_step(self, field: Field):
        """r / field.stiffness() (inf when either is unbounded or the stiffness is 0); a tensor stiffness
        gives a tensor with a finite gradient also at 0."""
        rho = field.stiffness()
        r = self.real_stability_interval
        if rho is None or math.isinf(r):
            return math.inf
        if isinstance(rho, torch.Tensor):
            positive = rho > 0
            return torch.where(positive, r / torch.where(positive, rho, torch.ones_like(rho)), math.inf)
        return r / rho if rho > 0 else math.inf

    def check_step(self, field: Field, h: float) -> None:
        """StepSizeError if h exceeds ``max_stable_step`` on a fixed ``field`` (``Field.fixed``)."""
        if not field.fixed:
            return
        limit = float(self.max_stable_step(field))
        if h > limit * (1.0 + 1e-12):
            why = field.describe_instability(h, self.real_stability_interval, self.name)
            raise StepSizeError(f"{self.name} on {type(field).__name__} is unstable for h={h:.6g}: {why}; use "
                                f"h <= {limit:.6g}")

    def step(self, field: Field, x: torch.Tensor, h) -> torch.Tensor:
        """Psi^h_F(x); a method with ``handles_time`` takes the start time t as a fourth argument."""
        raise NotImplementedError

    def residual(self, field: Field, x: torch.Tensor, y: torch.Tensor, h, t=None) -> torch.Tensor:
        """r(x, y), of y's shape, zero exactly when y = Psi^h_F(x) (t: the start time, for a method with
        ``handles_time``). Default Psi^h_F(x) - y; a method whose defining equation is explicit in (x, y)
        returns that equation's defect without solving it (``ImplicitRK`` with one stage)."""
        return (self.step(field, x, h) if t is None else self.step(field, x, h, t)) - y

    def advance(self, field: Field, x: torch.Tensor, h, n: int) -> torch.Tensor:
        """n steps of size h (a weight-tied run); a method may share work between steps (first same as last)
        as long as the result is that of n steps."""
        for _ in range(n):
            x = self.step(field, x, h)
        return x

    def advance_parts(self, field: Field, q: torch.Tensor, v: torch.Tensor, h, n: int):
        """``advance`` on the parts (q, v) of the state, returned as (q, v) (methods with ``acts_on_parts``)."""
        raise IncompatibleFieldError(f"method {self.name} does not act on the parts of a state")

    def runs_on_parts(self) -> bool:
        """``acts_on_parts``, unless ``step`` or ``advance`` was redefined without ``advance_parts``."""
        def owner(name):
            return self if name in self.__dict__ else next(c for c in type(self).__mro__ if name in c.__dict__)

        return self.acts_on_parts and len({id(owner(n)) for n in ("step", "advance", "advance_parts")}) == 1

    def reversible_backward(self, field: Field, y: torch.Tensor, grad_y: torch.Tensor, h, n: int, params,
                            grads: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Backpropagation through n steps from their output y alone (``memory="reversible"``): returns
        (x, grad_x = (dy/dx)^T grad_y) and adds the gradients of <y, grad_y> w.r.t. ``params`` (a learned h
        among them) to ``grads`` (``add_gradients``). Default: ``recompute_backward``; the partitioned
        methods override it with one evaluation and one VJP per shear."""
        return recompute_backward(lambda z: self.inverse(field, z, h), lambda z: self.step(field, z, h), y, grad_y,
                                  n, params, grads)

    def guarantees(self, field: Field, h) -> frozenset:
        """The properties of Psi^h_F guaranteed by this (field, method) pair."""
        return frozenset()

    def invertible(self, field: Field) -> bool:
        return False

    def inverse(self, field: Field, y: torch.Tensor, h, t=None) -> torch.Tensor:
        """Psi_(t, h)^(-1)(y) where the method has an explicit inverse (``t``: as in ``step``)."""
        raise NotInvertibleError(f"{self.name} applied to {type(field).__name__} has no explicit inverse")

    def lipschitz_bound(self, field: Field, h) -> float:
        raise NotCertifiedError(f"no certified Lipschitz bound for {self.name} applied to {type(field).__name__}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Layer(ExactConstants):
    """One map x -> y of a network, composed by ``Flow``; inputs may carry any leading (batch) dims.
    Subclasses implement ``forward`` and override what they certify (``guarantees``, ``lipschitz_bound``,
    ``invertible``/``inverse``); the defaults claim nothing."""

    @property
    def guarantees(self) -> frozenset:
        return frozenset()

    def lipschitz_bound(self) -> float:
        """A certified upper bound of this layer's Lipschitz constant in the 2-norm (exact norms only)."""
        raise NotCertifiedError(f"{type(self).__name__} provides no certified Lipschitz bound")

    def parameter_owner(self) -> nn.Module:
        """The module whose parameters fix the layer's dtype and device (a Step: its field)."""
        return self

    def check_state(self, x, who=None) -> None:
        """Refuse states that are not a non-empty floating tensor in the dtype and device of the first
        floating parameter of ``parameter_owner()`` (``checks.check_state``; ``who``: a name or a callable
        giving it); its slot is cached and read through its module at every call, so a conversion or a
        replaced parameter is seen."""
        slot = self.__dict__.get("_parameter_slot")
        if slot is None or (slot and slot[0]._parameters.get(slot[1]) is None):
            slot = _first_parameter(self.parameter_owner())
            self.__dict__["_parameter_slot"] = slot  # not a submodule: kept out of nn.Module's registries
        checks.check_state(x, who or type(self).__name__, slot[0]._parameters[slot[1]] if slot else None)

    @property
    def time_dependent(self) -> bool:
        """Whether the result depends on the time the layer starts from (then ``forward(x, t)``)."""
        return False

    @property
    def duration(self):
        """The time the layer advances (a Step: its h; a fixed map: none)."""
        return 0.0

    @property
    def invertible(self) -> bool:
        return False

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotInvertibleError(f"{type(self).__name__} has no explicit inverse")

    def advance(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """n applications of this layer (a weight-tied stretch); shared work must give the same result."""
        for _ in range(n):
            x = self(x)
        return x

    def reversible_backward(self, y: torch.Tensor, grad_y: torch.Tensor, n: int, grads: dict):
        """(x, grad_x) through n applications from their output y alone (``memory="reversible"``), parameter
        gradients added to ``grads``; default ``recompute_backward`` for a layer with an explicit inverse."""
        if not self.invertible:
            raise NotInvertibleError(f"{type(self).__name__} has no explicit inverse: it cannot be "
                                     f"backpropagated reversibly")
        params = [p for p in self.parameters() if p.requires_grad]
        return recompute_backward(self.inverse, self, y, grad_y, n, params, grads)


def batched_jacobian(f, x: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """D f(x_i) for every row of x, shape (batch, m, n) with states flattened: exact ``torch.func.jacrev``
    under ``vmap`` (``chunk_size`` rows at a time)."""
    shape = x.shape[1:]

    def single(z):
        return f(z.reshape(1, *shape)).reshape(-1)

    return torch.func.vmap(torch.func.jacrev(single), chunk_size=chunk_size)(x.reshape(x.shape[0], -1))


def certified_bound(who: str, compute) -> float:
    """``compute()`` (a certified bound) as a finite float; NonFiniteWeightError naming ``who`` when a
    weight has NaN or inf entries."""
    try:
        bound = float(compute())
    except NonFiniteWeightError as err:
        raise NonFiniteWeightError(f"{who}: {err}") from None
    if not math.isfinite(bound):
        raise NonFiniteWeightError(f"{who}: its Lipschitz bound is {bound}: a weight has NaN or inf entries (rule: "
                                   "finite weights)")
    return bound


def first_parameter(module: nn.Module) -> torch.Tensor | None:
    """The first floating parameter of ``module``'s tree (the dtype and device it computes in), or None."""
    slot = _first_parameter(module)
    return slot[0]._parameters[slot[1]] if slot else None


def _first_parameter(module: nn.Module) -> tuple:
    """(the module holding it, its name) of the first floating parameter in ``module``'s tree, or ()."""
    return next(((m, name) for m in module.modules() for name, p in m._parameters.items()
                 if p is not None and p.is_floating_point()), ())
