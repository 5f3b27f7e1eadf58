"""fit's phases, restarts on stall, keep-best, time budgets, monitors, batched multi-start (Ensemble) and
the choice among candidates by a validation score."""

from __future__ import annotations

import math
import time

import pytest
import torch

from dynnets.errors import ConfigError, DivergenceError
from dynnets.train import Ensemble, Monitor, Phase, Stall, choose, fit, load_checkpoint

EPS = torch.finfo(torch.float64).eps


def _net(seed=0, width=6):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)).double()


_G = torch.Generator().manual_seed(5)
X = torch.randn(32, 2, generator=_G, dtype=torch.float64)
Y = torch.sin(X[:, :1]) * X[:, 1:]


def _mse(model, batch):
    return (model(X) - Y).square().mean()


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_two_phases_equal_the_two_optimizers_run_one_after_the_other():
    a, b = _net(), _net()
    fit(a, _mse, phases=[Phase("adam", 7, lr=1e-2), Phase("lbfgs", 2, options=dict(max_iter=5))], progress=False)
    fit(b, _mse, steps=7, lr=1e-2, progress=False)
    fit(b, _mse, phases=[Phase("lbfgs", 2, options=dict(max_iter=5))], progress=False)
    assert all(torch.equal(p, q) for p, q in zip(_params(a), _params(b), strict=True))
    # negative control: another second phase gives other parameters
    c = _net()
    fit(c, _mse, phases=[Phase("adam", 7, lr=1e-2), Phase("sgd", 2, lr=1e-2)], progress=False)
    assert not all(torch.equal(p, q) for p, q in zip(_params(a), _params(c), strict=True))


def test_a_phase_may_minimise_its_own_loss():
    calls = {"first": 0, "second": 0}

    def first(m, b):
        calls["first"] += 1
        return _mse(m, b)

    def second(m, b):
        calls["second"] += 1
        return (m(X) - Y).abs().mean()

    fit(_net(), first, phases=[Phase("adam", 3), Phase("adam", 4, loss=second)], progress=False)
    assert calls == {"first": 3, "second": 4}


def test_phased_run_resumes_bitwise_across_the_phase_boundary(tmp_path):
    phases = [Phase("adam", 6, lr=1e-2, schedule=lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.5)),
              Phase("lbfgs", 3, options=dict(max_iter=4))]
    full = _net()
    fit(full, _mse, phases=phases, checkpoint=tmp_path / "full.ckpt", progress=False)
    for stop in (4, 6, 7):  # inside phase 1, at the boundary, inside phase 2
        path = tmp_path / f"split{stop}.ckpt"
        split = _net()
        with pytest.raises(KeyboardInterrupt):
            def interrupt(step, loss, stop=stop):
                if step == stop:
                    raise KeyboardInterrupt
            fit(split, _mse, phases=phases, checkpoint=path, checkpoint_every=1, on_step=interrupt, progress=False)
        resumed = _net()
        result = fit(resumed, _mse, phases=phases, checkpoint=path, progress=False)
        assert result.resumed_from == stop - 1
        assert all(torch.equal(p, q) for p, q in zip(_params(full), _params(resumed), strict=True)), stop


def test_stall_restart_resets_the_optimizer_state_exactly_when_the_loss_stalls():
    """Losses 1.9, 1.8, 1.7, 1.0, 1.0 (stalled), 0.5, 0.4: with Stall(every=1) Adam's state is cleared after
    step 5 only, so its step counter ends at 2; without the rule it ends at 7."""
    values = [1.9, 1.8, 1.7, 1.0, 1.0, 0.5, 0.4]

    def run(stall):
        model, calls = _net(), []

        def loss(m, b):
            calls.append(1)
            return _mse(m, b) * 0 + values[len(calls) - 1]

        opts = []  # the phase's optimizer, seen through its schedule

        def schedule(opt):
            opts.append(opt)
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)

        fit(model, loss, phases=[Phase("adam", 7, schedule=schedule, stall=stall)], progress=False)
        return int(next(iter(opts[0].state.values()))["step"])

    assert run(Stall(every=1, rtol=1e-4)) == 2
    assert run(None) == 7


