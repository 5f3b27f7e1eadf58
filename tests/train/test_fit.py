"""fit: optimizers, schedules, clipping, dtype, data sources, time budget, progress, in-process exact resume."""

import math
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import dynnets as dn
import dynnets.train.resume as resume
from dynnets.errors import NonFiniteLossError, ShapeError
from dynnets.train import FitResult, fit, load_checkpoint

EPS = torch.finfo(torch.float64).eps


def _data(n=60, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return TensorDataset(x, torch.sin(x.sum(1, keepdim=True)))


def _loader(batch=8, seed=2):
    return DataLoader(_data(), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed))


def _mlp(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(3, 12), torch.nn.Tanh()] + ([torch.nn.Dropout(dropout)] if dropout else [])
    return torch.nn.Sequential(*layers, torch.nn.Linear(12, 1)).double()


def _mse(model, batch):
    return ((model(batch[0]) - batch[1]) ** 2).mean()


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_adam_on_minibatches_reduces_the_loss():
    result = fit(_mlp(), _mse, _loader(), steps=150, lr=1e-2, seed=0, progress=False)
    assert isinstance(result, FitResult)
    assert len(result.losses) == result.steps_done == 150 and result.resumed_from is None
    assert not result.stopped_early and result.seconds > 0
    assert np.mean(result.losses[-10:]) < 0.3 * np.mean(result.losses[:10])


def test_lbfgs_full_batch_on_a_dynnets_flow():
    """data=None: loss_fn gets batch=None (a full-batch problem). L-BFGS with strong Wolfe line search fits
    a 4-step Euler flow of a Dense field to a rotation far better than its starting loss."""
    torch.manual_seed(0)
    net = dn.Flow.repeat(dn.Step(dn.fields.Dense(2, 8), dn.methods.Euler(), h=0.25), 4)
    x = torch.randn(64, 2, dtype=torch.float64)
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    seen = []

    def loss(model, batch):
        seen.append(batch)
        return ((model(x) - x @ (0.5 * rot).matrix_exp().T) ** 2).mean()

    result = fit(net, loss, steps=5, optimizer="lbfgs", dtype="float64", progress=False,
                 lbfgs_options={"max_iter": 20})
    assert set(seen) == {None}
    assert len(seen) > 5  # the closure was evaluated by the line search, several times per step
    assert result.losses[-1] < 1e-2 * result.losses[0]


def test_callable_data_gets_the_step_index_and_dtype_converts():
    model = torch.nn.Linear(3, 1)  # float32
    steps_seen = []

    def data(step):
        steps_seen.append(step)
        return torch.full((4, 3), float(step)), torch.zeros(4, 1)  # float32 batch

    def loss(m, batch):
        assert batch[0].dtype == torch.float64 and m.weight.dtype == torch.float64
        return ((m(batch[0]) - batch[1]) ** 2).mean()

    fit(model, loss, data, steps=4, optimizer="sgd", lr=1e-3, dtype=torch.float64, progress=False)
    assert steps_seen == [0, 1, 2, 3]


def test_list_of_batches_is_cycled():
    batches = [(torch.randn(4, 3, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)) for _ in range(3)]
    seen = []

    def loss(m, batch):
        seen.append(id(batch[0]))
        return _mse(m, batch)

    fit(_mlp(), loss, batches, steps=7, progress=False)
    ids = [id(b[0]) for b in batches]
    assert seen == ids + ids + ids[:1]


def test_clip_grad_norm_bounds_the_sgd_update():
    """SGD with lr=1: the update is -clip(g), so ||delta theta|| = ||g|| min(1, c / (||g|| + 1e-6)) (torch's
    clip coefficient) to round-off."""
    model = _mlp()
    batch = next(iter(_loader(batch=60)))
    model.zero_grad()
    _mse(model, batch).backward()
    gnorm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    for c in (0.1 * gnorm, 10 * gnorm):
        m = _mlp()
        before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
        fit(m, _mse, [batch], steps=1, optimizer="sgd", lr=1.0, clip_grad_norm=c, progress=False)
        step = (torch.cat([p.detach().flatten() for p in m.parameters()]) - before).norm().item()
        # round-off of theta - (theta - g): a few eps times ||theta|| + ||g||; C = 64
        expected = gnorm * min(1.0, c / (gnorm + 1e-6))  # torch's clip coefficient
        assert abs(step - expected) <= 64 * EPS * (before.norm().item() + gnorm), (step, expected)


def test_schedule_is_stepped_once_per_step():
    result = fit(_mlp(), _mse, _loader(), steps=9, optimizer="sgd", lr=0.1, progress=False,
                 schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5))
    assert result.lr_history == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 3, rel=1e-15)


def test_reduce_on_plateau_gets_the_loss():
    result = fit(_mlp(), lambda m, b: sum(p.sum() for p in m.parameters()) * 0 + 1.0, steps=6, optimizer="sgd",
                 lr=0.1, progress=False,
                 schedule=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5))
    assert result.lr_history[-1] < 0.1  # constant loss -> plateau -> reduced


def test_nonfinite_loss_raises_before_the_update():
    model = _mlp()

    def loss(m, batch):
        value = _mse(m, batch)
        return value * math.nan if len(calls) == 3 else value

    calls = []
    before = {}

    def on_step(step, value):
        calls.append(step)
        before.update(_params(model))

    with pytest.raises(NonFiniteLossError, match="loss is nan at step 4") as info:
        fit(model, loss, _loader(), steps=10, progress=False, on_step=on_step)
    assert "before that step" in str(info.value)
    assert _equal(before, _params(model))  # step 4 did not touch the parameters


