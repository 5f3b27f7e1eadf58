"""The Yi eigen-ODE (Puleo et al. 2022, Sec. III.2): all eigenpairs by integrators and by networks.

    python -m experiments.eigen [--quick] [--seed S | --seeds A-B] [--out DIR] [--matrix FILE.npy | --n N]
                                [--network-budget SEC] [--timer cpu|wall]

Default matrix: the seed's 6x6 matrix (eq. 26) with its first start (eq. 27). Prints Table I (the seed's
forward-Euler procedure), the robust integrator's table and Table II (batched trial-function networks),
each with lambda_numpy, lambda, eps = |dlambda / lambda| and Lambda = <v, v_np>^2 / (|v|^2 |v_np|^2) - 1
and wall time; writes metrics.json and figures of the component trajectories and the ||x|| drift of
forward Euler versus the Cayley step. The solvers compute in float64 on the CPU (other --dtype/--device
values are refused). The network search runs --network-budget seconds (default 300, CPU seconds by
default); --quick (< 1 min) shortens the paper procedure to N = 2e4 steps (same t_f = 8) and the network
search to a fixed number of rounds of the same search; both are labelled as such. Headline numbers
(median and worst over --seeds): the network's pairs found, those from trained networks (not the
orthogonal complement), its max eps and CPU seconds, and the integrators' max eps.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import dynnets as dn  # noqa: E402
from dynnets.applications.eigen import SEED_MATRIX, SEED_X0, accuracy, yi_eig
from dynnets.applications.runner import Runner, run_cli  # noqa: E402
from dynnets.checks import positive_real  # noqa: E402
from dynnets.errors import ConfigError  # noqa: E402
from dynnets.io import save_figure  # noqa: E402
from dynnets.systems import YiField, check_symmetric  # noqa: E402
from dynnets.train.config import TIMERS  # noqa: E402

#: the seed's Tables I and II (lambda_numpy, eps, Lambda), for the side-by-side in docs/eigen.md
SEED_TABLE_I = [(-2.307, 6.99e-7, 2.11e-6), (-1.542, 1.04e-6, 2.11e-6), (-0.540, 1.01e-6, 7.58e-7),
                (0.190, 2.89e-6, 7.54e-7), (1.686, 8.12e-8, 2.66e-7), (2.202, 6.24e-8, 2.66e-7)]
SEED_TABLE_II = [(-2.307, 1.274e-5, 1.904e-5), (2.202, 5.757e-7, 9.693e-7), (-0.540, 3.231e-6, 2.274e-6),
                 (0.190, 2.901e-7, 3.070e-8)]


def load_matrix(args, seed: int | None = None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The matrix the run works on (checked before any work: ``validate``); ``--n`` draws it under ``seed``."""
    seed = args.seed if seed is None else seed
    if args.matrix is not None and args.n is not None:
        raise ConfigError("give either --matrix FILE.npy or --n N, not both")
    if args.matrix is not None:
        path = Path(args.matrix)
        if not path.is_file():
            raise ConfigError(f"--matrix {path}: no such file")
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ConfigError(f"--matrix {path}: not a readable .npy array ({err})") from None
        return check_symmetric(a, name=f"matrix in {path}").numpy(), None, str(path)
    if args.n is not None:
        if args.n < 2:
            raise ConfigError(f"--n must be >= 2, got {args.n}")
        q = np.random.default_rng(seed).standard_normal((args.n, args.n))
        return (q + q.T) / 2, None, f"random symmetric (Q + Q^T)/2, n={args.n}, seed={seed}"
    return np.array(SEED_MATRIX), np.array(SEED_X0), "seed eq. (26), first start eq. (27)"


def table(title: str, a: np.ndarray, res) -> dict:
    acc = accuracy(a, res.eigenvalues, res.eigenvectors)
    print(f"\n{title}   ({res.pairs_found} pairs, {res.seconds:.3g} s)")
    print(f"{'lambda_numpy':>13}{'lambda':>13}{'eps':>11}{'Lambda':>11}")
    for ref, lam, e, big in zip(acc["matched_numpy"], res.eigenvalues.tolist(), acc["eps"], acc["Lambda"],
                                strict=True):
        print(f"{ref:>13.6f}{lam:>13.6f}{e:>11.2e}{big:>11.2e}")
    return {"eigenvalues": res.eigenvalues, "eps": acc["eps"], "Lambda": acc["Lambda"],
            "max_eps": acc["max_eps"], "max_abs_Lambda": acc["max_abs_Lambda"],
            "pairs_found": res.pairs_found, "distinct_numpy_pairs_matched": acc["distinct_matched"],
            "seconds": res.seconds, "steps": res.steps}


