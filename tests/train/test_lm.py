"""Levenberg-Marquardt as a phase of fit: a least-squares problem with a known solution, exact resume, and
its refusals (issue 15)."""

from __future__ import annotations

import math

import pytest
import torch

from dynnets.errors import CheckpointError, ConfigError
from dynnets.train import Phase, fit, load_checkpoint, save_checkpoint

EPS = torch.finfo(torch.float64).eps
T = torch.linspace(0.0, 2.0, 40, dtype=torch.float64)


class Decay(torch.nn.Module):
    """y(t) = a exp(b t): a nonlinear least-squares problem; with data from a = 2, b = -1.5 the residual
    vanishes at exactly that point."""

    def __init__(self, a=1.0, b=0.0):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, t):
        return self.a * torch.exp(self.b * t)


DATA = 2.0 * torch.exp(-1.5 * T)


def _residual(model, batch):
    return model(T) - DATA


def test_lm_finds_the_known_solution_and_never_increases_the_loss():
    model = Decay()
    result = fit(model, _residual, phases=[Phase("lm", 30)], progress=False)
    assert abs(float(model.a) - 2.0) <= 1e3 * EPS and abs(float(model.b) + 1.5) <= 1e3 * EPS
    losses = result.losses + [result.end_loss]
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # only steps that reduce the loss are taken
    assert result.end_loss <= 1e-24 and result.losses[0] == pytest.approx(float(_residual(Decay(), None).square().sum()))
    # negative control: 2 iterations are not enough from this start
    early = Decay()
    fit(early, _residual, phases=[Phase("lm", 2)], progress=False)
    assert abs(float(early.a) - 2.0) > 1e-3


def test_lm_on_a_linear_problem_is_the_least_squares_solution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    y = torch.randn(50, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(3, 1, bias=False).double()
    fit(model, lambda m, b: m(x) - y, phases=[Phase("lm", 8, options={"mu0": 1e-6})], progress=False)
    exact = torch.linalg.lstsq(x, y).solution.T
    assert torch.allclose(model.weight, exact, rtol=0, atol=1e3 * EPS)


@pytest.mark.slow
def test_lm_resume_is_bitwise(tmp_path):
    full = Decay()
    fit(full, _residual, phases=[Phase("lm", 6)], checkpoint=tmp_path / "full.ckpt", progress=False)
    split = Decay()
    fit(split, _residual, phases=[Phase("lm", 3)], checkpoint=tmp_path / "split.ckpt", progress=False)
    result = fit(split, _residual, phases=[Phase("lm", 6)], checkpoint=tmp_path / "split.ckpt", progress=False)
    assert result.resumed_from == 3
    assert torch.equal(full.a, split.a) and torch.equal(full.b, split.b)
    a, b = load_checkpoint(tmp_path / "full.ckpt"), load_checkpoint(tmp_path / "split.ckpt")
    assert torch.equal(a["losses"], b["losses"]) and a["stepper"] == b["stepper"]


def test_adam_then_lm_phases():
    model = Decay()
    result = fit(model, _residual, phases=[Phase("adam", 20, lr=1e-2, loss=lambda m, b: _residual(m, b).square().sum()),
                                           Phase("lm", 25)], progress=False)
    assert result.steps_done <= 45 and abs(float(model.b) + 1.5) <= 1e3 * EPS


@pytest.mark.parametrize("options, words", [
    ({"mu0": math.nan}, "mu0=nan"), ({"mu0": -1.0}, "mu0=-1.0"), ({"tau": math.inf}, "tau=inf"),
    ({"damping": 1.0}, "unknown key"),
])
def test_bad_lm_options_are_refused_before_any_work(options, words):
    model = Decay()
    with pytest.raises(ConfigError, match=words):
        fit(model, _residual, phases=[Phase("lm", 3, options=options)], progress=False)
    assert float(model.a) == 1.0
    with pytest.raises(ConfigError, match="no learning rate"):
        fit(model, _residual, phases=[Phase("lm", 3, lr=0.1)], progress=False)


def test_lm_checkpoint_every_zero_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_every must be a positive integer, got 0"):
        fit(Decay(), _residual, phases=[Phase("lm", 3)], checkpoint=tmp_path / "a.ckpt", checkpoint_every=0)


def test_lm_checkpoint_of_another_architecture_with_the_same_parameter_count_is_refused(tmp_path):
    path = tmp_path / "lm.ckpt"
    x = torch.randn(8, 4, dtype=torch.float64)
    fit(torch.nn.Linear(4, 2).double(), lambda m, b: m(x), phases=[Phase("lm", 2)], checkpoint=path, progress=False)
    ten = torch.nn.Linear(1, 5).double()  # 5 weights + 5 biases: the count of Linear(4, 2), another model
    assert sum(p.numel() for p in ten.parameters()) == 10
    with pytest.raises(CheckpointError, match=r"parameter weight: checkpoint 'float64 \[2, 4\]', this run 'float64 \[5, 1\]'"):
        fit(ten, lambda m, b: m(x[:, :1]), phases=[Phase("lm", 4)], checkpoint=path, progress=False)


def test_lm_checkpoint_past_the_requested_iterations_is_refused(tmp_path):
    path = tmp_path / "lm.ckpt"
    fit(Decay(), _residual, phases=[Phase("lm", 5)], checkpoint=path, progress=False)
    model = Decay()
    with pytest.raises(CheckpointError, match="at step 5, past this run's steps=2"):
        fit(model, _residual, phases=[Phase("lm", 2)], checkpoint=path, progress=False)
    assert float(model.a) == 1.0


def test_fit_and_lm_checkpoints_are_refused_by_each_other_with_a_checkpoint_error(tmp_path):
    adam, lm = tmp_path / "adam.ckpt", tmp_path / "lm.ckpt"
    fit(Decay(), lambda m, b: _residual(m, b).square().sum(), steps=2, checkpoint=adam, progress=False)
    fit(Decay(), _residual, phases=[Phase("lm", 2)], checkpoint=lm, progress=False)
    with pytest.raises(CheckpointError, match=r"phase 1 optimizer: checkpoint 'adam', this run 'lm'"):
        fit(Decay(), lambda m, b: _residual(m, b).square().sum(), phases=[Phase("lm", 2)], checkpoint=adam,
            progress=False)
    with pytest.raises(CheckpointError, match=r"phase 1 optimizer: checkpoint 'lm', this run 'adam'"):
        fit(Decay(), _residual, steps=2, checkpoint=lm, progress=False)
    old = tmp_path / "old.ckpt"  # the layout of the former levenberg_marquardt loop
    save_checkpoint(old, {"theta": torch.zeros(2, dtype=torch.float64), "mu": 0.01, "iteration": 1, "losses": [1.0]})
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        fit(Decay(), _residual, phases=[Phase("lm", 2)], checkpoint=old, progress=False)
