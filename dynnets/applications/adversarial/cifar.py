"""CIFAR-10 in its standard binary format (no download: point at a directory you already have): files
``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin`` of records of 1 label byte and 3072 pixel
bytes (red, green, blue planes of 32 x 32, row-major)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError

__all__ = ["RECORD", "TEST_FILE", "TRAIN_FILES", "load_cifar10", "read_batch"]

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One binary batch file -> (images (N, 3, 32, 32) in [0, 1], labels (N,) int64)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"CIFAR-10 file {path} does not exist (expected the standard binary batches)")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD != 0:
        raise ConfigError(f"CIFAR-10 file {path} has {raw.size} bytes, not a positive multiple of the "
                          f"{RECORD}-byte record (1 label byte + 3072 pixel bytes)")
    rec = raw.reshape(-1, RECORD)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ConfigError(f"CIFAR-10 file {path} has label {int(labels.max())}; labels must be 0..9")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return torch.from_numpy(images), torch.from_numpy(labels)


def load_cifar10(directory, *, max_train: int | None = None, max_test: int | None = None):
    """(x_train, y_train, x_test, y_test) from ``directory``; optionally only the first records."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"--data {d} is not a directory")
    x_train, y_train = (torch.cat(parts) for parts in zip(*(read_batch(d / name) for name in TRAIN_FILES)))
    x_test, y_test = read_batch(d / TEST_FILE)
    return x_train[:max_train], y_train[:max_train], x_test[:max_test], y_test[:max_test]
