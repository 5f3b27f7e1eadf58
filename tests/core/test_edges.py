"""Issue 15's cases at the edges of the core and the families: every accepted input gives a right answer
(measured in float64, tolerance C n eps, with a control), every refused one a typed one-line error."""

import math
import os
import stat

import numpy as np
import pytest
import torch

import dynnets as dn
from dynnets.applications.eigen import SEED_MATRIX, accuracy, yi_eig
from dynnets.errors import ConfigError, DynnetsError, StepSizeError
from dynnets.io import write_json

F, M = dn.fields, dn.methods
EPS64, EPS32 = torch.finfo(torch.float64).eps, torch.finfo(torch.float32).eps


@pytest.mark.parametrize("scale", [1e160, 1e-160, 1e300, 1e-300])
def test_yi_eig_is_scale_invariant(scale):
    a = np.array(SEED_MATRIX)
    res = yi_eig(a * scale)
    acc = accuracy(a * scale, res.eigenvalues, res.eigenvectors)
    assert acc["max_eps"] <= 1e-12 and acc["max_abs_Lambda"] <= 1e-12, scale
    # power-of-two scaling is exact: the same digits as for A itself
    assert torch.equal(yi_eig(a * 2.0**600).eigenvalues, yi_eig(a).eigenvalues * 2.0**600)


def test_paper_procedure_refuses_its_unstable_fixed_step_on_a_huge_matrix():
    with pytest.raises(StepSizeError, match="unstable for h="):
        yi_eig(np.array(SEED_MATRIX) * 1e160, procedure="paper", steps=1000)


@pytest.mark.parametrize("options, rule", [
    ({"causality": float("nan")}, "causality"), ({"causality": -1.0}, "causality"),
    ({"time_budget": -5}, "time_budget"), ({"accept_tol": -1}, "accept_tol"), ({"max_rounds": 0}, "max_rounds"),
    ({"adam_steps": -3}, "adam_steps"), ({"adam_steps": 0, "lbfgs_steps": 0}, "lbfgs_steps"),
    ({"lr": float("nan")}, "lr"), ({"horizon": 0.0}, "horizon"), ({"starts": True}, "starts"),
])
def test_network_options_are_refused_before_any_work(options, rule, monkeypatch):
    import dynnets.applications.eigen.network as network

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the options were checked")

    monkeypatch.setattr(network, "_train_round", no_training)
    with pytest.raises(ConfigError, match=rule):
        yi_eig(np.array(SEED_MATRIX), procedure="network", **options)


@pytest.mark.parametrize("options, rule", [
    ({"seed": -1}, "seed"), ({"max_steps": 0}, "max_steps"), ({"max_steps": -5}, "max_steps"),
    ({"tol": float("nan")}, "tol"), ({"step_factor": "1"}, "step_factor"),
    ({"step_factor": 1.72}, r"step_factor must be < 1.72, got step_factor=1.72"),
    ({"step_factor": 0}, r"step_factor must be positive and finite, got step_factor=0.0"),
    ({"procedure": "paper", "start_norm": 0.0, "steps": 10}, "start_norm"),
    ({"procedure": "paper", "steps": True}, "steps"),
    ({"lr": float("nan")}, "takes no option 'lr'"), ({"procedure": "paper", "order": "x"}, "takes no option 'order'"),
    ({"procedure": "bogus"}, "procedure"),
    # issue 26: an AttributeError and a silently accepted tol before
    ({"method": "x"}, r"method must be None or a dynnets.methods.Method .* got 'x' of type str"),
    ({"tol": 1e10}, r"tol must be in \[16 eps, 1\) .* got tol=1e\+?10"),
    ({"tol": 1.0}, r"tol must be in \[16 eps, 1\)"), ({"tol": 1e-17}, r"tol must be in \[16 eps, 1\)"),
])
def test_eigen_solver_options_are_refused_with_a_typed_error(options, rule):
    with pytest.raises(ConfigError, match=rule):
        yi_eig(np.array(SEED_MATRIX), **options)


