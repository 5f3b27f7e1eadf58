"""Smoke tests of experiments.mass and experiments.hamiltonian under --quick: they run, write
metrics.json with the agreed keys and their figures, and the structured networks keep their invariant
to round-off (C * n * eps, float64) while the unstructured baselines do not (>= 1e6 times more)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dynnets as dn
from dynnets.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EPS = 2.0 ** -52
KEYS = {"structured_test_mse", "baseline_test_mse", "structured_drift", "baseline_drift"}


def _run(name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", f"experiments.{name}", *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _quick(tmp_path_factory, name):
    out = tmp_path_factory.mktemp(name)
    proc = _run(name, "--quick", "--seed", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def mass_metrics(tmp_path_factory):
    return _quick(tmp_path_factory, "mass")


@pytest.fixture(scope="module")
def hamiltonian_metrics(tmp_path_factory):
    return _quick(tmp_path_factory, "hamiltonian")


@pytest.mark.slow
def test_mass_quick(mass_metrics):
    out, m = mass_metrics
    assert KEYS <= m.keys() and m["dtype"] == "float64"
    assert all((out / f).is_file() for f in m["figures"])
    n = m["composed_steps"]  # rollout steps x layers, each one explicit Euler step
    for name, s in m["systems"].items():
        # c^T x sums 3 terms per step; one rounding per term and step: C = 1 relative to the state size
        tol = 1 * n * EPS * max(1.0, s["structured_state_scale"])
        assert s["structured_drift"] <= tol, name
        assert s["baseline_drift"] >= 1e6 * tol, name
        assert s["structured_guarantees"] == [repr(dn.structure.LinearInvariant.ones(3))]
        assert s["params"]["structured"] == s["params"]["baseline"]
        assert s["structured_test_mse"] < 1e-3 and s["baseline_test_mse"] < 1e-3  # both actually learned


@pytest.mark.slow
def test_hamiltonian_quick(hamiltonian_metrics):
    out, m = hamiltonian_metrics
    assert KEYS <= m.keys() and m["dtype"] == "float64" and m["rollout_steps"] == 10_000
    assert all((out / f).is_file() for f in m["figures"])
    # Jacobian-based round-off grows like ||J||^2 (see tests/core/test_structure_properties.py), C = 10
    tol = 10 * m["layers"] * EPS * max(1.0, m["structured_jacobian_norm"]) ** 2
    assert m["structured_symplecticity_defect"] <= tol
    assert m["baseline_symplecticity_defect"] >= 1e6 * tol
    # the symplectic network's energy error is bounded: no growth from the first to the last tenth
    assert m["structured_energy_growth"] <= 1.5
    assert m["structured_drift"] < m["baseline_drift"]
    assert m["structured_test_mse"] < 1e-3 and m["baseline_test_mse"] < 1e-3


@pytest.mark.parametrize("name", ["mass", "hamiltonian"])
def test_bad_options_are_refused_before_any_work(name, tmp_path):
    module = importlib.import_module(f"experiments.{name}")
    with pytest.raises(ConfigError, match="tpu"):
        module.main(["--quick", "--device", "tpu", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="unrecognized arguments: --no-such-option"):  # one line, no usage
        module.main(["--no-such-option"])
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_command_line_error_is_one_line_without_traceback(tmp_path):
    proc = _run("mass", "--quick", "--device", "tpu", "--out", str(tmp_path))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "tpu" in lines[0], proc.stderr
