"""Smoke test of ``python -m experiments.heat --quick`` (small budgets) and its error handling."""

import json
import subprocess
import sys

import pytest

from dynnets.errors import ConfigError
from experiments import heat


@pytest.mark.slow
def test_quick_run_writes_metrics_and_figures(tmp_path):
    out = tmp_path / "heat"
    heat.main(["--quick", "--paper-recipe", "--budget", "1.5", "--paper-budget", "1", "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("nn_max_abs_error", "nn_train_seconds", "fd_rel_error", "paper_recipe_max_abs_error"):
        assert key in metrics, key
    assert metrics["nn_max_abs_error"] < 0.1  # a trained network, not the untrained one (~0.7)
    fd = metrics["fd_rel_error"]
    assert set(fd["ftcs_r0.4"]) == {"0.1", "0.01"} and set(fd["ftcs_r0.4"]["0.01"]) == {"0.1", "0.3"}
    assert abs(fd["ftcs_r0.4"]["0.01"]["0.1"] / 1.1e-4 - 1) < 0.05
    assert fd["ftcs_seed_text_dt2e-4"]["0.01"]["0.1"] is None  # the seed's dt is refused at dx = 1/100
    assert "1/2" in metrics["fd_refused"]["ftcs_seed_text_dt2e-4"]["0.01"]
    for name in ("fig1_fd_dx10.png", "fig2_fd_dx100.png", "fig3_network.png", "fig4_error_vs_time.png"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.slow
def test_bad_input_gives_one_error_line_and_nonzero_exit(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.heat", "--quick", "--out", str(tmp_path),
                           "--budget", "nan"], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == ["error: --budget must be finite, got --budget=nan"]
    for argv, message in ((["--seeds", "4-1"], "--seeds '4-1' is not a seed list"),
                          (["--timer", "gpu"], "--timer must be one of wall, cpu"),
                          (["--paper-budget", "-1"], "--paper-budget must be positive")):
        with pytest.raises(ConfigError, match=message):
            heat.main(["--quick", "--out", str(tmp_path), *argv])
    assert not (tmp_path / "metrics.json").exists()  # refused before any work