def trajectories(a: np.ndarray, x0: np.ndarray, out: Path, t_final: float = 8.0, h: float = 0.02) -> dict:
    """Forward Euler versus Cayley on the Yi field from x0 with a coarse step: components and ||x|| drift."""
    field = YiField(torch.as_tensor(a))
    steps = int(round(t_final / h))
    x_np = np.linalg.eigh(a)[1][:, -1]
    runs = {}
    for name, method in (("Euler", dn.methods.Euler()), ("Cayley", dn.methods.Cayley())):
        step = dn.Step(field, method, h)
        x = torch.as_tensor(x0, dtype=torch.float64).reshape(1, -1)
        path = [x]
        with torch.no_grad():
            for _ in range(steps):
                x = step(x)
                path.append(x)
        runs[name] = torch.cat(path).numpy()
    t = np.arange(steps + 1) * h
    r0 = np.linalg.norm(x0)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, ax in zip(runs, axes[:2], strict=True):
        ax.plot(t, runs[name])
        sign = np.sign(runs[name][-1] @ x_np) or 1.0
        for comp in x_np * r0 * sign:
            ax.axhline(comp, ls="-.", lw=0.7, color="k")
        ax.set_title(f"{name}, h={h}: components of x(t)")
        ax.set_xlabel("t")
    drift = {name: np.abs(np.linalg.norm(p, axis=1) - r0) / r0 for name, p in runs.items()}
    for name, d in drift.items():
        axes[2].semilogy(t[1:], np.maximum(d[1:], 1e-18), label=name)
    axes[2].axhline(torch.finfo(torch.float64).eps, color="gray", ls=":", label="float64 eps")
    axes[2].set_title("| ||x(t)|| - ||x0|| | / ||x0||")
    axes[2].set_xlabel("t")
    axes[2].legend()
    save_figure(fig, out / "trajectories.png")
    return {"h": h, "steps": steps, "max_norm_drift_euler": float(drift["Euler"].max()),
            "max_norm_drift_cayley": float(drift["Cayley"].max())}


RUNNER = Runner("eigen", __doc__, dtypes=("float64",), devices=("cpu",),
                headline={"network.pairs_found": "max", "network.pairs_trained": "max", "network.max_eps": "min",
                          "network.cpu_seconds": "min", "robust.max_eps": "min", "paper.max_eps": "min"})
RUNNER.parser.add_argument("--matrix", type=Path, default=None, help="symmetric matrix as a .npy file")
RUNNER.parser.add_argument("--n", type=int, default=None, help="random symmetric n x n matrix (Q + Q^T)/2")
RUNNER.parser.add_argument("--network-budget", type=float, default=300.0,
                           help="seconds for the network search (full runs; --quick runs a fixed number of rounds)")
RUNNER.parser.add_argument("--timer", default="cpu",
                           help="clock of --network-budget: cpu (this process's CPU seconds, robust to other jobs "
                                "on the cores) or wall")
#: --quick: a fixed number of rounds of the default search (deterministic under --seed, about 25 s of CPU)
QUICK_NETWORK = dict(max_rounds=3)


def validate(args) -> None:
    if args.timer not in TIMERS:
        raise ConfigError(f"--timer must be one of {', '.join(TIMERS)}, got {args.timer!r}")
    positive_real("--network-budget", args.network_budget)
    load_matrix(args)


def main(argv=None) -> dict:
    return RUNNER.main(run, argv, validate=validate)


def run(args, seed: int, out: Path) -> dict:
    a, x0, label = load_matrix(args, seed)
    n = a.shape[0]
    print(f"matrix: {label}")
    paper_steps = 20_000 if args.quick else 200_000
    paper_label = (f"Table I: forward Euler, the seed's procedure (t_f = 8, N = {paper_steps:.0e}"
                   + (" -- QUICK, the seed uses 2e5" if args.quick else "") + ")")
    metrics = {"matrix": label, "n": n, "quick": args.quick, "seed": seed,
               "eigenvalues_numpy": np.linalg.eigh(a)[0]}
    paper = yi_eig(a, procedure="paper", seed=seed, x0=x0, steps=paper_steps, progress=True)
    metrics["paper"] = table(paper_label, a, paper) | {"steps_per_run": paper_steps}
    robust = yi_eig(a, procedure="robust", seed=seed)
    metrics["robust"] = table("Robust: deflated Cayley steps, residual stop (tol 1e-10 ||A||_F)", a, robust)
    metrics["robust"]["speedup_vs_paper"] = paper.seconds / robust.seconds
    net_options = (dict(QUICK_NETWORK) if args.quick
                   else dict(time_budget=args.network_budget, timer=args.timer))
    t0, c0 = time.perf_counter(), time.process_time()
    network = yi_eig(a, procedure="network", seed=seed, progress=True, **net_options)
    net_label = ("Table II: batched trial-function networks"
                 + (f" -- QUICK, {QUICK_NETWORK['max_rounds']} rounds" if args.quick else ""))
    from_complement = sum(h["accepted"] for h in network.info["rounds"] if h["from_complement"])
    metrics["network"] = table(net_label, a, network) | {"options": net_options,
                                                         "wall_seconds": time.perf_counter() - t0,
                                                         "cpu_seconds": time.process_time() - c0,
                                                         "pairs_trained": network.pairs_found - from_complement,
                                                         "pairs_from_complement": from_complement,
                                                         "rounds": len(network.info["rounds"])}
    print(f"network: {network.pairs_found - from_complement} pairs from trained networks, {from_complement} as "
          f"the orthogonal complement of the others, {len(network.info['rounds'])} rounds")
    print(f"\nrobust / paper speed-up: {metrics['robust']['speedup_vs_paper']:.0f}x; "
          f"network: {network.pairs_found}/{n} pairs in {network.seconds:.1f} s")
    start = x0 if x0 is not None else np.random.default_rng(seed).standard_normal(n)
    metrics["trajectories"] = trajectories(a, start, out)
    return metrics


if __name__ == "__main__":
    run_cli(main)
