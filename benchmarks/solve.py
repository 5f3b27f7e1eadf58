"""Work-precision of ``dynnets.solve`` against SciPy's ``solve_ivp`` (RK45, DOP853) and torchdiffeq's
``odeint`` (dopri5, dopri8) on standard non-stiff problems, float64.

Problems (DETEST, Hull et al. 1972; HNW I, II.10), all to T = 20: the harmonic oscillator from (1, 0);
two-body orbits with eccentricity 0.1, 0.3, 0.5, 0.7, 0.9 (DETEST D1-D5) from their pericentre;
Lotka-Volterra (B1) from (1, 3); Van der Pol with mu = 1 from (2, 0); the Brusselator (A = 1, B = 3) from
(1.5, 3). The error is the relative end-point error ||x(T) - x_ref|| / ||x_ref|| (a batch: its largest
row), x_ref the closed form (oscillator, Kepler's equation) or SciPy's DOP853 at rtol 1e-13, atol 1e-15
(checked against dynnets' DOP853 at the same tolerance; the disagreement is recorded).

Each solver runs over rtol = atol = 10^(-3), 10^(-3.25), ..., 10^(-13.5) (every other one at --batch,
where runs are costly); every run's field evaluations and achieved error give a work-precision curve.
Evaluations to reach an error E: a least-squares line through log nfev against log error over the runs
with error within a decade of E. Wall time to reach E:
for each solver the loosest tolerance whose error is at most E, timed side by side with the others
(``interleaved_times``, min over ``--repeats`` rounds), at batch 1 and at ``--batch`` states (initial
states scaled by 1 + 0.05 u, u uniform in [-1, 1]). torchdiffeq's norm is the RMS over the whole batch,
dynnets' the largest per-row RMS, so at equal tolerance they reach different errors: compared at equal
achieved error, as everything here.

Goals (issue 20): dynnets' DormandPrince5 needs at most 1.1x the evaluations of SciPy's RK45 for the same
error on every problem at 1e-4, 1e-7, 1e-10; its wall time is within 2x of torchdiffeq's dopri5 at batch 1
and below it at batch >= 256.

    python -m benchmarks.solve [--quick] [--repeats N] [--batch B]
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli, save_figure

from ._common import Counted, interleaved_times, machine

T, TARGETS = 20.0, (1e-4, 1e-7, 1e-10)
#: down to 10^(-13.5) (above dn.solve's floor of 100 eps): the orbits reach an end-point error of 1e-10 only
#: below rtol 1e-12
RTOLS = tuple(10.0 ** (-k / 4) for k in range(12, 55))
PAIRS = {"dynnets DormandPrince5": ("RK45", "dopri5"), "dynnets DormandPrince853": ("DOP853", "dopri8")}


@dataclass
class Problem:
    name: str
    field: dn.base.Field
    x0: torch.Tensor
    exact: object = None  # x0 -> x(T), where a closed form exists for that x0


def problems(quick: bool) -> list[Problem]:
    rotation = torch.tensor([[math.cos(T), -math.sin(T)], [math.sin(T), math.cos(T)]], dtype=torch.float64)
    oscillator = dn.fields.Linear(torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64))
    out = [Problem("harmonic oscillator", oscillator, torch.tensor([[1.0, 0.0]], dtype=torch.float64),
                   lambda x: x @ rotation)]
    for e in (0.5,) if quick else (0.1, 0.3, 0.5, 0.7, 0.9):
        kepler = dn.systems.TwoBody(e)
        out.append(Problem(f"two-body e={e}", kepler, kepler.initial_state(),
                           lambda x, k=kepler: k.solution(T) if torch.equal(x, k.initial_state()) else None))
    if not quick:
        for name, field in (("Lotka-Volterra", dn.systems.LotkaVolterra()), ("Van der Pol mu=1", dn.systems.VanDerPol()),
                            ("Brusselator", dn.systems.Brusselator())):
            out.append(Problem(name, field, field.initial_state()))
    return out


def _scipy_rhs(field, shape):
    return lambda t, y: field(torch.from_numpy(y).reshape(shape)).reshape(-1).numpy()


def reference(problem: Problem, x0: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(x_ref, disagreement of the two tight references, or 0 for a closed form)."""
    from scipy.integrate import solve_ivp

    exact = problem.exact(x0) if problem.exact is not None else None
    if exact is not None:
        return exact, 0.0
    sol = solve_ivp(_scipy_rhs(problem.field, x0.shape), (0.0, T), x0.reshape(-1).numpy(), method="DOP853",
                    rtol=1e-13, atol=1e-15)
    ref = torch.from_numpy(sol.y[:, -1]).reshape(x0.shape)
    ours = dn.solve(problem.field, x0, [0.0, T], method=dn.methods.DormandPrince853(), rtol=1e-13, atol=1e-15).x[-1]
    return ref, relative_error(ours, ref)


def relative_error(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((x - ref).norm(dim=1) / ref.norm(dim=1)).max())


def solvers(batch: int) -> dict:
    """name -> run(field, x0, rtol) returning (nfev, x(T)); SciPy only at batch 1 (it has no batches)."""
    from torchdiffeq import odeint

    def ours(pair):
        def run(field, x0, rtol):
            sol = dn.solve(field, x0, [0.0, T], method=pair, rtol=rtol, atol=rtol)
            return sol.nfev, sol.x[-1]
        return run

    def scipy(method):
        def run(field, x0, rtol):
            from scipy.integrate import solve_ivp

            sol = solve_ivp(_scipy_rhs(field, x0.shape), (0.0, T), x0.reshape(-1).numpy(), method=method,
                            rtol=rtol, atol=rtol)
            return sol.nfev, torch.from_numpy(sol.y[:, -1]).reshape(x0.shape)
        return run

    def torchdiffeq(method):
        grid = torch.tensor([0.0, T], dtype=torch.float64)

        def run(field, x0, rtol):
            counted = Counted(field)
            final = odeint(counted, x0, grid, rtol=rtol, atol=rtol, method=method)[-1]
            return counted.calls, final
        return run

    out = {"dynnets DormandPrince5": ours(dn.methods.DormandPrince5()),
           "dynnets DormandPrince853": ours(dn.methods.DormandPrince853())}
    if batch == 1:
        out.update({"scipy RK45": scipy("RK45"), "scipy DOP853": scipy("DOP853")})
    out.update({"torchdiffeq dopri5": torchdiffeq("dopri5"), "torchdiffeq dopri8": torchdiffeq("dopri8")})
    return out


def sweep(problem: Problem, x0, ref, runs: dict, rtols) -> dict:
    """name -> [(rtol, nfev, error, seconds)] over the tolerances (a run that fails is left out)."""
    curves = {}
    for name, run in runs.items():
        points = []
        for rtol in rtols:
            start = time.perf_counter()
            try:
                with torch.no_grad():
                    nfev, x = run(problem.field, x0, rtol)
            except (dn.errors.ToleranceError, AssertionError, RuntimeError):
                continue  # e.g. a crude tolerance that lets an orbit fall into the centre
            seconds = time.perf_counter() - start
            error = relative_error(x, ref)
            if 0.0 < error < math.inf:
                points.append((rtol, int(nfev), error, seconds))
        curves[name] = points
    return curves


def evaluations_at(points, target: float) -> float | None:
    """nfev at error ``target`` from a least-squares line through (log error, log nfev) of the runs within
    a decade of it (None unless at least 3 such runs and the target inside their range)."""
    near = [(math.log10(e), math.log10(n)) for _, n, e, _ in points if abs(math.log10(e / target)) <= 1.0]
    if len(near) < 3 or not min(e for e, _ in near) <= math.log10(target) <= max(e for e, _ in near):
        return None
    slope, intercept = np.polyfit([e for e, _ in near], [n for _, n in near], 1)
    return float(10.0 ** (intercept + slope * math.log10(target)))


def timed_at(problem: Problem, x0, curves: dict, runs: dict, names, target: float, repeats: int) -> dict:
    """For each solver: the loosest tolerance reaching ``target``, timed side by side (min seconds)."""
    chosen = {}
    for name in names:
        reached = [p for p in curves.get(name, ()) if p[2] <= target]
        if reached:
            chosen[name] = max(reached, key=lambda p: p[0])
    if not chosen:
        return {}

    def call(name):
        rtol = chosen[name][0]

        def once():
            with torch.no_grad():
                runs[name](problem.field, x0, rtol)
        return once

    stats = interleaved_times({name: call(name) for name in chosen}, repeats=repeats, warmup=1)
    return {name: {"rtol": chosen[name][0], "nfev": chosen[name][1], "error": chosen[name][2],
                   "seconds": stats[name]["min"], "median_seconds": stats[name]["median"]} for name in chosen}


def run_problem(problem: Problem, batch: int, rtols, repeats: int, generator) -> dict:
    x0 = problem.x0
    if batch > 1:
        x0 = x0 * (1.0 + 0.05 * (2.0 * torch.rand(batch, 1, dtype=torch.float64, generator=generator) - 1.0))
    ref, disagreement = reference(problem, x0)
    runs = solvers(batch)
    curves = sweep(problem, x0, ref, runs, rtols)
    evaluations = {name: {f"{E:g}": evaluations_at(points, E) for E in TARGETS} for name, points in curves.items()}
    timing = {f"{E:g}": timed_at(problem, x0, curves, runs, tuple(runs), E, repeats) for E in TARGETS}
    return {"batch": batch, "reference_disagreement": disagreement, "curves": curves, "evaluations": evaluations,
            "timing": timing}


def ratio(numerator, denominator):
    return None if numerator is None or denominator is None else numerator / denominator


