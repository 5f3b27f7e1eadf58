"""Yi eigen-ODE solvers side by side: the robust solver (deflated Cayley steps, residual stop), the seed's
forward-Euler procedure, SciPy's DOP853 on the same ODE (same deflation and stopping rule, adaptive time
steps), and numpy.linalg.eigh, for n = 6 (the seed's matrix), 20, 50, 100 (random (Q + Q^T)/2).

    python -m benchmarks.eigen [--quick]

Prints time and accuracy (max eps, max |Lambda| of the seed's eqs. 31-32) per solver and size, the
time ratio paper / robust at n = 6 over 10 seeds, and the growth of time with n (log-log slope); writes
benchmarks/results/eigen.json. The paper procedure runs 2e5 Euler steps per pair, so it is timed at n = 6
only (and at n = 20 outside --quick), once per seed: minutes otherwise.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

from dynnets.applications.eigen import SEED_MATRIX, SEED_X0, accuracy, yi_eig
from dynnets.applications.runner import Runner, run_cli
from dynnets.systems import spread_bound

from ._common import machine


def random_symmetric(n: int, seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal((n, n))
    return (q + q.T) / 2


def dop853_eig(a: np.ndarray, seed: int, tol: float = 1e-10):
    """The same deflated, residual-stopped procedure as the robust solver, but each level integrated by
    DOP853 (rtol = atol = 1e-12) over windows of length 10 / spread until the residual test passes."""
    rng = np.random.default_rng(seed)
    n = a.shape[0]
    threshold = tol * np.linalg.norm(a)
    b, q, found, evals = a.copy(), np.eye(n), [], 0
    for _ in range(n):
        m = b.shape[0]
        y = rng.standard_normal(m)
        y /= np.linalg.norm(y)
        if m > 1:
            window = 10.0 / max(spread_bound(torch.from_numpy(b)), 1e-300)

            def rhs(_t, z, b=b):
                bz = b @ z
                return (z @ z) * bz - (z @ bz) * z

            for _ in range(10_000):
                by = b @ y
                if np.linalg.norm(by - (y @ by) / (y @ y) * y) <= threshold * (y @ y) ** 0.5:
                    break
                sol = solve_ivp(rhs, (0.0, window), y, method="DOP853", rtol=1e-12, atol=1e-12)
                evals += sol.nfev
                y = sol.y[:, -1] / np.linalg.norm(sol.y[:, -1])
        found.append(q @ y)
        if m > 1:
            u = y.copy()
            u[0] += math.copysign(np.linalg.norm(y), y[0] if y[0] != 0 else 1.0)
            u /= np.linalg.norm(u)
            hb = b - 2.0 * np.outer(u, u @ b)
            hb = hb - 2.0 * np.outer(hb @ u, u)
            b = (hb[1:, 1:] + hb[1:, 1:].T) / 2
            q = (q - 2.0 * np.outer(q @ u, u))[:, 1:]
    v = np.stack(found, 1)
    lam = np.einsum("ij,ij->j", v, a @ v)
    order = np.argsort(lam)
    return lam[order], v[:, order], evals


def measure(name: str, fn, a: np.ndarray) -> dict:
    t0 = time.perf_counter()
    lam, vec, work = fn()
    seconds = time.perf_counter() - t0
    acc = accuracy(a, lam, vec)
    return {"solver": name, "seconds": seconds, "max_eps": acc["max_eps"], "max_abs_Lambda": acc["max_abs_Lambda"],
            "pairs": len(lam), "work": int(work)}


def solvers(a: np.ndarray, seed: int, with_paper: bool, x0=None) -> dict:
    def robust():
        r = yi_eig(a, seed=seed)
        return r.eigenvalues, r.eigenvectors, r.total_steps

    def paper():
        r = yi_eig(a, procedure="paper", seed=seed, x0=x0)
        return r.eigenvalues, r.eigenvectors, r.total_steps

    def eigh():
        w, v = np.linalg.eigh(a)
        return w, v, 0

    fns = {"robust (Cayley)": robust, "DOP853 (scipy)": lambda: dop853_eig(a, seed), "numpy eigh": eigh}
    if with_paper:
        fns["paper FE"] = paper
    return fns


RUNNER = Runner("eigen", __doc__, kind="benchmark", dtypes=("float64",), devices=("cpu",), threads=1)


def main(argv=None):
    return RUNNER.main(run_benchmark, argv)


def run_benchmark(args, seed, out) -> dict:
    """--quick: n = 6, 20 only, 3 seeds for the ratio."""
    sizes = (6, 20) if args.quick else (6, 20, 50, 100)
    seeds = range(3) if args.quick else range(10)
    seed_a = np.array(SEED_MATRIX)
    # 1. the ratio target: paper FE versus robust at n = 6, side by side, every seed
    ratio_rows = []
    for seed in seeds:
        fns = solvers(seed_a, seed, with_paper=True, x0=np.array(SEED_X0))
        row = {"seed": seed}
        for name in ("paper FE", "robust (Cayley)"):
            row[name] = measure(name, fns[name], seed_a)
        # the robust solver's time is milliseconds: take the median of 21 repeats for a stable number
        times = []
        for _ in range(21):
            t0 = time.perf_counter()
            yi_eig(seed_a, seed=seed)
            times.append(time.perf_counter() - t0)
        row["robust (Cayley)"]["seconds"] = float(np.median(times))
        row["ratio"] = row["paper FE"]["seconds"] / row["robust (Cayley)"]["seconds"]
        ratio_rows.append(row)
        print(f"seed {seed}: paper {row['paper FE']['seconds']:.2f} s (max eps {row['paper FE']['max_eps']:.1e}), "
              f"robust {row['robust (Cayley)']['seconds'] * 1e3:.2f} ms (max eps "
              f"{row['robust (Cayley)']['max_eps']:.1e}, |Lambda| {row['robust (Cayley)']['max_abs_Lambda']:.1e}), "
              f"ratio {row['ratio']:.0f}x", flush=True)
    # 2. scaling with n
    scaling = []
    for n in sizes:
        a = seed_a if n == 6 else random_symmetric(n, 0)
        fns = solvers(a, 0, with_paper=False)
        for name, fn in fns.items():
            rec = measure(name, fn, a) | {"n": n}
            scaling.append(rec)
    print(f"\n{'n':>4} {'solver':<18}{'seconds':>11}{'max eps':>11}{'max|Lambda|':>13}{'work':>10}")
    for r in scaling:
        print(f"{r['n']:>4} {r['solver']:<18}{r['seconds']:>11.4g}{r['max_eps']:>11.2e}{r['max_abs_Lambda']:>13.2e}"
              f"{r['work']:>10}")
    slopes = {}
    for name in ("robust (Cayley)", "DOP853 (scipy)", "numpy eigh"):
        pts = [(r["n"], r["seconds"]) for r in scaling if r["solver"] == name and r["n"] >= 20]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            slopes[name] = float(np.polyfit(x, y, 1)[0])
    ratios = [r["ratio"] for r in ratio_rows]
    print(f"\npaper / robust at n = 6: min {min(ratios):.0f}x, median {np.median(ratios):.0f}x over {len(ratios)} seeds; "
          f"robust max eps over seeds {max(r['robust (Cayley)']['max_eps'] for r in ratio_rows):.1e}, "
          f"max |Lambda| {max(r['robust (Cayley)']['max_abs_Lambda'] for r in ratio_rows):.1e}")
    print("time ~ n^p for n >= 20: " + ", ".join(f"{k} p = {v:.2f}" for k, v in slopes.items()))
    return {"machine": machine(), "quick": args.quick, "ratio_n6": ratio_rows, "scaling": scaling,
            "loglog_slope_n_ge_20": slopes}


if __name__ == "__main__":
    run_cli(main)
