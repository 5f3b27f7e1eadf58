"""Checkpoint files: atomic writes, verified reads, refusal of truncated/corrupt/foreign files."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import OrderedDict, namedtuple
from pathlib import Path

import pytest
import torch

from dynnets.io import remove_stale_temp_files
from dynnets.train import CheckpointError, fit, load_checkpoint, save_checkpoint
from dynnets.train.checkpoint import MAGIC
from dynnets.train.state import check_model_state

ROOT = Path(__file__).resolve().parents[2]


def _payload():
    return {"step": 7, "weights": torch.arange(10, dtype=torch.float64), "nested": {"a": [1, 2.5, "x", None],
            "t": (torch.ones(2, dtype=torch.uint8), torch.float32)}, "od": OrderedDict(b=True)}


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "a.ckpt"
    save_checkpoint(path, _payload())
    assert path.read_bytes().startswith(MAGIC)
    assert _same(load_checkpoint(path), _payload())
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


@pytest.mark.parametrize("keep", [0, 5, len(MAGIC) + 10, -1, -100, "half"])
def test_truncated_file_is_refused(tmp_path, keep):
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, _payload())
    raw = path.read_bytes()
    cut = len(raw) // 2 if keep == "half" else keep if keep >= 0 else len(raw) + keep
    path.write_bytes(raw[:cut])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    if keep in (-1, -100, "half"):
        assert "truncated" in str(info.value) and "payload bytes" in str(info.value)


def test_flipped_byte_is_refused(tmp_path):
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, _payload())
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt: SHA-256"):
        load_checkpoint(path)


def test_foreign_newer_and_missing_files_are_refused(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(3)}, plain)
    with pytest.raises(CheckpointError, match="not a dynnets checkpoint"):
        load_checkpoint(plain)
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, _payload())
    raw = path.read_bytes()
    end = raw.index(b"\n", len(MAGIC))
    header = json.loads(raw[len(MAGIC):end])
    header["version"] = 99
    path.write_bytes(MAGIC + json.dumps(header).encode() + raw[end:])
    with pytest.raises(CheckpointError, match="format version 99 is not supported"):
        load_checkpoint(path)
    path.write_bytes(MAGIC + b"{not json\n" + raw[end + 1:])
    with pytest.raises(CheckpointError, match="header is corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")


def test_payload_that_weights_only_cannot_read_is_refused_at_save(tmp_path):
    Pair = namedtuple("Pair", "a b")
    for bad, where in [({"f": lambda x: x}, "payload.f"), ({"v": torch.__version__}, "payload.v"),
                       ({"p": Pair(1, 2)}, "payload.p"), ({"l": [1, {"s": {1, 2}}]}, "payload.l[1].s")]:
        with pytest.raises(CheckpointError, match="weights_only=True") as info:
            save_checkpoint(tmp_path / "a.ckpt", bad)
        assert where in str(info.value)
    assert not (tmp_path / "a.ckpt").exists()


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, {"version": 1})

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, {"version": 2})
    monkeypatch.undo()
    assert load_checkpoint(path) == {"version": 1}
    assert list(tmp_path.iterdir()) == [path]


_WRITER = """
import sys, torch
from dynnets.train import save_checkpoint
path = sys.argv[1]
i = 0
while True:
    save_checkpoint(path, {"i": i, "x": torch.full((400_000,), float(i), dtype=torch.float64)})
    if i == 0:
        print("first", flush=True)
    i += 1
