"""`python -m experiments.fisher --quick` end to end (32x32 test grid, 24x24 training tiles)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dynnets.errors import CheckpointError, ConfigError
from experiments import fisher

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_writes_metrics_and_training_reduces_the_error(tmp_path):
    metrics = fisher.main(["--quick", "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("rel_error_40", "rel_error_40_out_of_band", "rel_error_40_baseline", "rel_error_40_exact",
                "train_seconds", "parameters"):
        assert key in on_disk
    assert on_disk["parameters"] == 36  # MirroredConvFD: 2 free 3x3 kernels in A and 2 in B
    for key in ("rel_error_40_exact", "rel_error_40_fd_scheme", "rel_error_40_initial"):
        assert math.isfinite(metrics[key])
    # the least-squares start of B (at delta A) is a consistent field already: its one-step loss relative to the
    # increment is far below the identity map's 1.0 (quick: 8.5e-4), with every feature resolved; training
    # reduced it further (quick: to 1.1e-4), and the one-step error on held-out (validation) trajectories
    start = metrics["least_squares_start"]
    assert start["one_step_loss"] < 1e-2 and start["rank"] == start["unknowns"] == 18
    assert metrics["train_losses"][-1] < 0.5 * start["one_step_loss"]
    assert metrics["val_increment_rel_error"] < metrics["val_increment_rel_error_initial"]
    # and on held-out 40-step rollouts: better than the untrained field (the identity map)
    assert metrics["rel_error_40"] < 0.5 * metrics["rel_error_40_initial"]
    # the construction is the FD scheme to round-off: 120 Euler substeps of values <= 1
    assert metrics["exact_vs_fd_scheme_max_abs_40"] <= 4 * 120 * 36 * 2.0**-52
    assert metrics["rel_error_40_exact"] == pytest.approx(metrics["rel_error_40_fd_scheme"], rel=1e-9)
    # the slides' error splitting (issue 11): every term measured, the measured one-step error within their sum
    split = metrics["error_split"]
    assert split["bound_holds_every_state"] and split["measured_total"]["max"] <= split["bound_sum"]["max"]
    for term in ("spatial", "classical", "network_bound"):
        assert math.isfinite(split[term]["max"]) and split[term]["max"] > 0
    assert split["dominant_term_bound"] in ("spatial", "classical", "network")
    assert (tmp_path / "error_split.png").exists()
    assert (tmp_path / "errors.png").stat().st_size > 0 and (tmp_path / "data.npz").stat().st_size > 0
    # issue 16: the stability phase ran and its certificate is in metrics.json: the learned field's spectrum at
    # constant states stays (to the hinge penalty's small residual) where the PDE's is; the exact field's
    # exactly (round-off of the central-difference symbol, see tests/systems/test_fisher_stability.py)
    stab, exact = metrics["stability"], metrics["stability_exact"]
    assert metrics["stability_training"]["weight"] > 0 and metrics["validation_choice"]["rejected"] == {}
    assert stab["max_amplification_excess"] <= 1e-2 and stab["max_amplification"] < 1.01
    assert exact["max_growth_excess"] <= 1e-9 and exact["max_amplification_excess"] <= 1e-12
    # issue 14: another run into the same --out must not replace this one's results: the runner refuses it
    # (naming the setting) before any work; and with the metrics gone, the checkpoints of another run (same
    # parameter count, another PDE, seed and data) are not resumed either
    before = {f: (tmp_path / f).read_bytes() for f in ("metrics.json", "data.npz", "convfd.ckpt")}
    with pytest.raises(ConfigError, match="holds results of another run .*--pde='fisher' there, 'heat' here"):
        fisher.main(["--quick", "--pde", "heat", "--out", str(tmp_path)])
    (tmp_path / "metrics.json").unlink()
    with pytest.raises(CheckpointError, match="convfd.ckpt: written by a run with other settings: settings.pde: "
                                              "checkpoint 'fisher', this run 'heat'.*--no-resume"):
        fisher.main(["--quick", "--pde", "heat", "--seed", "7", "--out", str(tmp_path)])
    assert all((tmp_path / f).read_bytes() == data for f, data in before.items() if f != "metrics.json")


@pytest.mark.slow
def test_bad_options_give_one_error_line():
    for argv, message in ((["--pde", "wave"], "unknown --pde 'wave'"), (["--field", "x"], "unknown --field 'x'"),
                          (["--iterations", "-1"], "--iterations must be >= 0"),
                          (["--stability-weight", "nan"], "--stability-weight must be finite"),
                          (["--stability-weight", "-1"], "--stability-weight must be >= 0"),
                          (["--time-budget", "0"], "--time-budget must be positive"),
                          (["--ddp"], "--ddp needs at least 2 processes")):
        with pytest.raises(ConfigError, match=message):
            fisher.main(["--quick", *argv])
    proc = subprocess.run([sys.executable, "-m", "experiments.fisher", "--quick", "--dtype", "float32"],
                          cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""},
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr
