"""The main job: run every experiment and write results/REPORT.md.

    python -m experiments.run_all [--full] [--out DIR] [--only NAME ...] [--seed S | --seeds A-B]

Default: each experiment with --quick into results/ (the whole job in a few minutes on 2 CPU cores);
--full runs the published scale into results/full/. With --seeds every experiment runs those seeds and
reports per-seed rows with the median and the worst. Each experiment runs in its own subprocess (a
failure is reported, not fatal to the others; the job exits non-zero if any failed) and writes
DIR/NAME/metrics.json and figures; rerunning the same command skips every experiment and seed already
finished with identical settings (the shared runner), so an interrupted --full job resumes. The report
gathers each experiment's table next to the seed's numbers, its figures, and a table of every guarantee
measured (property, network, defect, tolerance).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from dynnets.applications.runner import CommandLineParser, run_cli
from dynnets.io import atomic_write

from . import report

EXPERIMENTS = ["quickstart", "mass", "hamiltonian", "double_pendulum", "heat", "eigen", "fisher", "fisher_heat", "robustness", "presnov"]


def command(name: str) -> list[str]:
    """The module and options of a report entry (an experiment, or a variant of one)."""
    module, options = report.VARIANTS.get(name, (name, []))
    return [sys.executable, "-m", f"experiments.{module}", *options]


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    return [name for name in EXPERIMENTS if (here / f"{report.VARIANTS.get(name, (name,))[0]}.py").exists()]


def main(argv=None) -> int:
    parser = CommandLineParser(prog="python -m experiments.run_all", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="published scale instead of --quick")
    parser.add_argument("--out", type=Path, default=None, help="default results/ (quick), results/full/ (--full)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default=None, help="e.g. 0-4: every experiment over these seeds")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path("results") / "full" if args.full else Path("results")
    seeds = ["--seeds", args.seeds] if args.seeds else ["--seed", str(args.seed)]
    names = available()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            print(f"error: unknown experiment(s) {unknown}; available: {names}", file=sys.stderr)
            return 2
        names = [n for n in names if n in args.only]
    runs = {}
    bar = tqdm(names, desc="experiments", unit="exp")
    for name in bar:
        bar.set_postfix_str(name)
        out = args.out / name
        cmd = [*command(name), "--out", str(out), *seeds]
        if not args.full:
            cmd.append("--quick")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        metrics_path = out / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() and proc.returncode == 0 else None
        runs[name] = {"returncode": proc.returncode, "seconds": seconds, "metrics": metrics, "out": out,
                      "stdout": proc.stdout, "stderr": proc.stderr[-2000:]}
        tqdm.write(f"{name:<12} {'ok' if proc.returncode == 0 else 'FAILED'} in {seconds:6.1f} s")
    text = report.render(runs, full=args.full, seeds=args.seeds)
    path = atomic_write(args.out / "REPORT.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {path}")
    failed = [n for n, r in runs.items() if r["returncode"] != 0]
    if failed:
        print(f"error: experiment(s) failed: {failed} (see {path})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(lambda argv: sys.exit(main(argv)))  # argparse errors: one line (run_cli); otherwise main's status
