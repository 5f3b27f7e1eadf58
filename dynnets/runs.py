"""What every experiment shares: the command line, atomic result files, one-line user errors.

    parser = experiment_parser("heat", __doc__)       # --quick --seed --out --device --dtype
    args = parser.parse_args(argv)
    ...
    write_json(out / "metrics.json", metrics)         # temp file + fsync + rename
    save_figure(fig, out / "solution.png")           # Agg backend, atomic
    if __name__ == "__main__": run_cli(main)          # DynnetsError/ValueError -> "error: ..." exit 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, DynnetsError

__all__ = ["experiment_parser", "resolve_device", "resolve_dtype", "seed_everything", "write_json",
           "save_figure", "run_cli", "atomic_write"]


def experiment_parser(name: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run (under a minute on 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic)")
    parser.add_argument("--out", type=Path, default=Path("results") / name, help="output directory")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    return parser


def resolve_device(name: str) -> torch.device:
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; use cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA device is available")
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    choices = {"float32": torch.float32, "float64": torch.float64}
    if name not in choices:
        raise ConfigError(f"unknown dtype {name!r}; use float32 or float64")
    return choices[name]


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, fsync it, then rename it over ``path``:
    readers see the old file or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan
    return value


def write_json(path: Path, payload: dict) -> Path:
    def write(tmp: Path):
        tmp.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")

    return atomic_write(path, write)


def save_figure(fig, path: Path, dpi: int = 120) -> Path:
    import matplotlib.pyplot as plt

    path = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
    plt.close(fig)
    return path


def run_cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run an experiment's main; a user error becomes one line on stderr and exit status 2."""
    try:
        main(argv)
    except (DynnetsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