def test_stall_restart_of_lbfgs_matches_a_fresh_lbfgs_per_chunk():
    """L-BFGS in chunks with a restart whenever a chunk stalls (rtol=1 restarts after every chunk from the
    second on) equals calling a fresh L-BFGS for each chunk after the first two."""
    opts = dict(max_iter=3, history_size=5)
    a = _net()
    fit(a, _mse, phases=[Phase("lbfgs", 4, options=opts, stall=Stall(every=1, rtol=0.999999))], progress=False)
    b = _net()
    fit(b, _mse, phases=[Phase("lbfgs", 2, options=opts)], progress=False)
    fit(b, _mse, phases=[Phase("lbfgs", 1, options=opts)], progress=False)
    fit(b, _mse, phases=[Phase("lbfgs", 1, options=opts)], progress=False)
    assert all(torch.equal(p, q) for p, q in zip(_params(a), _params(b), strict=True))
    c = _net()
    fit(c, _mse, phases=[Phase("lbfgs", 4, options=opts)], progress=False)  # negative control: no restart
    assert not all(torch.equal(p, q) for p, q in zip(_params(a), _params(c), strict=True))


def test_keep_best_restores_the_parameters_of_the_lowest_loss():
    """SGD with a far too large learning rate: the loss blows up after the first step; keep_best returns
    the initial parameters (the lowest loss seen), without it the last ones are kept."""
    start = _params(_net())
    result = fit(_net(), _mse, steps=4, optimizer="sgd", lr=50.0, keep_best=True, progress=False)
    best = min(result.losses)
    assert result.losses[0] == best and result.end_loss == best
    model = _net()
    fit(model, _mse, steps=4, optimizer="sgd", lr=50.0, keep_best=True, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(_params(model), start, strict=True))
    control = _net()
    fit(control, _mse, steps=4, optimizer="sgd", lr=50.0, progress=False)
    assert not all(torch.equal(p, q) for p, q in zip(_params(control), start, strict=True))
    with pytest.raises(ConfigError, match="keep_best"):
        fit(_net(), _mse, [(X, Y)], steps=2, keep_best=True, progress=False)


def test_time_budget_excludes_the_monitor_and_stops_after_the_step_past_it():
    def slow_monitor(m):
        time.sleep(0.05)
        return float(_mse(m, None))

    t0 = time.perf_counter()
    result = fit(_net(), _mse, steps=10**6, time_budget=0.3, monitor=Monitor(slow_monitor, every_steps=50),
                 progress=False)
    wall = time.perf_counter() - t0
    # it stops at the first step past the budget: one step of this tiny net takes milliseconds, so 1 s of
    # slack only covers a loaded machine descheduling the process (10**6 steps would take minutes)
    assert result.stopped_early and 0.3 <= result.train_seconds < 0.3 + 1.0
    records = result.monitor
    # before the first step, every 50 steps, at the end
    assert len(records) == 2 + result.steps_done // 50 and len(records) >= 3
    assert wall >= 0.05 * len(records) + 0.3  # the monitor's own time is not in the budget
    cpu = fit(_net(), _mse, steps=10**6, time_budget=0.2, timer="cpu", progress=False)
    assert cpu.stopped_early and cpu.train_seconds >= 0.2
    with pytest.raises(ConfigError, match="timer='gpu'"):
        fit(_net(), _mse, steps=2, timer="gpu", progress=False)


def test_monitor_every_seconds_and_its_last_record_is_of_the_returned_parameters():
    model = _net()
    result = fit(model, _mse, steps=30, lr=1e-2, keep_best=True,
                 monitor=Monitor(lambda m: float(_mse(m, None)), every_seconds=1e3), progress=False)
    assert [r["step"] for r in result.monitor] == [0, 30]
    assert result.monitor[-1]["value"] == float(_mse(model, None)) == result.end_loss


def _member_loss(ens):
    def per_member(params, x, y):
        return (ens.call(params, x) - y).square().mean()
    return per_member


