"""StormerVerlet.modified_hamiltonian: the second-order modified energy varies by O(h^4) along the steps
where the field's own H varies by O(h^2) (the negative control)."""

from __future__ import annotations

import math

import pytest
import torch
from structure_cases import points, randomize

import dynnets as dn
from dynnets.errors import ConfigError, IncompatibleFieldError, ShapeError

F, M = dn.fields, dn.methods


@torch.no_grad()
def _variation(field, h: float, modified: bool, t_end: float = 5.0) -> float:
    """max over the steps of |E(x_k) - E(x_0)|, E = H~ (``modified``) or H."""
    sv = M.StormerVerlet()

    def energy(z):
        return sv.modified_hamiltonian(field, z, h) if modified else field.hamiltonian(z)

    x = points(3, 4, seed=7)
    e0, worst = energy(x), 0.0
    for _ in range(round(t_end / h)):
        x = sv.step(field, x, h)
        worst = max(worst, float((energy(x) - e0).abs().max()))
    return worst


@pytest.mark.slow
def test_modified_energy_varies_at_fourth_order_where_h_varies_at_second():
    field = randomize(F.Hamiltonian(2, 8), 1.0, seed=3)
    orders = {}
    for modified in (False, True):
        coarse, fine = _variation(field, 0.1, modified), _variation(field, 0.05, modified)
        orders[modified] = math.log2(coarse / fine)
    assert 1.6 <= orders[False] <= 2.4  # H: O(h^2)
    assert orders[True] >= 3.5  # H~: O(h^4)


def test_one_energy_field_has_its_own_hamiltonian():
    field = randomize(F.Hamiltonian(2, 4, kinetic=False), 1.0, seed=4)
    x = points(5, 4, seed=1)
    assert torch.equal(M.StormerVerlet().modified_hamiltonian(field, x, 0.3), field.hamiltonian(x))


def test_modified_hamiltonian_is_differentiable_in_the_parameters():
    field = F.Hamiltonian(2, 4).double()
    M.StormerVerlet().modified_hamiltonian(field, points(5, 4, seed=1), 0.2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in field.parameters())


@pytest.mark.parametrize("field", [F.GeneralHamiltonian(2, 4), F.Dense(4, 4)], ids=["general", "dense"])
def test_needs_a_separable_hamiltonian(field):
    with pytest.raises(IncompatibleFieldError, match="SeparableHamiltonian"):
        M.StormerVerlet().modified_hamiltonian(field, torch.randn(2, 4), 0.1)


@pytest.mark.parametrize("h, error", [("0.1", ConfigError), (float("nan"), ConfigError), (None, ConfigError),
                                      (torch.ones(3), ShapeError), (torch.ones(5, 1), ShapeError)],
                         ids=["string", "nan", "none", "wrong-batch", "2-d"])
def test_bad_step_sizes_are_typed_errors(h, error):
    with pytest.raises(error, match="h"):
        M.StormerVerlet().modified_hamiltonian(F.Hamiltonian(2, 4), torch.randn(5, 4), h)


def test_per_sample_h_is_each_rows_own():
    field, x = randomize(F.Hamiltonian(2, 4), 1.0, seed=5), points(5, 4, seed=2)
    h = torch.linspace(0.1, 0.5, 5, dtype=torch.float64)
    rows = M.StormerVerlet().modified_hamiltonian(field, x, h)
    each = torch.stack([M.StormerVerlet().modified_hamiltonian(field, x[i:i + 1], float(h[i]))[0] for i in range(5)])
    torch.testing.assert_close(rows, each, rtol=0, atol=1e-15)
