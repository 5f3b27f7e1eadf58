"""Implicit Runge-Kutta steps (dynnets.methods.ImplicitRK): Newton's method solves the stage equations to
round-off or raises NotConvergedError; gradients by the implicit function theorem agree with gradcheck
and with differentiating the unrolled iterations; they work in every memory mode of Flow and under
torch.func; the orders are observed; guarantees follow the tableau's computed properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dynnets as dn
from dynnets import structure as st
from dynnets.errors import ConfigError, IncompatibleFieldError, NotConvergedError, NotInvertibleError
from dynnets.memory import SavedTensorMeter
from dynnets.methods.newton import TOLERANCE_FACTOR

EPS = torch.finfo(torch.float64).eps
GAUSS = [dn.methods.ImplicitMidpoint(), dn.methods.GaussLegendre(2), dn.methods.GaussLegendre(3)]
ALL = [*GAUSS, dn.methods.RadauIIA(2), dn.methods.RadauIIA(3)]


def _hamiltonian(seed=0, dim=1, width=6):
    torch.manual_seed(seed)
    return dn.fields.GeneralHamiltonian(dim, width).double()


def _x(batch=4, dim=2, seed=1):
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- the forward: stage equations solved to round-off -------------------------------------------------

@pytest.mark.parametrize("method", ALL, ids=lambda m: m.name)
def test_stage_equations_hold_to_round_off(method):
    field, x, h = _hamiltonian(), _x(), 0.4
    sol = method.solve(field, x, h)
    K = sol.stages
    a = torch.tensor(method.tableau.a, dtype=torch.float64)
    X = x.unsqueeze(1) + h * (a @ K)
    residual = h * (K - field(X.reshape(-1, 2)).reshape(K.shape)).abs().amax()
    assert residual <= TOLERANCE_FACTOR * EPS * max(float(x.abs().max()), 1.0)
    assert 1 <= sol.iterations <= 8 and sol.residual_ratio <= 1.0
    step = method.step(field, x, h)
    assert torch.allclose(step, x + h * (torch.tensor(method.tableau.b, dtype=torch.float64) @ K), rtol=0, atol=4 * EPS)


def test_implicit_midpoint_is_the_midpoint_rule():
    field, x, h = _hamiltonian(), _x(), 0.3
    with torch.no_grad():
        y = dn.Step(field, dn.methods.ImplicitMidpoint(), h)(x)
        assert float((y - x - h * field((x + y) / 2)).abs().max()) <= 8 * EPS


@pytest.mark.parametrize("method, order, ns", [
    (dn.methods.ImplicitMidpoint(), 2, [16, 32, 64]), (dn.methods.GaussLegendre(2), 4, [8, 16, 32]),
    (dn.methods.GaussLegendre(3), 6, [4, 8, 16]), (dn.methods.RadauIIA(2), 3, [8, 16, 32]),
    (dn.methods.RadauIIA(3), 5, [4, 8, 16]),
], ids=lambda v: getattr(v, "name", None))
def test_observed_order(method, order, ns):
    M = torch.tensor([[-0.3, 2.0, 0.1], [-2.0, -0.1, 0.5], [0.0, -0.4, -0.2]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, -0.5, 0.25]], dtype=torch.float64)
    exact = x0 @ torch.linalg.matrix_exp(M).T
    errors = [float((dn.Flow.repeat(dn.Step(dn.fields.Linear(M), method, 1.0 / n), n)(x0) - exact).norm()) for n in ns]
    slope = -np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.15, (slope, errors)
    assert method.order == order


@pytest.mark.slow
def test_not_converged_when_the_stage_equations_have_no_solution():
    """x' = 1 + x^2 blows up at t = pi/2; the implicit midpoint equation k = 1 + (x + h k / 2)^2 has a real
    solution at x = 0 only for h <= 1. At h = 2 Newton, its line search and the continuation all fail:
    the step raises instead of returning an unconverged value."""
    riccati = dn.fields.FunctionField(lambda x: 1 + x.square(), 1)
    step = dn.Step(riccati, dn.methods.ImplicitMidpoint(), 2.0)
    with pytest.raises(NotConvergedError, match=r"ImplicitMidpoint: .* h=2 .*residual .* > tolerance .* after \d+ iterations"):
        step(torch.zeros(3, 1, dtype=torch.float64))
    dn.Step(riccati, dn.methods.ImplicitMidpoint(), 0.5)(torch.zeros(3, 1, dtype=torch.float64))  # h <= 1: fine


@pytest.mark.parametrize("method", ALL, ids=lambda m: m.name)
def test_not_converged_on_a_stiff_field_at_too_large_h(method):
    """x' = 1e4 x^2 from x = 1 blows up at t = 1e-4; a step of h = 1 (10^4 times its time scale) has no real
    stage solution for any of these methods: NotConvergedError naming h. At h = 1e-6 the step is fine
    (x(1e-6) = 1 / (1 - 1e-2))."""
    stiff = dn.fields.FunctionField(lambda x: 1e4 * x.square(), 1)
    x = torch.ones(2, 1, dtype=torch.float64)
    with pytest.raises(NotConvergedError, match="h=1 "):
        dn.Step(stiff, method, 1.0)(x)
    assert torch.allclose(dn.Step(stiff, method, 1e-6)(x), x / (1 - 1e-2), rtol=1e-5)  # order >= 2, h / 1e-4 = 1e-2


def test_non_finite_input_is_not_converged():
    with pytest.raises(NotConvergedError, match="residual nan"):
        dn.Step(_hamiltonian(), dn.methods.GaussLegendre(2), 0.1)(torch.full((2, 2), math.nan, dtype=torch.float64))


def test_method_options_checked():
    with pytest.raises(ConfigError, match="stages in \\[1, 2, 3\\]"):
        dn.methods.GaussLegendre(4)
    with pytest.raises(ConfigError, match="stages in \\[2, 3\\]"):
        dn.methods.RadauIIA(True)
    with pytest.raises(ConfigError, match="max_iterations"):
        dn.methods.ImplicitRK(dn.methods.tableaux.GAUSS_LEGENDRE_2, max_iterations=0)
    with pytest.raises(TypeError, match="ButcherTableau"):
        dn.methods.ImplicitRK([[0.5]])


# --- the backward: implicit function theorem ---------------------------------------------------------

@pytest.mark.parametrize("method", [dn.methods.GaussLegendre(2), dn.methods.RadauIIA(2)], ids=lambda m: m.name)
def test_gradcheck_input_parameters_and_learned_h(method):
    step = dn.Step(_hamiltonian(), method, 0.3, learn_h=True).double()
    x = _x(3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, *ps: step(x), (x, *step.parameters()))


def _unrolled(field, method, x, h, iterations=25):
    """The same step differentiated through plain Newton iterations (what IFT replaces)."""
    a = torch.tensor(method.tableau.a, dtype=x.dtype)
    b = torch.tensor(method.tableau.b, dtype=x.dtype)
    s, n = a.shape[0], x.shape[1]
    K = field(x).unsqueeze(1).expand(-1, s, -1)
    for _ in range(iterations):
        X = x.unsqueeze(1) + h * (a @ K)
        G = K - field(X.reshape(-1, n)).reshape(K.shape)
        J = torch.func.vmap(torch.func.jacrev(lambda z: field(z[None])[0]))(X.reshape(-1, n)).reshape(-1, s, n, n)
        M = torch.eye(s * n, dtype=x.dtype) - h * (a[:, None, :, None] * J.unsqueeze(-2)).reshape(-1, s * n, s * n)
        K = K + torch.linalg.solve(M, -G.reshape(-1, s * n)).reshape(K.shape)
    return x + h * (b @ K)


@pytest.mark.parametrize("method", GAUSS, ids=lambda m: m.name)
def test_ift_gradient_equals_unrolled_differentiation(method):
    field, h = _hamiltonian(seed=3, dim=2), 0.4
    x = _x(5, 4, seed=2).requires_grad_(True)
    weights = _x(5, 4, seed=9)
    grads = []
    for run in (lambda: dn.Step(field, method, h)(x), lambda: _unrolled(field, method, x, h)):
        out = (run() * weights).sum()
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, [x, *field.parameters()])]))
    assert float((grads[0] - grads[1]).abs().max()) <= 100 * EPS * float(grads[1].abs().max())


def test_backward_memory_does_not_depend_on_newton_iterations():
    """Only x, K (and h) are kept for the backward: the same bytes for an easy (small h) and a hard (large
    h, more Newton iterations) step."""
    field, x = _hamiltonian(dim=2, width=8), _x(16, 4).requires_grad_(True)
    method = dn.methods.GaussLegendre(3)
    saved, iterations = [], []
    for h in (0.01, 0.8):
        iterations.append(method.solve(field, x.detach(), h).iterations)
        with SavedTensorMeter(exclude=list(field.parameters())) as meter:
            y = dn.Step(field, method, h)(x)
        saved.append(meter.peak)
        y.sum().backward()
    assert iterations[1] > iterations[0]
    assert saved[0] == saved[1] <= (x.numel() * (1 + 3) + 3) * 8  # x, K (3 stages) and b, float64


def test_memory_modes_give_plain_gradients():
    """checkpoint: bitwise the plain gradient; reversible (Gauss is symmetric: the inverse is the step with
    -h, again an implicit solve): within C n eps of it."""
    torch.manual_seed(1)
    steps = [dn.Step(dn.fields.GeneralHamiltonian(1, 6).double(), dn.methods.GaussLegendre(2), 0.3)
             for _ in range(6)]
    x = _x(3)
    grads = {}
    for memory in ("plain", "checkpoint", "reversible"):
        flow = dn.Flow(steps, memory=memory)
        flow.zero_grad()
        xx = x.clone().requires_grad_(True)
        flow(xx).square().sum().backward()
        grads[memory] = torch.cat([xx.grad.reshape(-1)] + [p.grad.reshape(-1) for p in flow.parameters()])
    assert torch.equal(grads["checkpoint"], grads["plain"])
    scale = float(grads["plain"].abs().max())
    assert float((grads["reversible"] - grads["plain"]).abs().max()) <= 100 * len(steps) * EPS * scale


def test_inverse_only_for_symmetric_tableaux():
    torch.manual_seed(2)
    flow = dn.Flow([dn.Step(dn.fields.GeneralHamiltonian(1, 6).double(), dn.methods.GaussLegendre(3), 0.5)
                    for _ in range(10)])
    assert flow.invertible
    assert dn.testing.inverse_defect(flow, flow.inverse, _x(4)) <= 10 * len(flow) * EPS
    radau = dn.Flow([dn.Step(_hamiltonian(), dn.methods.RadauIIA(2), 0.5)])
    assert not radau.invertible
    with pytest.raises(NotInvertibleError, match="RadauIIA2"):
        radau.inverse(_x())
    with pytest.raises(NotInvertibleError, match="memory='reversible'"):
        dn.Flow(radau.steps, memory="reversible")


def test_torch_func_transforms_over_parameters():
    """Per-sample gradients (vmap over x of grad w.r.t. the parameters) and an ensemble (vmap over stacked
    parameters) agree with plain autograd and with a loop: parameters enter the IFT Function as inputs."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    method = dn.methods.GaussLegendre(2)
    step = dn.Step(_hamiltonian(seed=4), method, 0.3)
    x = _x(3)
    params = {k: v.detach() for k, v in step.named_parameters()}

    def loss(p, xi):
        return functional_call(step, p, (xi[None],)).square().sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0))(params, x)
    for i in range(3):
        step.zero_grad()
        loss(dict(step.named_parameters()), x[i]).backward()
        for k, p in step.named_parameters():
            assert torch.allclose(per_sample[k][i], p.grad, rtol=1e-12, atol=1e-14)
    members = [dn.Step(_hamiltonian(seed=s), method, 0.3) for s in range(3)]
    stacked, buffers = stack_module_state(members)
    out = vmap(lambda p, b: functional_call(members[0], (p, b), (x,)))(stacked, buffers)
    assert torch.allclose(out, torch.stack([m(x) for m in members]).detach(), rtol=0, atol=4 * EPS)


