"""Quickstart: compose networks from integrator layers, then measure every guarantee they claim.

    python -m experiments.quickstart [--quick] [--seed S] [--out DIR]

Prints, for each network, its declared guarantees and the float64 defect dynnets.testing measures for
each, next to the round-off tolerance C * n * eps; writes metrics.json and a figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import dynnets as dn  # noqa: E402
from dynnets.runs import experiment_parser, run_cli, save_figure, seed_everything, write_json  # noqa: E402


def _step(name: str):
    """One step of each demonstration family (structured ones once they exist in dn.fields)."""
    f, m = dn.fields, dn.methods
    makers = {
        "ResNet (Euler, Dense)": lambda: dn.Step(f.Dense(4, 16), m.Euler(), 0.2),
        "MassPreserving, RK4": lambda: dn.Step(f.MassPreserving(4, 16), m.RK4(), 0.2),
        "VolumePreserving, SympEuler": lambda: dn.Step(f.VolumePreserving(2, 16), m.SymplecticEuler(), 0.2),
        "Hamiltonian, StormerVerlet": lambda: dn.Step(f.Hamiltonian(2, 16), m.StormerVerlet(), 0.2),
        "SpherePreserving, Cayley": lambda: dn.Step(f.SpherePreserving(4, 16), m.Cayley(), 0.2),
    }
    try:
        return makers[name]()
    except AttributeError:  # a family this version does not have yet
        return None


NAMES = ("ResNet (Euler, Dense)", "MassPreserving, RK4", "VolumePreserving, SympEuler",
         "Hamiltonian, StormerVerlet", "SpherePreserving, Cayley")


def networks(depth: int) -> dict:
    """The demonstration networks: Flows of `depth` integrator steps, state dimension 4."""
    nets = {}
    for name in NAMES:
        if _step(name) is not None:
            nets[name] = (dn.Flow([_step(name) for _ in range(depth)]), 4)
    return nets


def main(argv=None) -> dict:
    parser = experiment_parser("quickstart", __doc__)
    args = parser.parse_args(argv)
    seed_everything(args.seed)
    depth = 10 if args.quick else 50
    rows, metrics = [], {"depth": depth, "networks": {}}
    for label, (net, dim) in networks(depth).items():
        net = net.double()
        x = torch.randn(16, dim, dtype=torch.float64)
        checks = dn.testing.verify(net, x)
        volume = dn.testing.volume_defect(net, x)
        metrics["networks"][label] = {
            "guarantees": sorted(repr(p) for p in net.guarantees),
            "checks": [{"property": repr(c.property), "defect": c.defect, "tolerance": c.tolerance,
                        "passed": c.passed} for c in checks],
            "volume_defect_measured": volume,
        }
        for c in checks:
            rows.append((label, repr(c.property), c.defect, c.tolerance, "ok" if c.passed else "FAILED"))
        if not checks:
            rows.append((label, "(claims nothing)", volume, float("nan"), "det J - 1 shown"))
    print(f"{'network':<28}{'property':<34}{'defect':>11}{'tolerance':>11}  verdict")
    for label, prop, defect, tol, verdict in rows:
        print(f"{label:<28}{prop:<34}{defect:>11.2e}{tol:>11.2e}  {verdict}")
    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = [f"{r[0]}\n{r[1]}" for r in rows]
    ax.bar(range(len(rows)), [max(r[2], 1e-18) for r in rows], color=["C0" if r[4] == "ok" else "C3" for r in rows])
    ax.scatter(range(len(rows)), [r[3] for r in rows], color="k", marker="_", s=400, label="tolerance C n eps")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), labels, fontsize=6, rotation=20)
    ax.set_ylabel("measured defect (float64)")
    ax.legend(fontsize=7)
    save_figure(fig, args.out / "defects.png")
    write_json(args.out / "metrics.json", metrics)
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'defects.png'}")
    failed = [r for r in rows if r[4] == "FAILED"]
    if failed:
        raise SystemExit(f"error: {len(failed)} guarantee(s) not confirmed to round-off")
    return metrics


if __name__ == "__main__":
    run_cli(main)
