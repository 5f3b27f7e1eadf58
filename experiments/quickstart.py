"""Quickstart: compose networks from integrator layers, then measure every guarantee they claim.

    python -m experiments.quickstart [--quick] [--seed S] [--out DIR]

Runs in float64 on the CPU (the measurements are round-off measurements; other --dtype/--device values
are refused).

For each structured family, a deep flow (every layer with its own random field) is built with a method
that preserves the property and, as a negative control, with one that does not (the same fields). Each
claimed property is measured in float64 by dynnets.testing and held to C * n * eps; the control must
show a defect many orders of magnitude larger. Writes metrics.json and defects.png.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import dynnets as dn  # noqa: E402
from dynnets.applications.runner import Runner, run_cli  # noqa: E402
from dynnets.errors import GuaranteeError  # noqa: E402
from dynnets.io import save_figure  # noqa: E402

F, M = dn.fields, dn.methods
H = 0.2
# name -> (field factory, preserving method, control method without the property); state dim 4
FAMILIES = {
    "MassPreserving": (lambda: F.MassPreserving(4, 16), M.RK4, None),
    "VolumePreserving": (lambda: F.VolumePreserving(2, 16), M.SymplecticEuler, M.Euler),
    "Hamiltonian": (lambda: F.Hamiltonian(2, 16), M.StormerVerlet, M.Euler),
    "SpherePreserving": (lambda: F.SpherePreserving(4, 16), M.Cayley, M.Euler),
}


def build(method, fields) -> dn.Flow:
    return dn.Flow([dn.Step(f, method(), H) for f in fields]).double()


RUNNER = Runner("quickstart", __doc__, dtypes=("float64",), devices=("cpu",))


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


def run(args, seed, out) -> dict:
    depth = 10 if args.quick else 50
    x = torch.randn(16, 4, dtype=torch.float64)
    rows, metrics = [], {"depth": depth, "h": H, "networks": {}}
    resnet = dn.Flow([dn.Step(F.Dense(4, 16), M.Euler(), H) for _ in range(depth)]).double()
    for name, (make, method, control) in FAMILIES.items():
        fields = [make() for _ in range(depth)]
        net = build(method, fields)
        label = f"{name}, {method().name}"
        checks = dn.testing.verify(net, x)
        # the control: the same fields with a method that does not preserve the property (for mass,
        # where every RK method preserves it, an unstructured ResNet)
        ctrl = build(control, fields) if control is not None else resnet
        ctrl_label = f"{name}, {control().name}" if control is not None else "ResNet (Dense, Euler)"
        entry = {"guarantees": sorted(repr(p) for p in net.guarantees), "control": ctrl_label, "checks": []}
        for c in checks:
            ctrl_defect = dn.testing.measure(ctrl, c.property, x)
            entry["checks"].append({"property": repr(c.property), "defect": c.defect, "tolerance": c.tolerance,
                                    "passed": c.passed, "control_defect": ctrl_defect})
            rows.append((label, type(c.property).__name__, c.defect, c.tolerance, ctrl_defect, c.passed))
        metrics["networks"][label] = entry
    metrics["resnet_guarantees"] = sorted(repr(p) for p in resnet.guarantees)
    print(f"{depth}-layer flows, h = {H}, float64; control = same fields, non-preserving method\n")
    print(f"{'network':<34}{'property':<18}{'defect':>10}{'tolerance':>11}{'control':>10}  verdict")
    for label, prop, defect, tol, ctrl, ok in rows:
        print(f"{label:<34}{prop:<18}{defect:>10.1e}{tol:>11.1e}{ctrl:>10.1e}  {'ok' if ok else 'FAILED'}")
    print(f"{'ResNet (Dense, Euler)':<34}claims nothing: {sorted(resnet.guarantees) or 'frozenset()'}")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    pos = range(len(rows))
    ax.bar([p - 0.2 for p in pos], [max(r[2], 1e-18) for r in rows], width=0.4, label="structured (measured)")
    ax.bar([p + 0.2 for p in pos], [max(r[4], 1e-18) for r in rows], width=0.4, color="C3", label="control")
    ax.scatter(list(pos), [r[3] for r in rows], color="k", marker="_", s=500, label="tolerance C n eps")
    ax.set_yscale("log")
    ax.set_xticks(list(pos), [f"{r[0]}\n{r[1]}" for r in rows], fontsize=6)
    ax.set_ylabel("defect (float64)")
    ax.legend(fontsize=7)
    save_figure(fig, out / "defects.png")
    failed = [r for r in rows if not r[5]]
    if failed:
        raise GuaranteeError(f"{len(failed)} guarantee(s) not confirmed to round-off: {[r[:2] for r in failed]}")
    return metrics


if __name__ == "__main__":
    run_cli(main)
