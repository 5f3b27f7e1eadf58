"""Heat equation: error versus training time of the trial-function solver (dynnets recipe against
the seed's recipe), and the time finite differences need for the same problem.

    python -m benchmarks.heat [--quick] [--runs K] [--budget SEC] [--paper-budget SEC] [--timer cpu|wall]

Prints a table and writes benchmarks/results/heat.json. Time is this process's CPU time by default
(one thread; equal to wall time on an idle machine, robust to a shared one); wall time is recorded.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from dynnets.applications.trial.heat import DYNNETS_RECIPE, PAPER_RECIPE, heat_sine_exact, train_heat_trial
from dynnets.methods import CrankNicolson, Euler
from dynnets.systems import HeatField1D, UniformGrid1D

CHECKPOINTS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def error_at(history, seconds):
    """The error of the parameters held after ``seconds`` of training: the last monitored value at
    or before that time (not the best one seen, which would need an oracle); None before the first."""
    seen = [h["monitor"] for h in history if "monitor" in h and h["seconds"] <= seconds]
    return seen[-1] if seen else None


def fd_timing(timer):
    rows = []
    clock = time.process_time if timer == "cpu" else time.perf_counter
    for name, method, ratio in (("FTCS dt=0.4dx^2", Euler(), 0.4), ("FTCS dt=dx^2/6", Euler(), 1 / 6),
                                ("CN dt=0.4dx^2", CrankNicolson(), 0.4)):
        for n in (10, 100):
            grid = UniformGrid1D(0.0, 1.0, n)
            field = HeatField1D(grid)
            start = clock()
            u0 = grid.sample(lambda x: torch.sin(math.pi * x)).unsqueeze(0)
            states = dn.solve(field, u0, [0.0, 0.1, 0.3], method, h=ratio * grid.dx**2).x
            sol = {t: field.with_boundary(states[j + 1])[0] for j, t in enumerate((0.1, 0.3))}
            seconds = clock() - start
            x = grid.nodes()
            err = max(float((sol[t] - heat_sine_exact(x, t)).abs().max()) for t in (0.1, 0.3))
            rows.append({"scheme": name, "dx": grid.dx, "max_abs_error": err, "seconds": seconds})
    return rows


RUNNER = Runner("heat", __doc__, kind="benchmark", dtypes=("float64",), devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--runs", type=int, default=None, help="network seeds 0..runs-1 (default 3, quick 1)")
RUNNER.parser.add_argument("--budget", type=float, default=None)
RUNNER.parser.add_argument("--paper-budget", type=float, default=None)
RUNNER.parser.add_argument("--timer", default="cpu", choices=("cpu", "wall"))


def main(argv=None):
    return RUNNER.main(run_benchmark, argv)


def run_benchmark(args, seed, out) -> dict:
    seeds = args.runs or (1 if args.quick else 3)
    budget = args.budget or (3.0 if args.quick else 20.0)
    paper_budget = args.paper_budget or (3.0 if args.quick else 100.0)
    fd = fd_timing(args.timer)
    runs = [train_heat_trial(DYNNETS_RECIPE, s, time_budget=budget, timer=args.timer, log_every=0.25,
                             progress=True) for s in range(seeds)]
    paper = train_heat_trial(PAPER_RECIPE, 0, time_budget=paper_budget, timer=args.timer,
                             log_every=max(0.25, paper_budget / 200), progress=True)
    checkpoints = [c for c in CHECKPOINTS if c <= max(budget, paper_budget)]
    table = {"dynnets (median)": {}, "paper recipe": {}}
    for c in checkpoints:
        errs = [error_at(r["history"], c) for r in runs]
        table["dynnets (median)"][c] = statistics.median(errs) if None not in errs and c <= budget else None
        table["paper recipe"][c] = error_at(paper["history"], c) if c <= paper_budget else None
    result = {
        "timer": args.timer, "threads": 1, "budget_seconds": budget, "paper_budget_seconds": paper_budget,
        "fd": fd,
        "nn_max_abs_error_by_seconds": {k: {f"{c:g}": v for c, v in d.items()} for k, d in table.items()},
        "nn_max_abs_error": statistics.median(r["max_abs_error"] for r in runs),
        "nn_runs": [{"seed": r["seed"], "max_abs_error": r["max_abs_error"],
                     "train_seconds": r["train_seconds"],
                     "wall_seconds": r["wall_seconds"]} for r in runs],
        "paper_recipe_max_abs_error": paper["max_abs_error"],
        "paper_recipe_train_seconds": paper["train_seconds"],
    }
    print(f"finite differences (max abs error at t = 0.1, 0.3; {args.timer} seconds to reach t = 0.3)")
    for row in fd:
        print(f"  {row['scheme']:<18} dx={row['dx']:<6g} error {row['max_abs_error']:.2e}  "
              f"{row['seconds']:.3f} s")
    print(f"trial-function network: max abs error at t = 0.1, 0.3 after s {args.timer} seconds of training")
    print("  " + f"{'recipe':<18}" + "".join(f"{c:>10g}" for c in checkpoints))
    for name, row in table.items():
        cells = "".join(f"{'-':>10}" if row[c] is None else f"{row[c]:>10.2e}" for c in checkpoints)
        print(f"  {name:<18}{cells}")
    return result


if __name__ == "__main__":
    run_cli(main)
