"""Issue 15, the training runtime: non-finite gradients never reach a checkpoint, a checkpoint path that is a
symlink is written through, the recorded settings refuse another run's checkpoint listing every differing
setting, and bad seeds or checkpoint paths are refused before any work."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

from dynnets.errors import CheckpointError, ConfigError, NonFiniteLossError, SettingsMismatchError
from dynnets.train import Phase, fit, load_checkpoint

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
        fit(model, explode, phases=[Phase("lbfgs", 2, options={"line_search_fn": None})], progress=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_a_checkpoint_path_that_is_a_symlink_is_written_through_it(tmp_path):
    path = tmp_path / "run.ckpt"
    link = tmp_path / "alias.ckpt"
    link.symlink_to(path)
    fit(_net(), _mse, steps=2, checkpoint=link, progress=False)
    assert link.is_symlink() and load_checkpoint(path)["step"] == 2  # written through the link, not over it
    assert fit(_net(), _mse, steps=3, checkpoint=link, progress=False).resumed_from == 2


def test_seed_out_of_range_is_a_typed_error():
    with pytest.raises(ConfigError, match=r"seed must be an integer >= 0 \(at most 18446744073709551615\), "
                                          r"got 1180591620717411303424"):
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

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(ConfigError, match="cannot be written: .*Permission denied"):
        fit(_net(), _mse, steps=2, checkpoint=tmp_path / "run.ckpt", progress=False)
    monkeypatch.undo()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.geteuid() != 0:  # as root the directory is writable, and writing is accepted
            with pytest.raises(ConfigError, match="cannot be written: .*Permission denied"):
                fit(_net(), _mse, steps=2, checkpoint=ro / "run.ckpt", progress=False)
    finally:
        ro.chmod(0o755)


def _wide(width=4):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)).double()


def test_other_settings_are_refused_listing_every_differing_key(tmp_path):
    path = tmp_path / "run.ckpt"
    fit(_wide(), _mse, steps=2, lr=1e-3, seed=1, checkpoint=path, progress=False)
    model = _wide(5)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(SettingsMismatchError) as info:
        fit(model, _mse, steps=4, lr=1e-2, seed=1, checkpoint=path, progress=False)
    assert sorted(info.value.keys) == ["parameter 0.bias", "parameter 0.weight", "parameter 2.weight", "phase 1 lr"]
    assert isinstance(info.value, CheckpointError) and "\n" not in str(info.value)
    assert "phase 1 lr: checkpoint 0.001, this run 0.01" in str(info.value)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))  # nothing loaded
    with pytest.raises(SettingsMismatchError) as info:
        fit(_wide(), _mse, steps=4, lr=1e-3, seed=2, checkpoint=path, progress=False)
    assert info.value.keys == ["seed"]
    # negative control: the same settings resume; resume=False starts over
    assert fit(_wide(), _mse, steps=4, lr=1e-3, seed=1, checkpoint=path, progress=False).resumed_from == 2
    assert fit(_wide(5), _mse, steps=4, checkpoint=path, resume=False, progress=False).resumed_from is None


def test_the_callers_own_settings_are_recorded_and_compared(tmp_path):
    """fit(settings=...) adds the caller's values (e.g. an experiment's options that make its data and loss,
    which fit does not compare) to the checkpoint's settings; they read back as JSON (a tuple equals its list)."""
    path = tmp_path / "run.ckpt"
    fit(_wide(), _mse, steps=2, checkpoint=path, settings={"pde": "fisher", "grid": (32, 32)}, progress=False)
    assert load_checkpoint(path)["settings"]["settings.grid"] == [32, 32]
    with pytest.raises(SettingsMismatchError) as info:
        fit(_wide(), _mse, steps=4, checkpoint=path, settings={"pde": "heat", "grid": [32, 32]}, progress=False)
    assert info.value.keys == ["settings.pde"]
    with pytest.raises(ConfigError, match="settings=.*JSON-able"):
        fit(_wide(), _mse, steps=4, checkpoint=path, settings={"f": _mse}, progress=False)
    assert fit(_wide(), _mse, steps=4, checkpoint=path, settings={"pde": "fisher", "grid": [32, 32]},
               progress=False).resumed_from == 2


def test_an_update_that_overflows_never_reaches_a_checkpoint(tmp_path):
    """SGD's update of finite float32 gradients overflows (lr 1e38 x gradient 40): the parameters are checked
    before the checkpoint write, so none is written. Control: the same run with lr 1e-3 writes it."""
    path = tmp_path / "run.ckpt"
    x = torch.full((4, 2), 10.0)

    def loss(m, b):
        return m(x).sum()

    torch.manual_seed(0)
    with pytest.raises(NonFiniteLossError, match="parameters are not finite after step 1"):
        fit(torch.nn.Linear(2, 1), loss, steps=3, optimizer="sgd", lr=1e38, checkpoint=path, checkpoint_every=1,
            progress=False)
    assert not path.exists()
    fit(torch.nn.Linear(2, 1), loss, steps=3, optimizer="sgd", lr=1e-3, checkpoint=path, checkpoint_every=1,
        progress=False)
    assert load_checkpoint(path)["step"] == 3
