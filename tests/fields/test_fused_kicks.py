"""Fused kicks of the Hamiltonian families (issue 29's cost per training iteration).

``Hamiltonian.partition_kick`` and ``QuadraticHamiltonian.partition_kick`` (one addmm per kick) equal the
default product-and-sum kick of ``Field`` to round-off in float64 (C n eps), for float, 0-d (a learned h),
per-sample and several coefficients and for single states under vmap (the matmul path); negative control: a
coefficient changed by 1e-9 relatively is seen. A stretch of kicks is bitwise its kicks one by one."""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS, points, randomize

import dynnets as dn

DIM, WIDTH, BATCH = 3, 8, 6
FIELDS = {
    "Hamiltonian": lambda: dn.fields.Hamiltonian(DIM, WIDTH),
    "softplus": lambda: dn.fields.Hamiltonian(DIM, WIDTH, "softplus"),
    "diagonal": lambda: dn.fields.Hamiltonian(DIM, DIM, diagonal=True),
    "Quadratic": lambda: dn.fields.QuadraticHamiltonian(DIM, bias=True),
    "Quadratic rank 2": lambda: dn.fields.QuadraticHamiltonian(DIM, rank=2, bias=True),
}
COEFFICIENTS = {
    "one": lambda: [1.0],
    "float": lambda: [0.3],
    "several": lambda: [0.5, -0.25, 0.125],
    "0-d tensor": lambda: [torch.tensor(0.4, dtype=torch.float64)],
    "per-sample": lambda: [torch.linspace(-1.0, 1.5, BATCH, dtype=torch.float64).unsqueeze(1)],
}


def _field(name: str):
    return randomize(FIELDS[name](), 0.8, seed=3)


def _tolerance(field, which, z, point, coefficients) -> float:
    """C n eps times the size of the terms summed: |z| + sum |c| |value| (n: the ridges' width or dim)."""
    with torch.no_grad():
        value = float(dn.base.Field.partition_kick(field, which, torch.zeros_like(z), point, [1.0]).abs().max())
    size = float(z.abs().max()) + sum(float(torch.as_tensor(c).abs().max()) for c in coefficients) * value
    return 8 * (WIDTH + DIM) * EPS * max(1.0, size)


@pytest.mark.parametrize("coefficients", COEFFICIENTS)
@pytest.mark.parametrize("which", ["f", "g"])
@pytest.mark.parametrize("name", FIELDS)
def test_fused_kick_is_the_product_and_sum_to_round_off(name, which, coefficients):
    field, cs = _field(name), COEFFICIENTS[coefficients]()
    z, point = points(BATCH, DIM, seed=1), points(BATCH, DIM, seed=2)
    with torch.no_grad():
        fused = field.partition_kick(which, z, point, cs)
        plain = dn.base.Field.partition_kick(field, which, z, point, cs)
        nudged = dn.base.Field.partition_kick(field, which, z, point, [c * (1 + 1e-9) for c in cs])
    tol = _tolerance(field, which, z, point, cs)
    assert float((fused - plain).abs().max()) <= tol
    # negative control: the tolerance sees a coefficient changed by 1e-9 relatively
    assert float((fused - nudged).abs().max()) > 100 * tol


@pytest.mark.parametrize("name", FIELDS)
@torch.no_grad()
def test_a_stretch_is_bitwise_its_kicks_one_by_one_and_single_states_match_the_batch(name):
    field, cs = _field(name), [0.5, -0.25, 0.125]
    z, point = points(BATCH, DIM, seed=4), points(BATCH, DIM, seed=5)
    for which in ("f", "g"):
        one_by_one = z
        for c in cs:
            one_by_one = field.partition_kick(which, one_by_one, point, [c])
        assert torch.equal(field.partition_kick(which, z, point, cs), one_by_one)
        rows = torch.func.vmap(lambda a, b, which=which: field.partition_kick(which, a, b, cs))(z, point)
        assert float((rows - one_by_one).abs().max()) <= _tolerance(field, which, z, point, cs)
