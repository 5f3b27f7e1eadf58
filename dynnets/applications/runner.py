"""The one command line of every experiment and benchmark, and what a run shares (how to write one:
docs/architecture.md). Every option is validated (``--out`` proved writable) before any work; a non-finite
headline number is a ``DivergenceError``. Threads and the default dtype are restored afterwards; under
torchrun only rank 0 writes. Where seeds' results live in DIR: ``results_dir``. Benchmarks write
``DIR/NAME.json`` (``NAME_quick.json`` with ``--quick``; default DIR ``benchmarks/results``), always rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from ..checks import check_int
from ..errors import ConfigError, DivergenceError, DynnetsError
from ..io import jsonable, save_figure, write_json
from ..train.config import resolve_device, resolve_dtype
from ..train.distributed import is_main_process
from ..train.rng import MAX_SEED, seed_everything
from ..train.select import divergence
from . import results_dir

__all__ = ["CommandLineParser", "MAX_SEEDS", "Runner", "check_rollout", "parse_seeds", "run_cli",
           "save_figure"]

#: the most seeds one run takes (each is a full run: more is a typo, not a plan; add more in later runs)
MAX_SEEDS = 100


def parse_seeds(text: str) -> list[int]:
    """'3' -> [3], '0-4' -> [0, 1, 2, 3, 4], '1,5,9' -> [1, 5, 9]; seeds are distinct integers in [0, MAX_SEED],
    at most MAX_SEEDS of them (counted before any range is expanded)."""
    ranges: list[tuple[int, int]] = []
    try:
        for part in str(text).split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi) if hi else int(lo)
            if b < a:
                raise ValueError
            ranges.append((a, b))
    except ValueError:
        raise ConfigError(f"--seeds {text!r} is not a seed list (rule: A-B with A <= B, or A,B,C)") from None
    count = sum(b - a + 1 for a, b in ranges)
    if count > MAX_SEEDS:
        raise ConfigError(f"--seeds {text!r} is {count} seeds (rule: at most {MAX_SEEDS} seeds per run; a "
                          "later run into the same --out adds more)")
    seeds = [s for a, b in ranges for s in range(a, b + 1)]
    if any(not 0 <= s <= MAX_SEED for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: seeds must be distinct integers in [0, 2**64), got {seeds[:8]}")
    return seeds


def check_rollout(values, what: str, seed: int | None = None, grow: float | None = None) -> None:
    """DivergenceError (one line naming the seed and the step) where a rollout (per-step values or states,
    step 0 first) turns non-finite or exceeds ``grow`` times its first value (``train.divergence``)."""
    found = divergence(values, grow=grow)
    if found is not None:
        who = "" if seed is None else f"seed {seed}: "
        raise DivergenceError(f"{who}{what} diverged at step {found[0]} ({found[1]})")


def _lookup(metrics: dict, key: str):
    for part in key.split("."):
        metrics = metrics[part]
    return metrics


class CommandLineParser(argparse.ArgumentParser):
    """argparse whose errors are one ``ConfigError`` line naming the option, the value and the rule."""

    def error(self, message: str):
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        if message.startswith("unrecognized arguments"):
            message += f" (rule: only the options `{self.prog} --help` lists)"
        raise ConfigError(message)


class Runner:
    """Command line, validation, seeds, outputs and thread settings of one experiment or benchmark.
    ``headline``: dotted metric keys -> "min" or "max" (better), aggregated over seeds and checked finite;
    ``dtypes``/``devices``: what the run can honour."""

    def __init__(self, name: str, description: str | None = None, *, kind: str = "experiment",
                 headline: dict[str, str] | None = None, dtypes=("float32", "float64"),
                 default_dtype: str = "float64", devices=("cpu", "cuda"), threads: int = 1,
                 set_default_dtype: bool = False):
        if kind not in ("experiment", "benchmark"):
            raise ConfigError(f"kind must be 'experiment' or 'benchmark', got {kind!r}")
        self.name, self.kind, self.headline = name, kind, dict(headline or {})
        self.dtypes, self.devices = tuple(dtypes), tuple(devices)
        self.set_default_dtype = bool(set_default_dtype)
        module = "experiments" if kind == "experiment" else "benchmarks"
        default_out = Path("results") / name if kind == "experiment" else Path("benchmarks") / "results"
        p = CommandLineParser(prog=f"python -m {module}.{name}", description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--quick", action="store_true", help="small run (under a minute on 2 CPU cores)")
        seed = p.add_mutually_exclusive_group() if kind == "experiment" else p
        seed.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic)")
        if kind == "experiment":
            seed.add_argument("--seeds", default=None,
                              help=f"several seeds, e.g. 0-4 or 1,5,9 (at most {MAX_SEEDS}); added to the "
                                   "seeds already in --out: per-seed rows, median and worst over all of them")
            p.add_argument("--overwrite", action="store_true",
                           help="remove the results in --out that other settings produced, and rerun seeds "
                                "already finished (without it, nothing in --out is ever replaced)")
        p.add_argument("--out", type=Path, default=default_out, help="output directory")
        p.add_argument("--device", default="cpu", help=f"one of {', '.join(self.devices)}")
        p.add_argument("--dtype", default=default_dtype, help=f"one of {', '.join(self.dtypes)}")
        p.add_argument("--threads", type=int, default=threads, help="torch intra-op threads for the run")
        self.parser = p

    def parse(self, argv=None) -> argparse.Namespace:
        args = self.parser.parse_args(argv)
        if args.dtype not in self.dtypes:
            raise ConfigError(f"--dtype {args.dtype} is not supported by {self.name} (rule: one of "
                              f"{', '.join(self.dtypes)})")
        args.torch_dtype = resolve_dtype(args.dtype)
        args.torch_device = resolve_device(args.device)
        if args.torch_device.type not in self.devices:
            raise ConfigError(f"--device {args.device}: {self.name} runs on {', '.join(self.devices)} only")
        check_int("--threads", args.threads, minimum=1)
        check_int("--seed", args.seed, minimum=0, maximum=MAX_SEED)
        seeds = getattr(args, "seeds", None)
        args.seed_list = parse_seeds(seeds) if seeds is not None else [args.seed]
        if args.out.exists() and not args.out.is_dir():
            raise ConfigError(f"--out {args.out} is a file (rule: a directory for the results)")
        return args

    def settings(self, args) -> dict:
        """What defines the run's results: every option but where they go and how fast."""
        skip = ("out", "seed", "seeds", "overwrite", "threads", "torch_dtype", "torch_device", "seed_list")
        return jsonable({k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())
                         if k not in skip})

    def main(self, run_seed: Callable[[argparse.Namespace, int, Path], dict], argv=None,
             validate: Callable[[argparse.Namespace], None] | None = None) -> dict:
        """Parse and validate (``validate(args)``: the experiment's own rules), create ``--out``, then run
        every seed; returns what ``DIR/metrics.json`` holds (a lone seed's metrics, or the summary)."""
        args = self.parse(argv)
        if validate is not None:
            validate(args)
        try:  # create --out and prove it writable with a probe file (os.access is not enough)
            args.out.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=args.out).close()
        except OSError as err:
            raise ConfigError(f"--out {args.out} cannot be created or written ({err.strerror or err}; "
                              "rule: a writable directory)") from None
        if self.kind == "benchmark":
            with _run_settings(args, self.set_default_dtype):
                seed_everything(args.seed)
                result = run_seed(args, args.seed, args.out)
            path = write_json(args.out / f"{self.name}{'_quick' if args.quick else ''}.json", result)
            print(f"wrote {path}")
            return result
        settings = self.settings(args)
        plan = results_dir.plan(args.out, args.seed_list, settings, overwrite=args.overwrite,
                                required=self.headline)
        writer = is_main_process()  # under torchrun every rank runs the seeds; rank 0 writes
        for done in plan.apply() if writer else ():
            print(f"{self.name}: {done}")
        with _run_settings(args, self.set_default_dtype):
            for seed in args.seed_list:
                if seed in plan.todo:
                    plan.finished[seed] = self._one_seed(run_seed, args, seed, plan, settings, writer)
                else:
                    print(f"{self.name}: seed {seed} finished earlier with identical settings "
                          f"({plan.seed_dir(seed) / results_dir.METRICS}); not rerun")
                if plan.many and writer:  # after each seed: an interrupted run leaves an exact summary
                    write_json(args.out / results_dir.METRICS, self.summarise(plan.finished, settings))
        if not plan.many:
            return plan.finished[args.seed_list[0]]
        summary = self.summarise(plan.finished, settings)
        print(self.table(summary))
        return summary

    def _one_seed(self, run_seed, args, seed: int, plan, settings: dict, writer: bool) -> dict:
        out = plan.seed_dir(seed)
        out.mkdir(parents=True, exist_ok=True)
        before = results_dir.snapshot(out)
        seed_everything(seed)
        metrics = dict(run_seed(args, seed, out))
        for key in self.headline:
            value = _lookup(metrics, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise DivergenceError(f"seed {seed}: {self.name}'s {key} is {value} (rule: a finite number; "
                                      "a diverged or non-finite run is an error, not a table entry)")
        files = {*results_dir.seed_files(before, results_dir.snapshot(out)), *plan.files_of_earlier_run(seed)}
        metrics.update(seed=seed, settings=settings, files=sorted(files))
        if writer:
            print(f"wrote {write_json(out / results_dir.METRICS, metrics)}")
        return metrics

    def summarise(self, rows: dict, settings: dict) -> dict:
        """One row per seed (in seed order), and the median and the worst of each headline number."""
        per_seed = {s: {k: _lookup(rows[s], k) for k in self.headline} for s in sorted(rows)}
        median, worst, worst_seed = {}, {}, {}
        for key, better in self.headline.items():
            values = {s: per_seed[s][key] for s in per_seed}
            worst_seed[key] = (max if better == "min" else min)(values, key=values.get)
            worst[key] = values[worst_seed[key]]
            median[key] = statistics.median(values.values())
        return {"experiment": self.name, "settings": settings, "seeds": list(per_seed), "per_seed": per_seed,
                "median": median, "worst": worst, "worst_seed": worst_seed, "better": self.headline}

    @staticmethod
    def table(summary: dict) -> str:
        keys = list(summary["better"])
        rows = [*summary["per_seed"].items(), ("median", summary["median"]), ("worst", summary["worst"])]
        lines = [f"{label:>8} " + " ".join(f"{row[k]:>24.4g}" for k in keys) for label, row in rows]
        return "\n".join([f"{'seed':>8} " + " ".join(f"{k[-24:]:>24}" for k in keys), *lines])


@contextlib.contextmanager
def _run_settings(args, default_dtype: bool):
    """Threads (and, if asked, the default dtype = --dtype) for the run, restored after (no global effect)."""
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(args.threads)
    if default_dtype:
        torch.set_default_dtype(args.torch_dtype)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)


def run_cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run an experiment's main; a user error becomes one line on stderr and exit status 2."""
    try:
        main(argv)
    except (DynnetsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
