"""benchmarks.sympnets' set-up (not its timings), on both tasks: the reimplemented G-SympNet is strupnet's with
the same weights, the models of each parameter class have equal counts within 10%, the symplectic ones are
symplectic to round-off in float64 (the MLP is the negative control), the double pendulum's data are what the
docstring says, and the CLI runs the double-pendulum task at a tiny size."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import dynnets as dn
from dynnets.errors import ConfigError

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


@pytest.mark.parametrize("task", ["pendulum", "double"])
def test_each_parameter_class_has_equal_counts_within_ten_percent(task):
    groups: dict = {}
    for group, build in sympnets.TASKS[task].models().values():
        groups.setdefault(group, []).append(sum(p.numel() for p in build().parameters()))
    assert len(groups) == 2
    for group, counts in groups.items():
        assert max(counts) <= 1.1 * int(group) and min(counts) >= 0.9 * int(group), (group, counts)


@pytest.mark.parametrize("task", ["pendulum", "double"])
def test_symplectic_models_are_symplectic_and_the_mlp_is_not(task):
    torch.manual_seed(0)
    task = sympnets.TASKS[task]
    d = task.system.dim
    x = sympnets.trajectories(task.system, torch.linspace(0.5, -0.3, d), task.dt, 20)[::4]
    tol = 10 * d * dn.testing.EPS64 * 100  # n = d, up to 100 composed maps
    for name, (_, build) in task.models().items():
        if name in ("residual MLP", "HNN"):
            continue  # HNN: symplectic only up to RK4's error; the MLP: not at all
        model = build().double()
        assert dn.testing.symplecticity_defect(model, x) <= tol, name
    mlp = sympnets.ResidualMLP(d // 2, 15).double()
    assert dn.testing.symplecticity_defect(mlp, x) >= 1e6 * tol


@pytest.mark.slow
def test_double_pendulum_data_are_held_out_pairs_of_the_exact_flow():
    task = sympnets.TASKS["double"]
    (x, y), (xt, yt), truth = task.data(task)
    assert x.shape == y.shape == (64 * 40, 4) and xt.shape == yt.shape == (16 * 40, 4)
    assert truth.shape == (sympnets.ROLLOUT + 1, 4) and truth.dtype == torch.float64
    assert torch.equal(truth[0], xt[0])  # the rollout starts at a held-out state
    assert torch.cdist(xt[::40], x[::40]).min() > 1e-3  # test trajectories start elsewhere
    H = task.system.hamiltonian
    # the reference's accuracy (DOP853 at rtol 1e-12), not round-off: energy kept to 1e-10 over 1000 steps
    assert (H(truth) - H(truth[:1])).abs().max() <= 1e-10
    assert (H(y) - H(x)).abs().max() <= 1e-10
    # negative control: one explicit Euler step of dt moves the energy by far more
    euler = x + task.dt * task.system(x)
    assert (H(euler) - H(x)).abs().max() >= 1e-4


@pytest.mark.slow
def test_the_cli_runs_the_double_pendulum_task_at_a_tiny_size(tmp_path):
    sympnets.main(["--quick", "--task", "double", "--iterations", "3", "--seeds", "1", "--repeats", "1",
                   "--out", str(tmp_path)])
    result = json.loads((tmp_path / "sympnets_quick.json").read_text())
    assert list(result["tasks"]) == ["double"]
    table = result["tasks"]["double"]["models"]
    assert set(table) == set(sympnets.TASKS["double"].models())
    assert all(e["iterations"]["iterations"]["median"] == 3 for e in table.values())
    assert (tmp_path / "sympnets_double_quick.png").stat().st_size > 0


def test_an_unknown_task_is_refused():
    with pytest.raises(ConfigError, match="triple"):
        sympnets.main(["--task", "triple"])


@pytest.mark.slow
def test_budget_and_group_run_one_class_at_equal_cpu_only(tmp_path):
    sympnets.main(["--quick", "--task", "double", "--group", "384", "--budget", "0.05", "--seeds", "1",
                   "--repeats", "1", "--out", str(tmp_path)])
    task = json.loads((tmp_path / "sympnets_quick.json").read_text())["tasks"]["double"]
    assert task["budget_cpu_seconds"] == 0.05
    table = task["models"]
    assert set(table) == {n for n, (g, _) in sympnets.TASKS["double"].models().items() if g == "384"}
    assert all(set(e) >= {"budget"} and "iterations" not in e for e in table.values())


@pytest.mark.parametrize("argv, match", [(["--budget", "0"], "--budget"), (["--group", "456", "--task", "double"],
                                                                             "parameter classes")])
def test_bad_budget_or_group_refused_before_any_work(argv, match):
    with pytest.raises(ConfigError, match=match):
        sympnets.main(argv)


def test_a_residual_model_trains_on_its_residual():
    torch.manual_seed(0)
    name = "dynnets midpoint, residual"
    model = sympnets.TASKS["pendulum"].models()[name][1]().double()
    x = torch.randn(8, 2, dtype=torch.float64)
    y = x + 0.01
    assert torch.equal(sympnets.training_loss(model, x, y), model.step.residual(x, y).square().mean())
    mlp = sympnets.ResidualMLP(1, 4).double()
    assert torch.equal(sympnets.training_loss(mlp, x, y), (mlp(x) - y).square().mean())
