"""What every experiment shares: the command line, seeding, one-line user errors.

    parser = experiment_parser("heat", __doc__)       # --quick --seed --out --device --dtype
    args = parser.parse_args(argv)
    ...
    write_json(out / "metrics.json", metrics)         # dynnets.io: temp file + fsync + rename
    save_figure(fig, out / "solution.png")           # dynnets.io: atomic PNG
    if __name__ == "__main__": run_cli(main)          # DynnetsError/ValueError -> "error: ..." exit 2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import DynnetsError
from ..io import atomic_write, save_figure, write_json
from ..train.config import resolve_device, resolve_dtype
from ..train.rng import seed_everything as seed_globals

__all__ = ["atomic_write", "experiment_parser", "resolve_device", "resolve_dtype", "run_cli", "save_figure",
           "seed_everything", "write_json"]


def experiment_parser(name: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run (under a minute on 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic)")
    parser.add_argument("--out", type=Path, default=Path("results") / name, help="output directory")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    return parser


def seed_everything(seed: int) -> torch.Generator:
    """Seed every global generator (python, numpy, torch) and return a torch Generator for data."""
    seed_globals(seed)
    return torch.Generator().manual_seed(seed)


def run_cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run an experiment's main; a user error becomes one line on stderr and exit status 2."""
    try:
        main(argv)
    except (DynnetsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
