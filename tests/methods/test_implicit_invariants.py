"""The guarantees of implicit Runge-Kutta steps, measured in float64 (issue 17's targets).

Symplectic tableaux (Gauss-Legendre s = 1, 2, 3) on 50-step deep flows of the general (non-separable)
Hamiltonian field, each step with its own field drawn at parameter scale 0.5 and h = 0.5 (as the explicit
pairs in tests/fields/test_invariants.py): symplecticity and volume defects <= C n eps with C = 10 and n =
50; negative controls (Radau IIA, RK4 on the same fields) >= 10^6 times the tolerance. Quadratic
invariants: SpherePreserving under 10^4 implicit-midpoint steps (drift of ||x||^2 relative <= n eps,
n = 10^4), a general symmetric Q on a deep flow, and the free rigid body's two invariants; each with a
control that is not symplectic.
"""

from __future__ import annotations

import pytest
import torch
from structure_cases import (
    EPS,
    deep_flow,
    max_jacobian_norm,
    mean_move,
    points,
    randomize,
    rollout_quadratic_drift,
)

import dynnets as dn
from dynnets import structure as st
from dynnets import testing as T

N_DEEP = 50
N_LONG = 10_000
H = 0.5
SCALE = 0.5
C_JAC = 10
CONTROL = 1e6
GAUSS = [dn.methods.ImplicitMidpoint(), dn.methods.GaussLegendre(2), dn.methods.GaussLegendre(3)]
NOT_SYMPLECTIC = [dn.methods.RadauIIA(2), dn.methods.RK4()]


def _general(dim=2):
    return lambda: dn.fields.GeneralHamiltonian(dim, 8)


@pytest.mark.slow
@pytest.mark.parametrize("method", GAUSS, ids=lambda m: m.name)
def test_gauss_flows_of_a_general_hamiltonian_are_symplectic(method):
    flow = deep_flow(_general(), method, H, N_DEEP, SCALE, seed=20)
    assert {st.Symplectic(), st.PreservesVolume()} <= flow.guarantees
    x = points(4, 4, seed=2)
    assert mean_move(flow, x) >= 1.0
    assert max_jacobian_norm(flow, x) <= 100
    tol = C_JAC * N_DEEP * EPS
    assert T.symplecticity_defect(flow, x) <= tol
    assert T.volume_defect(flow, x) <= tol


@pytest.mark.parametrize("method", NOT_SYMPLECTIC, ids=lambda m: m.name)
def test_symplectic_negative_controls(method):
    flow = deep_flow(_general(), method, H, N_DEEP, SCALE, seed=20)
    assert st.Symplectic() not in flow.guarantees
    assert T.symplecticity_defect(flow, points(4, 4, seed=2)) >= CONTROL * C_JAC * N_DEEP * EPS


@pytest.mark.slow
def test_double_pendulum_reference_step_is_symplectic():
    flow = dn.Flow.repeat(dn.Step(dn.systems.DoublePendulum().double(), dn.methods.GaussLegendre(2), 0.05), 20)
    x = points(4, 4, seed=3)
    assert st.Symplectic() in flow.guarantees
    assert T.symplecticity_defect(flow, x) <= C_JAC * 20 * EPS * max_jacobian_norm(flow, x) ** 2


@pytest.mark.slow
def test_sphere_norm_over_ten_thousand_implicit_midpoint_steps():
    step = dn.Step(randomize(dn.fields.SpherePreserving(5, 8), SCALE, seed=50), dn.methods.ImplicitMidpoint(), H)
    assert st.QuadraticInvariant(torch.eye(5)) == st.QuadraticInvariant.norm()
    assert st.QuadraticInvariant.norm() in step.guarantees
    x = points(4, 5, seed=6)
    assert mean_move(dn.Flow.repeat(step, N_DEEP), x) >= 1.0
    drift = rollout_quadratic_drift(step, x, torch.eye(5, dtype=torch.float64) / 5 ** 0.5, N_LONG)
    assert drift <= N_LONG * EPS


def test_sphere_norm_negative_control_radau():
    step = dn.Step(randomize(dn.fields.SpherePreserving(5, 8), SCALE, seed=50), dn.methods.RadauIIA(2), H)
    assert st.QuadraticInvariant.norm() not in step.guarantees
    drift = rollout_quadratic_drift(step, points(4, 5, seed=6), torch.eye(5, dtype=torch.float64), 100)
    assert drift >= CONTROL * 100 * EPS


def _quadratic_q():
    g = torch.Generator().manual_seed(7)
    b = torch.randn(4, 4, generator=g, dtype=torch.float64)
    return (b @ b.T + b.T @ b) / 2  # exactly symmetric, indefinite parts included via the sum


@pytest.mark.slow
@pytest.mark.parametrize("method, holds", [(dn.methods.GaussLegendre(2), True), (dn.methods.RadauIIA(2), False)],
                         ids=["GaussLegendre2", "RadauIIA2-control"])
def test_general_quadratic_invariant_on_a_deep_flow(method, holds):
    Q = _quadratic_q()
    flow = deep_flow(lambda: dn.fields.QuadraticPreserving(4, 8, Q), method, 0.2, N_DEEP, SCALE, seed=60)
    prop = st.QuadraticInvariant(Q)
    x = points(4, 4, seed=7)
    assert mean_move(flow, x) >= 1.0
    defect = T.quadratic_drift(flow, x, Q)
    if holds:
        assert prop in flow.guarantees
        assert defect <= C_JAC * N_DEEP * EPS
    else:
        assert prop not in flow.guarantees
        assert defect >= CONTROL * C_JAC * N_DEEP * EPS


def test_rigid_body_keeps_both_quadratic_invariants():
    body = dn.systems.RigidBody()
    step = dn.Step(body, dn.methods.GaussLegendre(2), 0.5)
    energy = torch.diag(torch.tensor([1 / i for i in body.inertia], dtype=torch.float64))
    x = points(4, 3, seed=8)
    checks = T.verify(dn.Flow.repeat(step, 100), x)
    assert {c.property for c in checks} == {st.QuadraticInvariant.norm(), st.QuadraticInvariant(energy)}
    assert all(c.passed for c in checks)
    radau = dn.Step(body, dn.methods.RadauIIA(2), 0.5)
    assert rollout_quadratic_drift(radau, x, energy, 100) >= CONTROL * 100 * EPS