"""


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.mark.slow
def test_sigkill_during_repeated_writes_leaves_a_valid_checkpoint(tmp_path):
    """A writer killed at an arbitrary moment (most of its time is spent writing 3 MB files) leaves either
    the previous or the new checkpoint, whole; its temp file is cleaned up by the next run."""
    path = tmp_path / "a.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=_env(),
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "first"
        time.sleep(0.4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(path)
    assert state["i"] >= 1, "the writer was killed before a second write: no overwrite was exercised"
    assert torch.equal(state["x"], torch.full((400_000,), float(state["i"]), dtype=torch.float64))
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert remove_stale_temp_files(path) == leftovers
    assert list(tmp_path.iterdir()) == [path]


# ---- checkpoints that do not fit the run are refused, and nothing is half-loaded -------------------------

def _mlp(width=8):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 2, generator=g, dtype=torch.float64)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8,
                                       shuffle=True, generator=torch.Generator().manual_seed(2))


def _mse(model, batch):
    return ((model(batch[0]) - batch[1]) ** 2).mean()


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_checkpoint_of_another_architecture_is_refused_and_nothing_loaded(tmp_path):
    path = tmp_path / "run.ckpt"
    fit(_mlp(8), _mse, _data(), steps=5, checkpoint=path, progress=False)
    model = _mlp(16)
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match=r"parameter 0.weight: checkpoint 'float64 \[8, 2\]', this run 'float64 \[16, 2\]'") as info:
        fit(model, _mse, _data(), steps=10, checkpoint=path, progress=False)
    assert str(path) in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("change, match", [
    (dict(optimizer="sgd"), "phase 1 optimizer: checkpoint 'adam', this run 'sgd'"),
    (dict(schedule=lambda o: torch.optim.lr_scheduler.StepLR(o, 2)), "phase 1 schedule: checkpoint None, this run"),
    (dict(dtype="float32"), r"parameter 0.weight: checkpoint 'float64 \[8, 2\]', this run 'float32 \[8, 2\]'"),
    (dict(lr=0.5), "phase 1 lr: checkpoint 0.001, this run 0.5"),
    (dict(loss=lambda m, b: ((m(b[0]) - b[1]).abs()).mean()), "loss: checkpoint '_mse', this run '<lambda>'"),
    (dict(seed=7), "seed: checkpoint None, this run 7"),
    (dict(steps=3), "past this run's steps=3"),
])
def test_checkpoint_of_another_run_is_refused(tmp_path, change, match):
    path = tmp_path / "run.ckpt"
    fit(_mlp(), _mse, _data(), steps=5, checkpoint=path, progress=False)
    options = dict(steps=10, checkpoint=path, progress=False)
    options.update(change)
    loss = options.pop("loss", _mse)
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match=match):
        fit(model, loss, _data(), **options)
    assert all(torch.equal(before[k].to(v.dtype), v) for k, v in model.state_dict().items())


def test_other_data_is_refused_by_its_settings(tmp_path):
    path = tmp_path / "run.ckpt"
    fit(_mlp(), _mse, _data(), steps=3, checkpoint=path, progress=False)
    other = torch.utils.data.DataLoader(_data().dataset, batch_size=20, shuffle=True,
                                        generator=torch.Generator().manual_seed(2))
    with pytest.raises(CheckpointError, match="data: checkpoint 'DataLoader of 5 batches', this run 'DataLoader of 2"):
        fit(_mlp(), _mse, other, steps=10, checkpoint=path, progress=False)


class _Opaque:
    """An iterable without a length: its settings name only its type."""

    def __init__(self, batches):
        self._batches = batches

    def __iter__(self):
        return iter(self._batches)


def test_data_shorter_than_recorded_position_is_refused_and_nothing_loaded(tmp_path):
    path = tmp_path / "run.ckpt"
    batches = list(_data())
    fit(_mlp(), _mse, _Opaque(batches), steps=3, checkpoint=path, progress=False)  # position 3 of 5 batches
    short = _Opaque(batches[:2])
    model = _mlp()
    before = _snapshot(model)
    rng_before = torch.get_rng_state()
    with pytest.raises(CheckpointError, match="yields only 2 batches"):
        fit(model, _mse, short, steps=10, checkpoint=path, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_corrupt_checkpoint_stops_fit_and_resume_false_starts_over(tmp_path):
    path = tmp_path / "run.ckpt"
    fit(_mlp(), _mse, _data(), steps=4, checkpoint=path, progress=False)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 10])
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match="truncated"):
        fit(model, _mse, _data(), steps=8, checkpoint=path, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    result = fit(model, _mse, _data(), steps=8, checkpoint=path, resume=False, progress=False)
    assert result.resumed_from is None and load_checkpoint(path)["step"] == 8


def test_model_state_is_checked_without_copying_the_model(tmp_path):
    class Holder(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.net = _mlp(width)
            self.handle = open(tmp_path / "log.txt", "w")  # noqa: SIM115 - a file handle cannot be deep-copied

        def forward(self, x):
            return self.net(x)

    path = tmp_path / "run.ckpt"
    fit(Holder(8), _mse, _data(), steps=3, checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match="parameter net.0.weight"):
        fit(Holder(16), _mse, _data(), steps=6, checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match=r"net.0.weight is torch.float64 \[8, 2\] in the checkpoint"):
        check_model_state(load_checkpoint(path)["model"], Holder(16), "x")
    assert fit(Holder(8), _mse, _data(), steps=6, checkpoint=path, progress=False).resumed_from == 3
