"""Step.residual(x, y): zero exactly when y = step(x); explicit in (x, y) for one-stage implicit methods (no Newton
solve), Psi(x) - y otherwise."""

from __future__ import annotations

import pytest
import torch

import dynnets as dn
from dynnets.errors import ConfigError, DtypeError, ShapeError
from dynnets.methods.implicit import ImplicitRK

EPS = torch.finfo(torch.float64).eps
BACKWARD_EULER = ImplicitRK(dn.methods.ButcherTableau.from_lists([[1.0]], [1.0], name="backward Euler", order=1))


def _step(method, h=0.3, seed=0):
    torch.manual_seed(seed)
    return dn.Step(dn.fields.GeneralHamiltonian(2, 8), method, h).double()


def _x(batch=16, seed=1):
    return torch.randn(batch, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("method", [dn.methods.ImplicitMidpoint(), BACKWARD_EULER], ids=lambda m: m.name)
def test_one_stage_residual_vanishes_on_the_step_and_needs_no_solve(method, monkeypatch):
    step, x = _step(method), _x()
    with torch.no_grad():
        y = step(x)
    scale = max(float(x.abs().max()), 1.0)
    n = x.shape[1]

    def no_solve(*_):
        raise AssertionError("residual solved the stage equations")

    monkeypatch.setattr(ImplicitRK, "_problem", no_solve)
    r = step.residual(x, y).detach()
    # Newton's tolerance (8 eps scale) plus the residual's own round-off
    assert float(r.abs().max()) <= 16 * n * EPS * scale
    # negative control: a pair that is not a step has the defect of its perturbation
    assert float(step.residual(x, y + 1e-6).abs().min()) >= 0.5e-6


def test_midpoint_residual_is_the_midpoint_rule():
    step, x = _step(dn.methods.ImplicitMidpoint()), _x()
    y = x + 0.1 * torch.randn_like(x)
    expected = x + 0.3 * step.field((x + y) / 2) - y
    assert torch.equal(step.residual(x, y), expected)


@pytest.mark.parametrize("method", [dn.methods.GaussLegendre(2), dn.methods.RK4(), dn.methods.StormerVerlet()],
                         ids=lambda m: m.name)
def test_other_methods_residual_is_step_minus_y(method):
    torch.manual_seed(0)
    field = dn.fields.Hamiltonian(2, 8) if isinstance(method, dn.methods.StormerVerlet) else dn.fields.GeneralHamiltonian(2, 8)
    step, x = dn.Step(field, method, 0.3).double(), _x()
    y = x + 0.1 * torch.randn_like(x)
    assert torch.equal(step.residual(x, y), step(x) - y)


def test_time_dependent_field_evaluated_at_the_stage_time():
    field = dn.function.as_field(lambda t, x: -x * torch.cos(t).reshape(-1, 1))
    step = dn.Step(field, dn.methods.ImplicitMidpoint(), 0.2)
    x = _x(batch=6)[:, :2]
    for t in (0.0, 1.3, torch.tensor(2.5, dtype=torch.float64)):
        y = step(x, t)
        assert float(step.residual(x, y, t).abs().max()) <= 16 * 2 * EPS * max(float(x.abs().max()), 1.0)
        # the stage time matters: starting from another t the same pair is not a step
        assert float(step.residual(x, y, t + 1.0).abs().max()) > 1e-3
    with pytest.raises(ConfigError, match="start time"):  # the method called without t
        dn.methods.ImplicitMidpoint().residual(field, x, x, 0.2)
    with pytest.raises(ConfigError, match="one time"):  # rows at different start times: one solve per time
        step(x, torch.linspace(0.0, 3.0, 6, dtype=torch.float64))


def test_training_on_the_residual_fits_the_step():
    """Pairs of a known midpoint step are learned through the residual; the trained step (a Newton solve)
    reproduces them far better than the initial one."""
    teacher, student, x = _step(dn.methods.ImplicitMidpoint(), seed=3), _step(dn.methods.ImplicitMidpoint(), seed=4), _x(64)
    with torch.no_grad():
        y = teacher(x)
        before = float((student(x) - y).square().mean())
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        student.residual(x, y).square().mean().backward()
        opt.step()
    with torch.no_grad():
        after = float((student(x) - y).square().mean())
    assert after < 1e-2 * before


def test_bad_pairs_refused():
    step, x = _step(dn.methods.ImplicitMidpoint()), _x()
    with pytest.raises(ShapeError, match="residual"):
        step.residual(x, x[:, :2])
    with pytest.raises(DtypeError):
        step.residual(x, x.float())
