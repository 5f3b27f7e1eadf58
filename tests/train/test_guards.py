"""Issue 15, the training runtime: non-finite gradients never reach a checkpoint, the run lock holds through
symlinks and cleans up after dead owners, the run fingerprint refuses another run's checkpoint setting by
setting, and bad seeds or checkpoint paths are refused before any work."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

import dynnets as dn
from dynnets.errors import CheckpointError, ConfigError, NonFiniteLossError
from dynnets.train import fit, load_checkpoint
from dynnets.train.checkpoint import RunLock

X = torch.linspace(-1, 1, 16, dtype=torch.float64).reshape(8, 2)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()


def _mse(m, b):
    return m(X).square().mean()


def test_finite_loss_with_a_nan_gradient_writes_neither_nan_parameters_nor_their_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    calls = []

    def poisoned(m, b):
        calls.append(1)
        w = next(m.parameters())
        # sqrt(0) = 0: the value stays finite, its gradient 0 * inf is NaN
        spike = torch.sqrt(w.sum() * 0.0) if len(calls) >= 4 else 0.0
        return _mse(m, b) + spike

    model = _net()
    with pytest.raises(NonFiniteLossError, match="gradient is not finite .* at step 4") as info:
        fit(model, poisoned, steps=10, checkpoint=path, checkpoint_every=1, progress=False)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    saved = load_checkpoint(path)
    assert saved["step"] == 3  # the last good checkpoint survives
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.equal(p, saved["model"][k]) for k, p in model.state_dict().items())


def test_lbfgs_update_that_makes_parameters_non_finite_is_undone(tmp_path):
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]

    def explode(m, b):  # finite at the start, NaN everywhere the line search goes
        w = next(m.parameters())
        moved = bool((w != before[0]).any())
        return _mse(m, b) - 1e3 * w.sum() + (w.sum() * torch.nan if moved else 0.0)

    with pytest.raises(NonFiniteLossError, match="made the parameters non-finite .* at step 1"):
        fit(model, explode, steps=2, optimizer="lbfgs", lbfgs_options={"line_search_fn": None}, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_the_lock_holds_through_a_symlink_to_the_same_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    link = tmp_path / "alias.ckpt"
    link.symlink_to(path)
    held = RunLock(path)
    held.acquire()
    try:
        with pytest.raises(CheckpointError, match="in use by another running process"):
            fit(_net(), _mse, steps=2, checkpoint=link, progress=False)
    finally:
        held.release()
    fit(_net(), _mse, steps=2, checkpoint=link, progress=False)
    assert link.is_symlink() and load_checkpoint(path)["step"] == 2  # written through the link, not over it


def test_a_stale_lock_of_a_dead_owner_is_taken_over_and_cleaned(tmp_path):
    path = tmp_path / "run.ckpt"
    stale = tmp_path / "run.ckpt.lock"
    stale.write_text("999999999")  # a pid that does not run, holding no flock
    assert fit(_net(), _mse, steps=2, checkpoint=path, progress=False).steps_done == 2
    assert not stale.exists()


def test_seed_out_of_range_is_a_typed_error():
    with pytest.raises(ConfigError, match=r"seed=1180591620717411303424 must be .* < 2\*\*64"):
        fit(_net(), _mse, steps=1, seed=2**70, progress=False)
    fit(_net(), _mse, steps=1, seed=2**64 - 1, progress=False)


def test_checkpoint_whose_parent_is_a_file_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match="is a file, not a directory") as info:
        fit(model, _mse, steps=2, checkpoint=blocker / "sub" / "run.ckpt", progress=False)
    assert "\n" not in str(info.value)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_checkpoint_in_a_directory_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    """The check writes a probe file (os.access is not reliable as root); a refused write is simulated."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ConfigError, match="is not writable"):
        fit(_net(), _mse, steps=2, checkpoint=tmp_path / "run.ckpt", progress=False)
    monkeypatch.undo()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.geteuid() != 0:  # as root the directory is writable, and writing is accepted
            with pytest.raises(ConfigError, match="is not writable"):
                fit(_net(), _mse, steps=2, checkpoint=ro / "run.ckpt", progress=False)
    finally:
        ro.chmod(0o755)


def _flow(activation="tanh", h=0.1):
    torch.manual_seed(0)
    return dn.Flow([dn.Step(dn.fields.Dense(2, 4, activation), dn.methods.Euler(), h)]).double()


def _flow_loss(m, b):
    return m(X).square().mean()


@pytest.mark.parametrize("changed, setting", [
    (dict(activation="sigmoid"), "model"), (dict(h=0.2), "model"),
])
def test_same_shapes_other_settings_are_refused(tmp_path, changed, setting):
    """Another activation or step size gives the same parameter shapes; the fingerprint still tells them apart."""
    path = tmp_path / "run.ckpt"
    fit(_flow(), _flow_loss, steps=2, checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match=f"its {setting} differs"):
        fit(_flow(**changed), _flow_loss, steps=4, checkpoint=path, progress=False)
    assert fit(_flow(), _flow_loss, steps=4, checkpoint=path, progress=False).resumed_from == 2
    assert fit(_flow(**changed), _flow_loss, steps=4, checkpoint=path, resume=False, progress=False).resumed_from \
        is None  # the explicit option starts over


def test_other_data_captured_by_the_loss_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    y1, y2 = torch.zeros(8, 1, dtype=torch.float64), torch.zeros(8, 1, dtype=torch.float64)
    y2[3] = 1e-9

    def make(y):
        return lambda m, b: (m(X) - y).square().mean()

    fit(_net(), make(y1), steps=2, checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match="its loss differs"):
        fit(_net(), make(y2), steps=4, checkpoint=path, progress=False)
    assert fit(_net(), make(y1.clone()), steps=4, checkpoint=path, progress=False).resumed_from == 2
