"""The global random generators' states (torch, CUDA, numpy's legacy one, python) as tensors and plain
numbers, the vocabulary ``torch.load(weights_only=True)`` reads (no numpy arrays); numpy ``default_rng()``
Generators (caller-owned objects) are not captured."""

from __future__ import annotations

import random
import warnings

import numpy as np
import torch

#: the largest seed: torch.manual_seed takes seeds up to 2**64 - 1 (numpy's is the seed mod 2**32)
MAX_SEED = 2**64 - 1


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict:
    """The state of every global generator, as tensors and plain numbers."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    py_version, py_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "cuda": [s.clone() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else None,
    }


def restore_rng(state) -> None:
    """Apply a record made by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    cuda = state.get("cuda")
    if cuda is not None:
        if torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.warn("checkpoint holds CUDA RNG states for a different set of devices; they are not "
                          "restored, so CUDA random draws will differ from the original run", stacklevel=3)