# --- guarantees from the computed tableau properties ---------------------------------------------------

def test_guarantees_follow_tableau_properties():
    general, separable = _hamiltonian(), dn.fields.Hamiltonian(1, 4)
    sphere, mass = dn.fields.SpherePreserving(4, 8), dn.fields.MassPreserving(4, 8)
    sym = frozenset({st.Symplectic(), st.PreservesVolume()})
    for method in GAUSS:
        assert dn.Step(general, method, 0.5).guarantees == sym
        assert dn.Step(separable, method, 0.5).guarantees == sym
        assert dn.Step(sphere, method, 0.5).guarantees == {st.QuadraticInvariant.norm()}
        assert dn.Step(mass, method, 0.5).guarantees == {st.LinearInvariant.ones(4)}
    for method in (dn.methods.RadauIIA(2), dn.methods.RadauIIA(3), dn.methods.ImplicitRK(dn.methods.tableaux.CLASSIC_RK4)):
        assert dn.Step(general, method, 0.5).guarantees == frozenset()
        assert dn.Step(sphere, method, 0.5).guarantees == frozenset()
        assert dn.Step(mass, method, 0.5).guarantees == {st.LinearInvariant.ones(4)}
    rigid = dn.Step(dn.systems.RigidBody(), dn.methods.GaussLegendre(2), 0.1).guarantees
    assert rigid == {st.QuadraticInvariant.norm(), st.QuadraticInvariant([[0.5, 0, 0], [0, 1, 0], [0, 0, 1.5]]),
                     st.QuadraticInvariant.norm()}


