"""Every (field, method) pair of DESIGN.md's guarantee table, measured in float64 on deep flows.

Each claim is checked against a round-off tolerance C * n * eps (eps = float64 machine epsilon, n the
number of steps, C stated per test) and paired with a negative control: the same kind of field under a
method that does not preserve the property shows a defect at least 1e6 times the tolerance, so every
measurement can fail. Deep flows have 50 steps, each with its own field whose parameters are drawn at
scale 0.5 (well above the default initialisation); the tests assert the maps move points by at
least 1 on average (far from the identity). The Jacobian-based tests also assert ||D Psi||_2 <= 100, the regime in
which a plain C * n * eps bound is meaningful (the round-off of J^T Omega J grows like ||J||^2; the
property tests in tests/core/test_structure_properties.py scale the tolerance with it instead).
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
    rollout_linear_drift,
    rollout_norm_drift,
)

import dynnets as dn
from dynnets import structure as st
from dynnets import testing as T

N_DEEP = 50          # layers of a deep flow
N_LONG = 10_000      # composed steps of a weight-tied rollout
H = 0.5              # the largest step size the issue asks for
SCALE = 0.5          # parameter scale of the random fields
C_JAC = 10           # Jacobian-based defects (symplecticity, volume) and inverse round trips
C_ROLL = 1           # rollouts: per composed step one rounding of each term of the sum
CONTROL = 1e6        # a negative control must exceed CONTROL * tolerance


def _volume(dim=2, v_dim=None):
    return lambda: dn.fields.VolumePreserving(dim, 8, v_dim=v_dim)


def _hamiltonian(dim=2):
    return lambda: dn.fields.Hamiltonian(dim, 8)


PARTITIONED = [dn.methods.SymplecticEuler(), dn.methods.StormerVerlet()]


# --- volume: partitioned fields under partitioned methods -------------------------------------------

VOLUME_CASES = [
    pytest.param(_volume(2), 4, id="VolumePreserving(2)"),
    pytest.param(_volume(3, v_dim=1), 4, id="VolumePreserving(3,v_dim=1)"),
    pytest.param(_hamiltonian(2), 4, id="Hamiltonian(2)"),
]


@pytest.mark.parametrize("method", PARTITIONED, ids=lambda m: m.name)
@pytest.mark.parametrize("make_field,dim", VOLUME_CASES)
def test_volume_preserved_by_partitioned_methods(make_field, dim, method):
    flow = deep_flow(make_field, method, H, N_DEEP, SCALE, seed=10)
    assert st.PreservesVolume() in flow.guarantees
    x = points(8, dim, seed=1)
    assert mean_move(flow, x) >= 1.0
    assert max_jacobian_norm(flow, x) <= 100
    tol = C_JAC * N_DEEP * EPS
    assert T.volume_defect(flow, x) <= tol


def test_volume_negative_control_rk4():
    flow = deep_flow(_volume(2), dn.methods.RK4(), H, N_DEEP, SCALE, seed=10)
    assert st.PreservesVolume() not in flow.guarantees
    x = points(8, 4, seed=1)
    assert T.volume_defect(flow, x) >= CONTROL * C_JAC * N_DEEP * EPS


# --- symplecticity: separable Hamiltonian fields ----------------------------------------------------

@pytest.mark.parametrize("method", PARTITIONED, ids=lambda m: m.name)
@pytest.mark.parametrize("dim", [1, 3])
def test_symplectic(dim, method):
    flow = deep_flow(_hamiltonian(dim), method, H, N_DEEP, SCALE, seed=20)
    assert st.Symplectic() in flow.guarantees
    x = points(8, 2 * dim, seed=2)
    assert mean_move(flow, x) >= 1.0
    assert max_jacobian_norm(flow, x) <= 100
    assert T.symplecticity_defect(flow, x) <= C_JAC * N_DEEP * EPS


def test_volume_field_is_not_claimed_symplectic():
    step = dn.Step(dn.fields.VolumePreserving(2, 4), dn.methods.SymplecticEuler(), H)
    assert step.guarantees == frozenset({st.PreservesVolume()})


@pytest.mark.parametrize("dim", [1, 3])
def test_symplectic_negative_control_rk4(dim):
    flow = deep_flow(_hamiltonian(dim), dn.methods.RK4(), H, N_DEEP, SCALE, seed=20)
    assert st.Symplectic() not in flow.guarantees
    x = points(8, 2 * dim, seed=2)
    assert T.symplecticity_defect(flow, x) >= CONTROL * C_JAC * N_DEEP * EPS


# --- explicit inverse round trip --------------------------------------------------------------------

@pytest.mark.parametrize("method", PARTITIONED, ids=lambda m: m.name)
@pytest.mark.parametrize("make_field,dim", VOLUME_CASES)
def test_inverse_round_trip(make_field, dim, method):
    flow = deep_flow(make_field, method, H, N_DEEP, SCALE, seed=30)
    assert flow.invertible
    x = points(8, dim, seed=3)
    assert mean_move(flow, x) >= 1.0
    assert T.inverse_defect(flow, flow.inverse, x) <= C_JAC * N_DEEP * EPS


@torch.no_grad()
def test_inverse_negative_control_naive_backward_step():
    """Undoing each step by y - h F(y) (the tempting 'backward Euler' guess) is not an inverse."""
    flow = deep_flow(_volume(2), dn.methods.SymplecticEuler(), H, N_DEEP, SCALE, seed=30)

    def naive_inverse(y):
        for s in reversed(flow.steps):
            y = y - s.h * s.field(y)
        return y

    x = points(8, 4, seed=3)
    assert T.inverse_defect(flow, naive_inverse, x) >= CONTROL * C_JAC * N_DEEP * EPS


# --- linear invariants: any Runge-Kutta method on a field with c^T F = 0 ---------------------------

RK_METHODS = [dn.methods.Euler(), dn.methods.Heun(), dn.methods.ExplicitRK(dn.methods.tableaux.SSPRK3),
              dn.methods.RK4()]


# every mass and sphere test runs on the full-rank family and on its low-rank variant (rank=2:
# A(x) = U(x) V(x)^T, S(x) = U V^T - V U^T; the sphere variant's Cayley step solves by Woodbury, at rank 1
# by Cramer's rule)
MASS_FIELDS = [pytest.param(lambda: dn.fields.MassPreserving(5, 8), id="full"),
               pytest.param(lambda: dn.fields.MassPreserving(5, 8, rank=2), id="rank2")]
SPHERE_FIELDS = [pytest.param(lambda: dn.fields.SpherePreserving(5, 8), id="full"),
                 pytest.param(lambda: dn.fields.SpherePreserving(5, 8, rank=1), id="rank1"),
                 pytest.param(lambda: dn.fields.SpherePreserving(5, 8, rank=2), id="rank2")]


def _mass_step(method, make_field):
    return dn.Step(randomize(make_field(), SCALE, seed=40), method, H)


def _projected_step(method, c):
    return dn.Step(dn.fields.Projected(randomize(dn.fields.Dense(5, 8), SCALE, seed=41), c), method, H)


C_VEC = torch.tensor([1.0, -2.0, 0.5, 3.0, 1.0], dtype=torch.float64)


def _check_rollout(step, c):
    """drift of c^T x over N_LONG composed steps, against C_ROLL * n * eps * (size of the summed terms)."""
    assert st.LinearInvariant(c) in step.guarantees
    x = points(4, 5, seed=4)
    drift, size = rollout_linear_drift(step, x, c, N_LONG)
    assert drift <= C_ROLL * N_LONG * EPS * max(1.0, size)


@pytest.mark.slow
@pytest.mark.parametrize("make_field", MASS_FIELDS)
@pytest.mark.parametrize("method", RK_METHODS, ids=lambda m: m.name)
def test_mass_conserved_over_long_rollout(method, make_field):
    step = _mass_step(method, make_field)
    assert mean_move(dn.Flow.repeat(step, N_DEEP), points(4, 5, seed=4)) >= 1.0
    _check_rollout(step, torch.ones(5, dtype=torch.float64))


@pytest.mark.slow
@pytest.mark.parametrize("method", [dn.methods.Euler(), dn.methods.RK4()], ids=lambda m: m.name)
def test_projected_invariant_conserved_over_long_rollout(method):
    _check_rollout(_projected_step(method, C_VEC), C_VEC)


@pytest.mark.parametrize("c", [torch.ones(5, dtype=torch.float64), C_VEC], ids=["ones", "c"])
def test_linear_invariant_negative_control_euler_dense(c):
    step = dn.Step(randomize(dn.fields.Dense(5, 8), SCALE, seed=41), dn.methods.Euler(), H)
    assert not any(isinstance(p, st.LinearInvariant) for p in step.guarantees)
    drift, size = rollout_linear_drift(step, points(4, 5, seed=4), c, N_LONG)
    assert drift >= CONTROL * C_ROLL * N_LONG * EPS * max(1.0, size)


@pytest.mark.parametrize("make_field", MASS_FIELDS)
def test_deep_mass_flow_invariant_drift(make_field):
    """The DESIGN measurement dn.testing.invariant_drift on a 50-layer flow of distinct fields."""
    flow = deep_flow(make_field, dn.methods.RK4(), H, N_DEEP, SCALE, seed=42)
    x = points(8, 5, seed=5)
    assert mean_move(flow, x) >= 1.0
    with torch.no_grad():
        size = max(1.0, float(flow(x).abs().sum(1).max()), float(x.abs().sum(1).max()))
    assert T.invariant_drift(flow, x, torch.ones(5)) <= C_ROLL * N_DEEP * EPS * size


# --- norm: skew-product fields under the Cayley step ------------------------------------------------

def _sphere_step(method, make_field):
    return dn.Step(randomize(make_field(), SCALE, seed=50), method, H)


@pytest.mark.parametrize("make_field", SPHERE_FIELDS)
def test_norm_preserved_by_cayley_deep_flow(make_field):
    flow = deep_flow(make_field, dn.methods.Cayley(), H, N_DEEP, SCALE, seed=51)
    assert st.QuadraticInvariant.norm() in flow.guarantees
    x = points(8, 5, seed=6)
    assert mean_move(flow, x) >= 1.0
    assert T.norm_drift(flow, x) <= C_ROLL * N_DEEP * EPS


@pytest.mark.slow
@pytest.mark.parametrize("make_field", SPHERE_FIELDS)
def test_norm_preserved_by_cayley_long_rollout(make_field):
    step = _sphere_step(dn.methods.Cayley(), make_field)
    assert rollout_norm_drift(step, points(4, 5, seed=6), N_LONG) <= C_ROLL * N_LONG * EPS


@pytest.mark.parametrize("make_field", SPHERE_FIELDS)
def test_norm_negative_control_euler(make_field):
    flow = deep_flow(make_field, dn.methods.Euler(), H, N_DEEP, SCALE, seed=51)
    assert st.QuadraticInvariant.norm() not in flow.guarantees
    assert T.norm_drift(flow, points(8, 5, seed=6)) >= CONTROL * C_ROLL * N_DEEP * EPS
