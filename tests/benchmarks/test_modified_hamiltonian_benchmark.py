"""benchmarks.modified_hamiltonian: its error ignores the additive constant of an energy and is scale-free,
and a quick run writes both errors for every seed."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.modified_hamiltonian import energy_error, main, pendulum_energy, states


def test_energy_error_ignores_constants_and_scales():
    x = states(64, torch.Generator().manual_seed(0))
    h = pendulum_energy(x)
    assert energy_error(h + 3.0, h) <= 1e-15
    assert abs(energy_error(h + 0.1 * x[:, 0], h) - energy_error(10 * (h + 0.1 * x[:, 0]), 10 * h)) <= 1e-12
    assert energy_error(h + 0.1 * x[:, 0], h) > 1e-3


@pytest.mark.slow
def test_quick_run_writes_every_seed(tmp_path):
    main(["--quick", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "modified_hamiltonian_quick.json").read_text())
    assert [r["seed"] for r in result["per_seed"]] == [0, 1]
    assert all(0 < r["learned_H"] < 1 and 0 < r["modified_H"] < 1 for r in result["per_seed"])