@pytest.mark.parametrize("c", [[1e200, 1e200, 0.0, 0.0], [1e-300, 0.0, 0.0, 0.0], [3.0, -1e-12, 0.0, 7.0]])
def test_conserve_linear_holds_at_any_scale_of_c(c):
    torch.manual_seed(1)
    field = F.Projected(F.Dense(4, 8).double(), c)
    flow = dn.Flow.repeat(dn.Step(field, M.RK4(), 0.5), 50)
    x = 3 * torch.randn(32, 4, dtype=torch.float64)
    checks = dn.testing.verify(flow, x, C=1.0)
    assert checks and all(ch.passed for ch in checks), checks
    control = dn.Flow.repeat(dn.Step(F.Dense(4, 8).double(), M.RK4(), 0.5), 50)
    assert dn.testing.invariant_drift(control, x, c) > 1e6 * checks[0].tolerance


def test_conserve_linear_refuses_a_string_c():
    with pytest.raises(ConfigError, match="string"):
        F.Projected(F.Dense(4, 8), "1234")


def test_learned_h_on_a_fixed_field_is_bounded_by_its_stability_limit():
    field = dn.systems.HeatField1D(dn.systems.UniformGrid1D(0.0, 1.0, 100))
    dx = field.dx
    step = dn.Step(field, M.Euler(), 0.4 * dx**2, learn_h=True)  # no h_max given
    limit = M.Euler().max_stable_step(field)
    assert step.h_max == limit == pytest.approx(0.5 * dx**2)
    with torch.no_grad():
        step.h_raw.fill_(50.0)  # what training that grows h without bound would do
    assert float(step.h) <= limit
    u = torch.sin(math.pi * field.grid.interior()).unsqueeze(0)
    with torch.no_grad():
        for _ in range(200):
            u = step(u)
    assert float(u.abs().max()) <= 1.0  # FTCS at the limit is still stable (no 5.9e293)


@pytest.mark.parametrize("h, learn_h, rule", [
    (True, False, "real number"), ("0.1", False, "real number"),
    (torch.tensor(0.1, requires_grad=True), False, "requires grad"), (float("nan"), False, "finite"),
    (1e-50, True, "not representable"), (0.1, "no", "learn_h must be True or False"),
])
def test_step_size_options_are_strict(h, learn_h, rule):
    with pytest.raises(DynnetsError, match=rule):
        dn.Step(F.Dense(2, 4), M.Euler(), h, learn_h=learn_h)


@pytest.mark.parametrize("make", [
    lambda s: F.Dense(3, 4, init_scale=s), lambda s: F.MassPreserving(3, 4, init_scale=s),
    lambda s: F.SpherePreserving(3, 4, init_scale=s), lambda s: F.VolumePreserving(2, 4, init_scale=s),
    lambda s: F.Hamiltonian(2, 4, init_scale=s), lambda s: F.ConvFD(1, 2, init_scale=s),
])
@pytest.mark.parametrize("scale", [float("nan"), -1.0, "1"])
def test_init_scale_is_validated(make, scale):
    with pytest.raises(ConfigError, match="init_scale"):
        make(scale)


def test_linear_field_refuses_a_complex_matrix():
    with pytest.raises(ConfigError, match="imaginary part"):
        F.Linear(torch.eye(2, dtype=torch.complex64))


def test_result_files_get_ordinary_permissions(tmp_path):
    path = write_json(tmp_path / "metrics.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_traits_invariant_equals_the_property_built_from_the_same_vector():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        c = torch.randn(5, generator=gen, dtype=torch.float64) * 10.0 ** int(torch.randint(-200, 200, (1,), generator=gen))
        trait = dn.structure.LinearInvariant(c)
        assert trait == dn.structure.LinearInvariant(c.tolist()) and hash(trait) == hash(dn.structure.LinearInvariant(c))
        field = F.Projected(F.Dense(5, 4).double(), c)
        assert dn.Step(field, M.RK4(), 0.1).guarantees == {dn.structure.LinearInvariant(c)}