def test_partitioned_method_on_a_general_hamiltonian_names_the_alternative():
    with pytest.raises(IncompatibleFieldError, match="non-separable CanonicalHamiltonian field: use dn.methods.GaussLegendre"):
        dn.Step(dn.fields.GeneralHamiltonian(2, 16), dn.methods.StormerVerlet(), 0.1)
    with pytest.raises(IncompatibleFieldError, match="non-separable"):
        dn.Step(dn.systems.DoublePendulum(), dn.methods.SymplecticEuler(), 0.1)
    with pytest.raises(IncompatibleFieldError, match="trait Partitioned"):  # the generic message otherwise
        dn.Step(dn.fields.Dense(4, 8), dn.methods.StormerVerlet(), 0.1)


def test_a_stable_methods_have_no_step_limit_on_stiff_fixed_fields():
    heat = dn.systems.HeatField1D(dn.systems.UniformGrid1D(0.0, 1.0, 40))
    with pytest.raises(dn.errors.StepSizeError):
        dn.Step(heat, dn.methods.RK4(), 0.01)
    y = dn.Step(heat, dn.methods.RadauIIA(3), 0.01)(torch.ones(2, heat.dim, dtype=torch.float64))
    assert bool(torch.isfinite(y).all()) and float(y.abs().max()) <= 1.0


def test_states_too_large_for_a_dense_newton_system_are_refused():
    field = dn.fields.FunctionField(lambda x: -x, 2000)
    step = dn.Step(field, dn.methods.GaussLegendre(3), 0.1)
    with pytest.raises(ConfigError, match="s n <= 4096, got shape \\(1, 2000\\) \\(s n = 6000\\)"):
        step(torch.zeros(1, 2000, dtype=torch.float64))
    with pytest.raises(ConfigError, match="batched states"):
        dn.Step(_hamiltonian(), dn.methods.ImplicitMidpoint(), 0.1)(torch.zeros(2, dtype=torch.float64))