def test_multi_start_equals_independent_runs():
    members = [_net(seed) for seed in range(4)]
    singles = [_net(seed) for seed in range(4)]
    ens = Ensemble(members)

    def loss(m, batch):
        return m.map(_member_loss(m), X, Y).sum()

    fit(ens, loss, steps=25, lr=1e-2, progress=False)
    for i, single in enumerate(singles):
        fit(single, _mse, steps=25, lr=1e-2, progress=False)
        trained = ens.member(i)
        for p, q in zip(trained.parameters(), single.parameters(), strict=True):
            assert torch.allclose(p, q, rtol=0, atol=64 * EPS), i
    # negative control: the members did move, differently
    assert not torch.equal(ens.member(0).state_dict()["0.weight"], members[0].state_dict()["0.weight"])
    assert ens(X).shape == (4, 32, 1)
    with pytest.raises(ConfigError, match=r"member index must be an integer >= 0 \(at most 3\), got 4"):
        ens.member(4)
    with pytest.raises(ConfigError, match="same parameter names and shapes"):
        Ensemble([_net(0, width=6), _net(0, width=5)])


def test_choose_takes_the_best_validation_score_and_never_a_diverging_candidate():
    curves = {"a": [0.1, 0.2, 0.3], "b": [0.1, 0.05, 0.01], "c": [0.1, math.nan, 0.001], "d": [0.1, 5.0, 0.0]}
    choice = choose(list(curves), lambda k: curves[k], limit=1.0)
    assert choice.index == 1 and set(choice.rejected) == {2, 3}
    assert math.isnan(choice.scores[2]) and choice.scores[1] == 0.01
    # without the divergence rule the diverged "d" would win on its last value
    assert choose(["a", "d"], lambda k: curves[k]).index == 1
    with pytest.raises(DivergenceError, match="every candidate diverged") as info:
        choose(["c", "d"], lambda k: curves[k], limit=1.0)
    assert "\n" not in str(info.value)


def test_choose_on_rollouts_rejects_a_constructed_unstable_stepper():
    """Linear steppers x -> a x against the truth x -> 0.9 x: the constructed unstable one (a = 1.3, its rollout
    grows without bound) is rejected, whatever its score; the stable one is chosen."""
    x0 = torch.ones(4, dtype=torch.float64)
    truth = [x0 * 0.9**k for k in range(1, 41)]

    def rollout(a):
        u, errs = x0, []
        for t in truth:
            u = a * u
            errs.append(float((u - t).norm() / t.norm()))
        return errs

    choice = choose([1.3, 0.905], rollout, limit=1.0)
    assert choice.index == 1 and 0 in choice.rejected


def test_ensemble_checkpoint_resumes(tmp_path):
    def loss(m, batch):
        return m.map(_member_loss(m), X, Y).sum()

    full = Ensemble([_net(s) for s in range(3)])
    fit(full, loss, steps=6, lr=1e-2, checkpoint=tmp_path / "a.ckpt", progress=False)
    split = Ensemble([_net(s) for s in range(3)])
    fit(split, loss, steps=3, lr=1e-2, checkpoint=tmp_path / "b.ckpt", progress=False)
    fit(split, loss, steps=6, lr=1e-2, checkpoint=tmp_path / "b.ckpt", progress=False)
    assert load_checkpoint(tmp_path / "b.ckpt")["step"] == 6
    assert all(torch.equal(p, q) for p, q in zip(full.parameters(), split.parameters(), strict=True))


def _adam_run(options):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(16, 3, dtype=torch.float64)
    fit(model, lambda m, b: (m(b) - b).square().mean(), [x], phases=[Phase("adam", 50, lr=1e-2, options=options)],
        progress=False)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_adam_runs_fused_unless_the_user_chooses():
    """fit's Adam is torch's fused kernel by default: bitwise the run with fused=True, and the loop's run
    (fused=False) to round-off only."""
    default, fused, loop = _adam_run(None), _adam_run({"fused": True}), _adam_run({"fused": False})
    assert torch.equal(default, fused)
    assert not torch.equal(default, loop)  # the control: a different implementation is visible
    assert float((default - loop).abs().max()) <= 1e-12 * float(loop.abs().max())
    assert torch.equal(_adam_run({"foreach": False}), loop)
