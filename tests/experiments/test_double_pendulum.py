"""Smoke test of experiments.double_pendulum --quick: it runs, writes metrics.json and both figures, the
implicit symplectic network keeps the (true) energy error bounded while the RK4 ResNet's drifts, and the
symplectic maps are symplectic to round-off (C * n * eps * ||J||^2, C = 10, n = dim), the ResNet not."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dynnets.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EPS = 2.0 ** -52


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("double_pendulum")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "experiments.double_pendulum", "--quick", "--seed", "0", "--out",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_quick_run_shows_bounded_against_drifting_energy(quick):
    out, m = quick
    assert all((out / f).is_file() for f in m["figures"])
    models = m["models"]
    assert set(models) == {"symplectic", "resnet", "separable"}
    sym, resnet = models["symplectic"], models["resnet"]
    assert sym["energy_growth"] <= 1.5
    assert resnet["energy_growth"] is None or resnet["energy_growth"] > 10 * sym["energy_growth"]
    assert sym["energy_error"] < resnet["energy_error"]
    for kind in ("symplectic", "separable"):
        tol = 10 * 4 * EPS * max(1.0, models[kind]["jacobian_norm"]) ** 2
        assert models[kind]["symplecticity_defect"] <= tol, kind
        assert "Symplectic()" in models[kind]["guarantees"]
    assert resnet["symplecticity_defect"] >= 1e6 * 10 * 4 * EPS * max(1.0, resnet["jacobian_norm"]) ** 2
    assert max(v["params"] for v in models.values()) - min(v["params"] for v in models.values()) <= 5
    assert all(v["test_mse"] < 1e-3 for v in models.values())  # every model learned something


def test_bad_options_refused_before_any_work(tmp_path):
    module = importlib.import_module("experiments.double_pendulum")
    with pytest.raises(ConfigError, match="tpu"):
        module.main(["--quick", "--device", "tpu", "--out", str(tmp_path)])
    assert not (tmp_path / "metrics.json").exists()