def summarise(results: dict) -> dict:
    """The goals' ratios per problem and target, and their worst values."""
    rows = []
    for name, by_batch in results.items():
        one = by_batch["1"]
        for E in TARGETS:
            key = f"{E:g}"
            ev = one["evaluations"]
            row = {"problem": name, "error": E,
                   "nfev_ratio_dp5_rk45": ratio(ev["dynnets DormandPrince5"][key], ev["scipy RK45"][key]),
                   "nfev_ratio_dp853_dop853": ratio(ev["dynnets DormandPrince853"][key], ev["scipy DOP853"][key])}
            for batch, timing in by_batch.items():
                t = timing["timing"][key]
                for ours, theirs in (("dynnets DormandPrince5", "torchdiffeq dopri5"),
                                     ("dynnets DormandPrince853", "torchdiffeq dopri8"),
                                     ("dynnets DormandPrince5", "scipy RK45"), ("dynnets DormandPrince853", "scipy DOP853")):
                    if ours in t and theirs in t:
                        row[f"time_ratio_{ours.split()[-1]}_{theirs.split()[-1]}_batch{batch}"] = (
                            t[ours]["seconds"] / t[theirs]["seconds"])
            rows.append(row)
    worst = {}
    for row in rows:
        for k, v in row.items():
            if "ratio" in k and v is not None:
                worst[k] = max(worst.get(k, v), v)
    return {"rows": rows, "worst": worst}


RUNNER = Runner("solve", __doc__, kind="benchmark", dtypes=("float64",), default_dtype="float64", devices=("cpu",),
                threads=1)
RUNNER.parser.add_argument("--repeats", type=int, default=3, help="timing rounds (min reported)")
RUNNER.parser.add_argument("--batch", type=int, default=256, help="the batched comparison's batch size")


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv, validate=_validate)


def _validate(args) -> None:
    if args.repeats < 1 or args.batch < 2:
        raise dn.errors.ConfigError(f"--repeats must be >= 1 and --batch >= 2, got {args.repeats}, {args.batch}")


def run_benchmark(args, seed, out) -> dict:
    rtols = RTOLS[::4] if args.quick else RTOLS
    generator = torch.Generator().manual_seed(seed)
    load_before = os.getloadavg()
    results = {}
    for problem in tqdm(problems(args.quick), desc="problems"):
        results[problem.name] = {str(b): run_problem(problem, b, rtols if b == 1 else rtols[::2], args.repeats,
                                                     generator)
                                 for b in (1, args.batch)}
    summary = summarise(results)
    figure = save_figure(work_precision_figure(results, args.batch), out / f"solve_work_precision{'_quick' * args.quick}.png")
    report(summary)
    return {"config": {"T": T, "targets": TARGETS, "rtols": rtols, "batch": args.batch, "repeats": args.repeats,
                       "timing": "min over interleaved rounds (ABBA order), loosest tolerance reaching each error"},
            "summary": summary, "results": results, "figure": str(figure),
            "load_average": {"before": load_before, "after": os.getloadavg()}, "machine": machine()}


def work_precision_figure(results: dict, batch: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(3, len(names), figsize=(3.0 * len(names), 9.0), squeeze=False)
    styles = {"dynnets DormandPrince5": "C0-o", "dynnets DormandPrince853": "C1-s", "scipy RK45": "C0:^",
              "scipy DOP853": "C1:v", "torchdiffeq dopri5": "C2--x", "torchdiffeq dopri8": "C3--+"}
    panels = ((0, "1", 1, "evaluations"), (1, "1", 3, "wall time, one run (s)"),
              (2, str(batch), 3, f"wall time, batch {batch} (s)"))
    for col, name in enumerate(names):
        for row, key, index, label in panels:
            ax = axes[row][col]
            for solver, points in results[name][key]["curves"].items():
                if points:
                    ax.loglog([p[2] for p in points], [p[index] for p in points], styles[solver], ms=3, lw=1,
                              label=solver)
            ax.set_title(name, fontsize=8)
            ax.invert_xaxis()
            ax.set_xlabel("relative end-point error", fontsize=7)
            ax.set_ylabel(label, fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def report(summary: dict) -> None:
    """The goals' ratios per problem and error (None: the solver did not bracket that error), then the worst."""
    keys = ["nfev_ratio_dp5_rk45", "nfev_ratio_dp853_dop853"]
    keys += sorted({k for row in summary["rows"] for k in row if k.startswith("time_ratio")})
    print(f"{'problem':<22}{'error':>7}" + "".join(f"{_short(k):>19}" for k in keys))
    for row in summary["rows"]:
        cells = "".join(f"{'-' if row.get(k) is None else f'{row[k]:.3f}':>19}" for k in keys)
        print(f"{row['problem']:<22}{row['error']:>7.0e}{cells}")
    for k, v in summary["worst"].items():
        print(f"worst {k}: {v:.3f}")


def _short(key: str) -> str:
    """A column title: nfev_ratio_dp5_rk45 -> nfev dp5/rk45, time_ratio_DormandPrince5_dopri5_batch256 ->
    t DP5/dopri5@256."""
    parts = key.split("_")
    if parts[0] == "nfev":
        return f"n {parts[2]}/{parts[3]}"
    ours = {"DormandPrince5": "DP5", "DormandPrince853": "DP853"}[parts[2]]
    return f"t {ours}/{parts[3]}@{parts[4][5:]}"


if __name__ == "__main__":
    run_cli(main)
