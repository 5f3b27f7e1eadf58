"""Writing files so that nothing is ever half-written: the one atomic writer of dynnets.

    atomic_write(path, lambda tmp: tmp.write_bytes(data))   # temp file, fsync, rename, fsync directory
    write_json(path, payload)                               # tensors, arrays, inf/nan made JSON-safe
    save_figure(fig, path)                                   # PNG, closes the figure

A reader sees the old file or the new one, never a mixture; new files get 0666 minus the umask.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

__all__ = ["atomic_write", "jsonable", "save_figure", "write_json"]

_TMP_TAG = ".tmp-"


def atomic_write(path, write: Callable[[Path], object]) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, fsync it, rename it over ``path`` and
    fsync the directory (so the rename survives a power cut)."""
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}{_TMP_TAG}")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        mask = os.umask(0)  # read without changing it: set, then restored
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # e.g. Windows cannot open a directory; the rename is still atomic there
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def remove_stale_temp_files(path) -> list[Path]:
    """Delete temporary files left by writers of ``path`` that were killed mid-write (only call this when
    no other process writes ``path``); returns what was removed."""
    path = Path(path)
    removed = []
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}{_TMP_TAG}*"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed.append(stale)
    return removed


def jsonable(value):
    """``value`` with tensors and arrays as lists, numpy scalars as numbers and inf/nan as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan
    return value


def write_json(path, payload: dict) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(jsonable(payload), indent=2) + "\n"))


def save_figure(fig, path, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
    plt.close(fig)
    return path
