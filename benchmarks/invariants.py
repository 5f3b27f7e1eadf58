"""Cost of dynnets.testing's float64 checks against the state dimension (10 to 1000).

The map measured is a Flow of 4 Euler Dense steps (width = dim); 8 points per check. Jacobian-based
checks cost one reverse pass per output coordinate (vmap over jacrev) plus, for the volume, an LU
determinant; point-wise checks cost one forward pass.

    python -m benchmarks.invariants [--dims 10 30 100 300 1000]
"""

from __future__ import annotations

import time

import numpy as np
import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli

from ._common import machine

POINTS = 8


def _time(fn, args, repeats):
    fn(*args)  # warm-up
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        best.append(time.perf_counter() - t0)
    return float(min(best))  # the least disturbed run (other jobs share the machine)


# one torch thread by default: these are small operations; with a second busy core, two threads made them
# 100x slower here
RUNNER = Runner("invariants", __doc__, kind="benchmark", dtypes=("float64",), devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--dims", type=int, nargs="+", default=[10, 30, 100, 300, 1000])


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv)


def run_benchmark(args, seed, out) -> dict:
    rows = []
    for d in args.dims:
        net = dn.Flow([dn.Step(dn.fields.Dense(d, d), dn.methods.Euler(), 0.1) for _ in range(4)]).double()
        x = torch.randn(POINTS, d, dtype=torch.float64)
        y = x + 1e-3 * torch.randn_like(x)
        c = torch.ones(d, dtype=torch.float64)
        repeats = 7 if d <= 300 else 3
        checks = {
            "volume_defect": (dn.testing.volume_defect, (net, x)),
            "invariant_drift": (dn.testing.invariant_drift, (net, x, c)),
            "lipschitz_ratio": (dn.testing.lipschitz_ratio, (net, x, y)),
        }
        if d % 2 == 0:
            checks["symplecticity_defect"] = (dn.testing.symplecticity_defect, (net, x))
        row = {"dim": d, **{name: _time(fn, fargs, repeats) for name, (fn, fargs) in checks.items()}}
        rows.append(row)
        print(f"dim {d}: " + ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in row.items() if k != "dim"))
    cols = ["volume_defect", "symplecticity_defect", "invariant_drift", "lipschitz_ratio"]
    print(f"\n{'dim':>6}" + "".join(f"{c:>22}" for c in cols) + "   (ms, 8 points)")
    for r in rows:
        print(f"{r['dim']:>6}" + "".join(f"{1e3 * r[c]:>22.2f}" if c in r else f"{'-':>22}" for c in cols))
    exponents = {}
    if len(rows) >= 2:
        dims = np.log([r["dim"] for r in rows])
        for col in ("volume_defect", "invariant_drift"):
            exponents[col] = float(np.polyfit(dims, np.log([r[col] for r in rows]), 1)[0])
        print("growth exponent (time ~ dim^p): " + ", ".join(f"{k} p={v:.2f}" for k, v in exponents.items()))
    return {"points": POINTS, "threads": args.threads, "rows": rows, "growth_exponent": exponents, "machine": machine()}


if __name__ == "__main__":
    run_cli(main)
