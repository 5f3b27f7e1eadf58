"""fit: optimizers, schedules, dtype, data sources, time budget, progress, in-process exact resume."""

import math
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import dynnets as dn
import dynnets.train.state as state
from dynnets.errors import NonFiniteLossError, ShapeError
from dynnets.train import FitResult, Phase, fit, load_checkpoint

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

    result = fit(net, loss, phases=[Phase("lbfgs", 5, options={"max_iter": 20})], dtype="float64", progress=False)
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


def test_schedule_is_stepped_once_per_step():
    made = []

    def schedule(opt):
        made.append(torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5))
        return made[-1]

    fit(_mlp(), _mse, _loader(), steps=9, optimizer="sgd", lr=0.1, progress=False, schedule=schedule)
    assert made[0].last_epoch == 9 and made[0].get_last_lr() == [0.1 * 0.5**3]


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


RUNS = {  # steps -> phases
    "adam+steplr+dropout": lambda n: [Phase("adam", n, lr=1e-2,
                                            schedule=lambda o: torch.optim.lr_scheduler.StepLR(o, 4, 0.7))],
    "lbfgs": lambda n: [Phase("lbfgs", n, options={"max_iter": 3, "history_size": 4})],
    "sgd-momentum+cosine": lambda n: [Phase("sgd", n, lr=0.05, options={"momentum": 0.9},
                                            schedule=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20))],
}


def _run(kind, steps, path, model=None, **extra):
    model = model or _mlp(dropout=0.0 if kind == "lbfgs" else 0.3)
    loss = _mse if kind == "lbfgs" else _noisy_mse
    result = fit(model, loss, _loader(batch=7), phases=RUNS[kind](steps), checkpoint=path, checkpoint_every=5,
                 seed=3, progress=False, **extra)
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
    a, b = load_checkpoint(tmp_path / "full.ckpt"), load_checkpoint(tmp_path / "split.ckpt")
    assert torch.equal(a["losses"], b["losses"])
    assert a["phase"] == b["phase"] == 0 and a["phase_step"] == b["phase_step"] == 17
    assert str(a["stepper"]) == str(b["stepper"])  # the last phase keeps its optimizer state (extendable)


def test_negative_control_resume_without_rng_restore_differs(tmp_path, monkeypatch):
    """The bitwise test can fail: skipping the RNG restore (dropout masks, noise, shuffles) changes the result."""
    full, _ = _run("adam+steplr+dropout", 17, tmp_path / "full.ckpt")
    _run("adam+steplr+dropout", 11, tmp_path / "split.ckpt")
    monkeypatch.setattr(state, "restore_rng", lambda rng: None)
    resumed, _ = _run("adam+steplr+dropout", 17, tmp_path / "split.ckpt")
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
