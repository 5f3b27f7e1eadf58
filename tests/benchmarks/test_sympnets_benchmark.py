"""benchmarks.sympnets' set-up (not its timings): the reimplemented G-SympNet is strupnet's with the same
weights, the models of each parameter class have equal counts within 10%, and the symplectic ones are
symplectic to round-off in float64 (the MLP is the negative control)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import dynnets as dn

sympnets = pytest.importorskip("benchmarks.sympnets")
# not imported here: strupnet's import sets torch's default dtype (the benchmark restores it)
if importlib.util.find_spec("strupnet") is None:
    pytest.skip("strupnet==0.0.4 (the bench extra) is not installed", allow_module_level=True)


@pytest.fixture(autouse=True)
def _default_dtype_unchanged():
    before = torch.get_default_dtype()
    yield
    assert torch.get_default_dtype() == before


def test_the_reimplemented_g_sympnet_is_strupnets():
    assert sympnets.check_reimplementation() <= 10 * dn.testing.EPS64


def test_each_parameter_class_has_equal_counts_within_ten_percent():
    groups: dict = {}
    for group, build in sympnets.models().values():
        groups.setdefault(group, []).append(sum(p.numel() for p in build().parameters()))
    for group, counts in groups.items():
        assert max(counts) <= 1.1 * int(group) and min(counts) >= 0.9 * int(group), (group, counts)


def test_symplectic_models_are_symplectic_and_the_mlp_is_not():
    torch.manual_seed(0)
    x = sympnets.orbit(20)[::4]
    tol = 10 * 2 * dn.testing.EPS64 * 100  # n = 2, up to 100 composed maps
    for name, (_, build) in sympnets.models().items():
        model = build().double()
        defect = dn.testing.symplecticity_defect(model, x)
        if name in ("residual MLP", "HNN"):
            continue  # HNN: symplectic only up to RK4's error; the MLP: not at all
        assert defect <= tol, (name, defect)
    mlp = sympnets.ResidualMLP(18).double()
    assert dn.testing.symplecticity_defect(mlp, x) >= 1e6 * tol
