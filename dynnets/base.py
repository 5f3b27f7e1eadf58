"""The interfaces the core composes: a vector field ``Field``, a one-step ``Method``, and a ``Layer``.

Fields and methods never import each other. Everything a method may ask of a field is declared here, on
the field base class, with a default that states "the field has no such structure": a method calls
``field.stiffness()`` or ``field.euler_lipschitz_bound(h)`` on every field, and a trait's interface
(``partition()``, ``skew(x)``, ``affine_parts()``, ``hamiltonian(x)``) is guaranteed by the trait the
field declares (``Method.check`` refuses a field without it before any interface is called).
``linear_invariants()``, ``quadratic_invariants()`` (read off the traits) and ``jacobian(x)`` (exact
autodiff unless a field has a closed form) work on every field.

A ``Layer`` is anything a ``Flow`` composes: a ``Step``, a nested ``Flow``, or a fixed map such as a
normalisation, a zero padding or a bounded linear head (``dynnets.constraints``). It declares what it
guarantees, its certified Lipschitz bound and whether it has an explicit inverse, with defaults that
claim nothing.

Time. A field is autonomous (``forward(x)``) unless it declares ``time_dependent = True`` and implements
``forward(t, x)``. A method evaluates every field through ``at(t, x)`` (autonomous: ``self(x)``, the same
call as before, so autonomous fields keep their speed), and declares ``handles_time``: a method that only
knows F(x) (a partitioned, Cayley or Crank-Nicolson step) refuses a time-dependent field in ``check``.
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
from .structure import LinearInvariant, QuadraticInvariant, Trait


class ExactConstants(nn.Module):
    """A module whose fixed tensors (a vector c, a matrix M, a stencil, a normalisation) follow
    ``.to(dtype)``, ``.double()`` and ``.float()`` from their exact float64 values (``register_constant``).

    A plain buffer built in float32 and converted with ``.double()`` keeps float32's rounding: a projection
    onto c^T F = 0 built that way left c^T F(x) = 2.4e-8 in float64 instead of 2e-16. A constant's
    float64 master is kept beside the buffer and every conversion casts from it; a loaded state dict
    replaces the master by the loaded values."""

    def register_constant(self, name: str, value, *, dtype: torch.dtype | None = None,
                          persistent: bool = True) -> None:
        """Register ``value`` (a tensor, or numbers: read in float64) as a buffer of ``dtype`` (default: the
        tensor's own floating dtype, else torch's default dtype) whose conversions start from float64."""
        given = value if isinstance(value, torch.Tensor) else None
        exact = torch.as_tensor(value, dtype=torch.float64).detach().clone()
        if dtype is None:
            dtype = given.dtype if given is not None and given.is_floating_point() else torch.get_default_dtype()
        if "_exact" not in self.__dict__:
            self._exact = {}
        self._exact[name] = exact
        self.register_buffer(name, exact.to(dtype), persistent=persistent)

    def constant(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The constant ``name`` in ``like``'s dtype and device: the buffer itself when it matches, else cast
        from the exact float64 value (a fixed field computing in its input's dtype loses nothing to an
        earlier rounding)."""
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

    Subclasses set ``dim`` and ``traits`` (a frozenset of ``dynnets.structure.Trait``) and may override:

    - ``lipschitz_bound()``: an exactly computed bound of Lip(F);
    - ``euler_lipschitz_bound(h)``: a sharper certified bound of x -> x + h F(x), or None;
    - ``stiffness()``: for a field whose Jacobian has a real, non-positive spectrum on the states it
      accepts (a semi-discrete diffusion, a convex-potential gradient field, ...), a bound rho of
      that spectrum's magnitude; an explicit method with real stability interval [-r, 0] is then
      stable exactly for h rho <= r (``Method.max_stable_step``). None: no such bound.
    """

    traits: frozenset = frozenset()
    dim: int
    #: the number of trailing axes one state occupies: 1 for a vector (batch, dim), 3 for a grid or an image
    #: (batch, C, H, W); None when the field accepts states of any shape. A method that solves one system per
    #: state (implicit Runge-Kutta, Cayley) takes exactly (batch, *state)
    state_ndim: int | None = 1
    #: True for a non-autonomous field F(t, x): it implements ``forward(t, x)`` instead of ``forward(x)``
    time_dependent: bool = False

    def at(self, t, x: torch.Tensor) -> torch.Tensor:
        """F(t, x), the one call through which methods evaluate a field. An autonomous field ignores t
        (``self(x)``); a time-dependent one gets t as a tensor in x's dtype and device, of shape () or
        (batch,) (one time per row: write ``t.reshape(-1, 1)`` to broadcast it against (batch, dim))."""
        if not self.time_dependent:
            return self(x)
        if not isinstance(t, torch.Tensor) or t.dtype != x.dtype or t.device != x.device:
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        return self(t, x)

    def check_input(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.dim:
            raise ShapeError(
                f"{type(self).__name__} expects inputs whose last dimension is dim={self.dim}, "
                f"got shape {tuple(x.shape)}"
            )

    def lipschitz_bound(self) -> float:
        """A certified upper bound of Lip(F) in the 2-norm (exact norms only)."""
        raise NotCertifiedError(f"{type(self).__name__} provides no certified Lipschitz bound")

    def euler_lipschitz_bound(self, h) -> float | None:
        """A certified bound of the explicit Euler step x + h F(x) sharper than 1 + h Lip(F), or None."""
        return None

    @property
    def fixed(self) -> bool:
        """True for a field without parameters (a classical system): its stiffness is a fixed number, so a
        ``Step`` refuses an explicit step outside the method's stability region and bounds a learned h by
        the limit. A learned field's stiffness changes in training; a step that must respect it applies it
        at every call (``constraints.ContractiveStep``)."""
        return next(self.parameters(), None) is None

    def stiffness(self):
        """rho >= max |lambda| over the real, non-positive spectrum of DF on the accepted states; None
        when the field declares no such bound. May be a (differentiable) 0-d tensor."""
        return None

    def describe_instability(self, h: float, interval: float, method_name: str) -> str:
        """Why h is outside the stability region (for the StepSizeError message): the rule in this field's
        own terms, with the values. Called only when ``stiffness()`` is not None."""
        rho = float(self.stiffness())
        return (f"h * stiffness = {h:.6g} * {rho:.6g} = {h * rho:.6g} exceeds the real stability interval "
                f"{interval:.6g} of {method_name}")

    def linear_invariants(self) -> tuple[LinearInvariant, ...]:
        """The field's declared LinearInvariant(c) traits (c^T F(x) = 0): what any Runge-Kutta method keeps."""
        return tuple(t for t in self.traits if isinstance(t, LinearInvariant))

    def quadratic_invariants(self) -> tuple[QuadraticInvariant, ...]:
        """The field's declared QuadraticInvariant(Q) traits (x^T Q F(x) = 0; none by default): what every
        Runge-Kutta method with a symplectic tableau keeps."""
        return tuple(t for t in self.traits if isinstance(t, QuadraticInvariant))

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """DF(x_i) for every row of the batch x, shape (batch, n, n) with n the state size (states
        flattened), in x's dtype: what implicit methods need for Newton's method and for the adjoint of
        their stage equations. By default exact reverse-mode autodiff (``torch.func.jacrev`` under
        ``vmap``); a field with a closed form overrides it."""
        shape = x.shape[1:]

        def single(z):
            return self(z.reshape(1, *shape)).reshape(-1)

        return torch.func.vmap(torch.func.jacrev(single))(x.reshape(x.shape[0], -1))

    def has_trait(self, trait: type[Trait]) -> bool:
        return any(isinstance(t, trait) for t in self.traits)

    # Interfaces promised by traits; a field declaring the trait overrides them.
    def partition(self):
        """(q_dim, f, g) with F(q, v) = (f(v), g(q)) (trait ``Partitioned``); f or g is None where that part is
        zero (a field with one energy): the partitioned methods skip its shears."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not Partitioned (it has no partition())")

    def partition_vjp(self, which: str, point: torch.Tensor, cotangent: torch.Tensor, params):
        """For a ``Partitioned`` field, one of its parts and its vector-Jacobian products at once:
        ``which`` "f" (value f(point), point = v) or "g" (value g(point), point = q). Returns
        (value, point_bar, grads) with point_bar = D value(point)^T cotangent and grads[i] the gradient of
        <value, cotangent> w.r.t. params[i] (None where params[i] does not enter). The value is computed as
        ``partition()``'s function computes it (bitwise), so a reversible backward that undoes a shear with
        it reconstructs exactly what the inverse step would. The default records the part with autograd
        and takes one ``torch.autograd.grad``; a field with closed-form derivatives overrides it (the
        separable ``Hamiltonian``: no autograd call, no graph)."""
        _, f, g = self.partition()
        fn = {"f": f, "g": g}[which]
        with torch.enable_grad():
            at = point.detach().requires_grad_(True)
            value = fn(at)
            got = torch.autograd.grad(value, [at, *params], cotangent, allow_unused=True)
        return value.detach(), got[0], list(got[1:])

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        """S(x), skew-symmetric, with F(x) = S(x) x (trait ``SkewProduct``)."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not a SkewProduct (it has no skew(x))")

    def skew_factors(self, x: torch.Tensor) -> torch.Tensor | None:
        """For a ``SkewProduct`` field whose S(x) has low rank: the rows u_1..u_k, v_1..v_k of the factors,
        shape (batch, 2k, n), with S(x) = sum_j u_j v_j^T - v_j u_j^T, so that a method can work with the
        2k x 2k Gram matrix instead of the n x n S(x) (the Cayley step: Woodbury). None (the default): no
        such factorisation, use ``skew(x)``."""
        return None

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """H(x) per batch row with F = J grad H (traits ``CanonicalHamiltonian``, ``SeparableHamiltonian``)."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not a Hamiltonian field (it has no hamiltonian(x))")

    def affine_parts(self, dtype=torch.float64, device=None):
        """(M, c) with F(x) = M x + c (trait ``Affine``)."""
        raise IncompatibleFieldError(f"{type(self).__name__} is not Affine (it has no affine_parts())")


def add_gradients(grads: dict, params, got) -> None:
    """grads[id(p)] += g for each parameter p and its gradient g (None: p did not contribute)."""
    for p, g in zip(params, got, strict=True):
        if g is not None:
            key = id(p)
            grads[key] = g if key not in grads else grads[key] + g


def recompute_backward(inverse, forward, y: torch.Tensor, grad_y: torch.Tensor, n: int, params, grads: dict):
    """The generic reversible backward through n applications of an explicitly invertible map: per
    application the input from ``inverse`` (no graph), then ``forward`` recomputed with autograd and one
    vector-Jacobian product; the gradients of ``params`` added to ``grads``. Returns (x, grad_x)."""
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
    #: whether ``step(field, x, h, t)`` evaluates a time-dependent field at its stage times (t + c_i h);
    #: a method that does not is refused such a field by ``check``
    handles_time: bool = False
    #: whether ``step``/``advance`` take h as a per-row tensor (shape (batch, 1, ...), broadcast against the
    #: states), each row's result the step of its own h, with ``guarantees`` holding for every real h
    per_sample_h: bool = False
    #: whether the method acts on the parts (q, v) of a partitioned state (``advance_parts``): a Flow runs
    #: consecutive such steps on the parts, without joining and splitting the state between them
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
        """r such that the method is stable on y' = lambda y for h lambda in [-r, 0]; inf (the default)
        for methods without a step-size restriction on such problems."""
        return math.inf

    def max_stable_step(self, field: Field):
        """The largest stable h for ``field``: r / field.stiffness() (inf when either is unbounded, or the
        stiffness is 0). A stiffness given as a tensor (a learned field's) gives a tensor, whose gradient is
        finite also where the stiffness is 0 (the division is guarded, not the result)."""
        rho = field.stiffness()
        r = self.real_stability_interval
        if rho is None or math.isinf(r):
            return math.inf
        if isinstance(rho, torch.Tensor):
            positive = rho > 0
            return torch.where(positive, r / torch.where(positive, rho, torch.ones_like(rho)), math.inf)
        return r / rho if rho > 0 else math.inf

    def check_step(self, field: Field, h: float) -> None:
        """Refuse a step size outside the stability region this method has on a fixed ``field``
        (``Field.fixed``; StepSizeError naming h, the limit and the rule)."""
        if not field.fixed:
            return
        limit = float(self.max_stable_step(field))
        if h > limit * (1.0 + 1e-12):
            why = field.describe_instability(h, self.real_stability_interval, self.name)
            raise StepSizeError(f"{self.name} on {type(field).__name__} is unstable for h={h:.6g}: {why}; use "
                                f"h <= {limit:.6g}")

    def step(self, field: Field, x: torch.Tensor, h) -> torch.Tensor:
        """Psi^h_F(x). A method with ``handles_time`` takes a fourth argument, the start time t of the step
        (``step(field, x, h, t)``), which a time-dependent field needs."""
        raise NotImplementedError

    def advance(self, field: Field, x: torch.Tensor, h, n: int) -> torch.Tensor:
        """n steps of size h with one field (a weight-tied run of a ``Flow``). The default applies ``step``
        n times; a method may share work between consecutive steps as long as the result is that of n
        steps (``StormerVerlet``: each step's last half-kick evaluates the field where the next step's first
        does, so it is evaluated once: first same as last)."""
        for _ in range(n):
            x = self.step(field, x, h)
        return x

    def advance_parts(self, field: Field, q: torch.Tensor, v: torch.Tensor, h, n: int):
        """``advance`` on the parts (q, v) of the state, returned as (q, v) (methods with ``acts_on_parts``)."""
        raise IncompatibleFieldError(f"method {self.name} does not act on the parts of a state")

    def runs_on_parts(self) -> bool:
        """``acts_on_parts``, unless a subclass (or the instance) redefined ``step`` or ``advance`` but not
        ``advance_parts`` (its steps are then its own arithmetic, which the parts' would not follow)."""
        def owner(name):
            return self if name in self.__dict__ else next(c for c in type(self).__mro__ if name in c.__dict__)

        return self.acts_on_parts and len({id(owner(n)) for n in ("step", "advance", "advance_parts")}) == 1

    def reversible_backward(self, field: Field, y: torch.Tensor, grad_y: torch.Tensor, h, n: int, params,
                            grads: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Backpropagation through n steps (``memory="reversible"``) from their output y alone: returns
        (x, grad_x), x the reconstructed input of the first step and grad_x = (d y / d x)^T grad_y, and
        adds the gradients of <y, grad_y> w.r.t. ``params`` (the step's trainable tensors; a learned h is
        passed as a leaf tensor among them) to ``grads`` (keyed by ``id``, ``add_gradients``).

        The default, for any explicitly invertible method: per step, the input from the explicit inverse,
        then the step recomputed with autograd and one vector-Jacobian product (one inverse, one forward
        and one VJP per step). A method whose inverse evaluates the field at the points the step did
        overrides it to take the VJP at the inverse's own evaluations (the partitioned methods: one
        evaluation and one VJP per shear)."""
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
    """One map x -> y of a network, composed by ``Flow``. Inputs may carry any leading (batch) dims.

    Subclasses implement ``forward`` and override what they can certify:

    - ``guarantees``: a frozenset of ``dynnets.structure`` properties (default: none);
    - ``lipschitz_bound()``: a certified bound from exactly computed quantities (default:
      ``NotCertifiedError``);
    - ``invertible`` / ``inverse(y)``: an explicit inverse (default: none, ``NotInvertibleError``).
    """

    @property
    def guarantees(self) -> frozenset:
        return frozenset()

    def lipschitz_bound(self) -> float:
        """A certified upper bound of this layer's Lipschitz constant in the 2-norm (exact norms only)."""
        raise NotCertifiedError(f"{type(self).__name__} provides no certified Lipschitz bound")

    def parameter_owner(self) -> nn.Module:
        """The module whose parameters fix the dtype and device the layer computes in: the layer itself (a
        Step: its field)."""
        return self

    def reference_parameter(self) -> torch.Tensor | None:
        """The first floating parameter of ``parameter_owner()``, or None (a map without parameters computes in
        its input's dtype, its constants cast from their exact values). Looked up once, then read through the
        module holding it at every call, so a conversion (of the layer or of its field alone) or a replaced
        parameter is seen; a dict lookup, cheap enough for every forward."""
        slot = self.__dict__.get("_parameter_slot")
        if slot is None or (slot and slot[0]._parameters.get(slot[1]) is None):
            slot = _first_parameter(self.parameter_owner())
            self.__dict__["_parameter_slot"] = slot  # not a submodule: kept out of nn.Module's registries
        return slot[0]._parameters[slot[1]] if slot else None

    def check_state(self, x, who=None) -> None:
        """Refuse, before any work, states that are not a non-empty floating tensor of the dtype and device of
        the layer's parameters (``checks.check_state``: one typed error naming both; ``who``: a name or a
        callable giving it, default the class name)."""
        checks.check_state(x, who or type(self).__name__, self.reference_parameter())

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
        """n applications of this layer (a weight-tied stretch of a ``Flow``); a layer may share work
        between them as long as the result is that of n applications."""
        for _ in range(n):
            x = self(x)
        return x

    def reversible_backward(self, y: torch.Tensor, grad_y: torch.Tensor, n: int, grads: dict):
        """(x, grad_x) through n applications from their output y alone (``memory="reversible"``), this
        layer's parameter gradients added to ``grads`` (``add_gradients``). The default, for any layer
        with an explicit inverse: per application the input from ``inverse``, then the layer recomputed
        with autograd and one vector-Jacobian product."""
        if not self.invertible:
            raise NotInvertibleError(f"{type(self).__name__} has no explicit inverse: it cannot be "
                                     f"backpropagated reversibly")
        params = [p for p in self.parameters() if p.requires_grad]
        return recompute_backward(self.inverse, self, y, grad_y, n, params, grads)



def certified_bound(who: str, compute) -> float:
    """``compute()`` (a layer's certified bound from exact norms) as a finite float; NonFiniteWeightError
    naming the layer ``who`` when a weight it is computed from has NaN or inf entries (NaN: the SVD fails,
    ``linalg.singular_values``; inf: it returns NaN, caught here where the bound is read on the host)."""
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
    for m in module.modules():
        for name, p in m._parameters.items():
            if p is not None and p.is_floating_point():
                return (m, name)
    return ()