def test_loss_fn_must_return_a_scalar_that_depends_on_the_parameters():
    with pytest.raises(ShapeError, match=r"shape \(8, 1\)"):
        fit(_mlp(), lambda m, b: m(b[0]), _loader(), steps=2, progress=False)
    with pytest.raises(dn.errors.ConfigError, match="does not depend on any trainable parameter"):
        fit(_mlp(), lambda m, b: b[1].sum(), _loader(), steps=2, progress=False)


def test_time_budget_stops_early_and_checkpoint_lets_the_run_continue(tmp_path):
    path = tmp_path / "run.ckpt"

    def slow_loss(m, batch):
        import time
        time.sleep(0.01)
        return _mse(m, batch)

    first = fit(_mlp(), slow_loss, _loader(), steps=1000, time_budget=0.05, checkpoint=path, checkpoint_every=500,
                progress=False)
    assert first.stopped_early and 1 <= first.steps_done < 1000
    assert load_checkpoint(path)["step"] == first.steps_done
    second = fit(_mlp(), slow_loss, _loader(), steps=first.steps_done + 5, checkpoint=path, progress=False)
    assert second.resumed_from == first.steps_done and second.steps_done == first.steps_done + 5
    assert second.losses[: first.steps_done] == first.losses


def test_progress_bar_shows_the_loss_and_can_be_disabled(capsys):
    fit(_mlp(), _mse, _loader(), steps=3, progress=True, desc="demo")
    err = capsys.readouterr().err
    assert "demo" in err and "loss=" in err and "3/3" in err
    fit(_mlp(), _mse, _loader(), steps=3, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# ---- exact resume (in process; tests/train/test_processes.py does it across a SIGKILL) ------------------

def _noisy_mse(model, batch):
    noise = torch.from_numpy(np.random.standard_normal(batch[0].shape)) * 1e-2
    return _mse(model, (batch[0] + noise, batch[1])) * (1.0 + 0.01 * random.random())


RUNS = {
    "adam+steplr+clip+dropout": dict(optimizer="adam", lr=1e-2, clip_grad_norm=0.5,
                                     schedule=lambda o: torch.optim.lr_scheduler.StepLR(o, 4, 0.7)),
    "lbfgs": dict(optimizer="lbfgs", lbfgs_options={"max_iter": 3, "history_size": 4}),
    "sgd-instance+cosine": dict(optimizer=None, schedule=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20)),
}


def _run(kind, steps, path, model=None, **extra):
    model = model or _mlp(dropout=0.0 if kind == "lbfgs" else 0.3)
    options = dict(RUNS[kind])
    if options["optimizer"] is None:
        options["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = _mse if kind == "lbfgs" else _noisy_mse
    result = fit(model, loss, _loader(batch=7), steps=steps, checkpoint=path, checkpoint_every=5, seed=3,
                 progress=False, **options, **extra)
    return model, result


@pytest.mark.parametrize("kind", list(RUNS))
def test_stop_and_resume_matches_an_uninterrupted_run_bitwise(tmp_path, kind):
    """17 steps straight vs 11 steps (checkpoint at 10 and 11) then resumed: 60 samples in batches of 7
    make 9 batches per epoch, so the resume lands mid-epoch and the run crosses epoch boundaries."""
    full, full_result = _run(kind, 17, tmp_path / "full.ckpt")
    _run(kind, 11, tmp_path / "split.ckpt")
    resumed, resumed_result = _run(kind, 17, tmp_path / "split.ckpt")
    assert resumed_result.resumed_from == 11
    assert _equal(_params(full), _params(resumed))
    assert resumed_result.losses == full_result.losses
    assert resumed_result.lr_history == full_result.lr_history and len(full_result.lr_history) == 17
    a, b = load_checkpoint(tmp_path / "full.ckpt"), load_checkpoint(tmp_path / "split.ckpt")
    assert torch.equal(a["losses"], b["losses"])
    assert a["phase"] == b["phase"] == 0 and a["phase_step"] == b["phase_step"] == 17
    assert str(a["stepper"]) == str(b["stepper"])  # the last phase keeps its optimizer state (extendable)


def test_negative_control_resume_without_rng_restore_differs(tmp_path, monkeypatch):
    """The bitwise test can fail: skipping the RNG restore (dropout masks, noise, shuffles) changes the result."""
    full, _ = _run("adam+steplr+clip+dropout", 17, tmp_path / "full.ckpt")
    _run("adam+steplr+clip+dropout", 11, tmp_path / "split.ckpt")
    monkeypatch.setattr(resume, "restore_rng", lambda state: None)
    resumed, _ = _run("adam+steplr+clip+dropout", 17, tmp_path / "split.ckpt")
    diff = max((full.state_dict()[k] - resumed.state_dict()[k]).abs().max().item() for k in full.state_dict())
    assert diff > 1e6 * EPS


def test_resume_at_the_end_does_nothing(tmp_path):
    path = tmp_path / "run.ckpt"
    model, first = _run("lbfgs", 6, path)
    stamp = path.stat().st_mtime_ns
    again = _mlp()
    _, second = _run("lbfgs", 6, path, model=again)
    assert second.resumed_from == 6 and second.steps_done == 6 and second.losses == first.losses
    assert _equal(_params(model), _params(again))
    assert path.stat().st_mtime_ns == stamp
