"""Hypothesis property tests: the structural guarantees hold for random sizes, widths, step sizes and
parameters, not just for the hand-picked cases of test_structure_invariants.py.

Random configurations can make maps ill-conditioned, and the round-off of a Jacobian-based defect
scales with the conditioning (J^T Omega J, det J and a round trip through an expanding map all lose
about ||J||^2 eps), so these tolerances are C * n * eps * max(1, ||J||_2)^2, with C = 10. A
non-preserving map has a defect of order ||J||^2 times its per-step violation, so the measurement still
separates the two (the negative controls of test_structure_invariants.py show the gap).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs
from structure_cases import EPS, deep_flow, max_jacobian_norm, points, rollout_linear_drift

import dynnets as dn
from dynnets import testing as T

C = 10
N = 12  # layers per random flow
PROFILE = settings(max_examples=15, deadline=None, derandomize=True)

sizes = hs.integers(1, 4)
widths = hs.integers(1, 8)
steps = hs.floats(0.01, 0.5)
scales = hs.floats(0.1, 0.8)
seeds = hs.integers(0, 10_000)
partitioned = hs.sampled_from([dn.methods.SymplecticEuler(), dn.methods.StormerVerlet()])


def _conditioned_tol(flow, x):
    return C * N * EPS * max(1.0, max_jacobian_norm(flow, x)) ** 2


@pytest.mark.slow
@PROFILE
@given(q_dim=sizes, v_dim=sizes, width=widths, h=steps, scale=scales, seed=seeds, method=partitioned)
def test_volume_property(q_dim, v_dim, width, h, scale, seed, method):
    flow = deep_flow(lambda: dn.fields.VolumePreserving(q_dim, width, v_dim=v_dim), method, h, N, scale, seed)
    x = points(4, q_dim + v_dim, seed)
    tol = _conditioned_tol(flow, x)
    assert T.volume_defect(flow, x) <= tol
    assert T.inverse_defect(flow, flow.inverse, x) <= tol


@pytest.mark.slow
@PROFILE
@given(dim=sizes, width=widths, h=steps, scale=scales, seed=seeds, method=partitioned)
def test_symplectic_property(dim, width, h, scale, seed, method):
    flow = deep_flow(lambda: dn.fields.Hamiltonian(dim, width), method, h, N, scale, seed)
    x = points(4, 2 * dim, seed)
    tol = _conditioned_tol(flow, x)
    assert T.symplecticity_defect(flow, x) <= tol
    assert T.inverse_defect(flow, flow.inverse, x) <= tol


@PROFILE
@given(dim=hs.integers(2, 6), width=widths, h=steps, scale=scales, seed=seeds,
       method=hs.sampled_from([dn.methods.Euler(), dn.methods.Heun(), dn.methods.RK4()]))
def test_mass_property(dim, width, h, scale, seed, method):
    flow = deep_flow(lambda: dn.fields.MassPreserving(dim, width), method, h, N, scale, seed)
    ones = torch.ones(dim, dtype=torch.float64)
    drift, size = rollout_linear_drift(flow, points(4, dim, seed), ones, 20)  # 20 passes of N layers
    assert drift <= C * 20 * N * EPS * max(1.0, size)


@PROFILE
@given(dim=hs.integers(2, 6), width=widths, h=hs.floats(0.01, 2.0), scale=hs.floats(0.1, 2.0), seed=seeds)
def test_norm_property(dim, width, h, scale, seed):
    flow = deep_flow(lambda: dn.fields.SpherePreserving(dim, width), dn.methods.Cayley(), h, N, scale, seed)
    assert T.norm_drift(flow, points(4, dim, seed)) <= C * N * EPS


@pytest.mark.slow
@PROFILE
@given(dim=hs.integers(2, 6), rank=hs.integers(1, 3), groups=hs.integers(1, 3), h=steps, scale=scales, seed=seeds,
       method=hs.sampled_from([dn.methods.Euler(), dn.methods.Heun(), dn.methods.RK4()]))
def test_low_rank_mass_property(dim, rank, groups, h, scale, seed, method):
    flow = deep_flow(lambda: dn.fields.MassPreserving(dim, 2 * rank * groups, rank=rank), method, h, N, scale, seed)
    ones = torch.ones(dim, dtype=torch.float64)
    drift, size = rollout_linear_drift(flow, points(4, dim, seed), ones, 20)  # 20 passes of N layers
    assert drift <= C * 20 * N * EPS * max(1.0, size)


@PROFILE
@given(dim=hs.integers(2, 6), rank=hs.integers(1, 3), groups=hs.integers(1, 3), h=hs.floats(0.01, 2.0),
       scale=hs.floats(0.1, 2.0), seed=seeds)
def test_low_rank_norm_property(dim, rank, groups, h, scale, seed):
    """The Woodbury Cayley step of the low-rank field, ranks up to 3 (2 rank may exceed dim: S is then of
    full rank or less, the 2 rank x 2 rank system is still never singular)."""
    flow = deep_flow(lambda: dn.fields.SpherePreserving(dim, 2 * rank * groups, rank=rank), dn.methods.Cayley(), h, N,
                     scale, seed)
    assert T.norm_drift(flow, points(4, dim, seed)) <= C * N * EPS
