"""experiments/eigen.py end to end (--quick), its user errors, and the network trial form's built-in
structure (initial condition, unit norm, deflation)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dynnets.applications.eigen import SEED_MATRIX
from dynnets.applications.eigen.network import TrialMLP, _make_loss

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_experiment_writes_metrics(tmp_path):
    from experiments.eigen import main

    threads = torch.get_num_threads()
    try:
        metrics = main(["--quick", "--out", str(tmp_path)])
    finally:  # the experiment pins one intra-op thread; give the rest of the session its setting back
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "trajectories.png").stat().st_size > 0
    assert len(saved["eigenvalues_numpy"]) == 6
    for key in ("paper", "robust", "network"):
        for field in ("eigenvalues", "max_eps", "max_abs_Lambda", "pairs_found", "seconds"):
            assert field in saved[key], (key, field)
    assert saved["paper"]["pairs_found"] == 6 and saved["robust"]["pairs_found"] == 6
    assert saved["robust"]["max_eps"] <= 1e-12 and saved["robust"]["max_abs_Lambda"] <= 1e-12
    assert saved["paper"]["max_eps"] <= 1e-3
    # Cayley keeps ||x|| to round-off along the whole trajectory; Euler visibly does not
    traj = metrics["trajectories"]
    assert traj["max_norm_drift_cayley"] <= 10 * traj["steps"] * 6 * torch.finfo(torch.float64).eps
    assert traj["max_norm_drift_euler"] >= 1e6 * traj["max_norm_drift_cayley"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.eigen", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_non_symmetric_matrix_file_is_one_error_line(tmp_path):
    """As a user runs it: a separate process, one 'error:' line, non-zero exit, no traceback."""
    path = tmp_path / "bad.npy"
    np.save(path, np.triu(np.ones((4, 4))))
    proc = run_cli("--matrix", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "symmetric" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("matrix, words", [
    (np.ones((3, 4)), "square"),
    (np.array([[1.0, np.nan], [np.nan, 2.0]]), "finite"),
    (None, "no such file"),
])
def test_bad_matrix_inputs_exit_with_one_line(tmp_path, capsys, matrix, words):
    from dynnets.applications.runner import run_cli as runner
    from experiments.eigen import main

    path = tmp_path / "bad.npy"
    if matrix is not None:
        np.save(path, matrix)
    with pytest.raises(SystemExit) as info:
        runner(main, ["--matrix", str(path), "--out", str(tmp_path / "out")])
    assert info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], err


def test_trial_curve_keeps_initial_condition_norm_and_deflation():
    a = torch.tensor(SEED_MATRIX, dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(6, 2, dtype=torch.float64))[0]
    x0 = torch.randn(6, dtype=torch.float64)
    x0 = x0 - basis @ (basis.T @ x0)
    x0 = x0 / x0.norm()
    net = TrialMLP(6, 8, np.geomspace(0.5, 50, 4)).double()
    for p in net.parameters():  # a non-trivial network: the structure must hold for any parameters
        torch.nn.init.normal_(p)
    params = {k: v.detach().unsqueeze(0) for k, v in net.named_parameters()}
    s = torch.linspace(0, 1, 9, dtype=torch.float64)
    loss, endpoint, curve = _make_loss(net, a, basis, 5.0, s)
    end = endpoint(params, x0.unsqueeze(0))[0]
    eps = torch.finfo(torch.float64).eps
    assert abs(float(end.norm()) - 1) <= 10 * eps
    assert float((basis.T @ end).abs().max()) <= 10 * eps
    assert torch.isfinite(loss(params, x0.unsqueeze(0), 0.0)).all()
    path = curve(params, x0.unsqueeze(0), s)[0]
    assert float((path[0] - x0).abs().max()) <= 10 * eps  # x(0) = x0 whatever the parameters
    assert float((path.norm(dim=1) - 1).abs().max()) <= 10 * eps
    assert float((path @ basis).abs().max()) <= 10 * eps
