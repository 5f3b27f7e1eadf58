"""Rendering results/REPORT.md from the experiments' metrics.json files.

Each experiment gets a section: its key numbers next to the seed's (where the seed reports any), then
its figures. A final table lists every guarantee measured (property, network, defect, tolerance).
Section writers are keyed by experiment name; an experiment without one gets its scalar metrics listed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

VARIANTS = {"fisher_heat": ("fisher", ["--pde", "heat"])}  # report entry -> (experiment module, its options)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _scalars(metrics: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += _scalars(v, key + ".")
        elif isinstance(v, (int, float, str, bool)) or v is None:
            rows.append((key, v))
    return rows


def _generic(metrics: dict) -> str:
    rows = _scalars(metrics)[:40]
    return "| metric | value |\n|---|---|\n" + "".join(f"| `{k}` | {_fmt(v)} |\n" for k, v in rows)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _get(m: dict, path: str, default=None):
    for key in path.split("."):
        if not isinstance(m, dict) or key not in m:
            return default
        m = m[key]
    return m


def _quickstart(m: dict) -> str:
    return (f"{m.get('depth')}-layer flows of each structured family; every claim and its negative control "
            "are in the guarantee table at the end.\n")


def _structure(m: dict) -> str:
    rows = [["structured", _get(m, "structured_test_mse"), _get(m, "structured_drift")],
            ["baseline ResNet", _get(m, "baseline_test_mse"), _get(m, "baseline_drift")]]
    return _table(["model", "test MSE", "max drift of the invariant / energy over the rollout"], rows)


def _heat(m: dict) -> str:
    fd = m.get("fd_rel_error", {})
    rows = []
    for scheme, by_dx in fd.items():
        for dx, by_t in by_dx.items():
            rows.append([scheme, dx, by_t.get("0.1"), by_t.get("0.3")])
    out = "FD relative error (max over interior nodes); the seed reports about 0.02 and 0.06 at dx = 0.01 " \
          "(their dt and grid-spacing bugs).\n\n"
    out += _table(["scheme", "dx", "t = 0.1", "t = 0.3"], rows) + "\n"
    nn = [[f"dynnets trial network (seed {m.get('seed')})", m.get("nn_max_abs_error"),
           f"{_fmt(m.get('nn_train_seconds'))} {m.get('timer', 'cpu')} ({_fmt(m.get('nn_wall_seconds'))} wall)"]]
    if "paper_recipe_max_abs_error" in m:
        nn.append(["seed's recipe, rerun", m["paper_recipe_max_abs_error"], m.get("paper_recipe_train_seconds")])
    nn.append(["seed, reported", "plateau near 2e-3", "75 min"])
    return out + _table(["network", "max abs error at t = 0.1, 0.3", "training seconds"], nn)


def _eigen(m: dict) -> str:
    seed = {"paper": "Table I: 6/6, eps <= 3e-6, about 30 s", "robust": "-",
            "network": "Table II: 4/6, eps <= 1.3e-5, about an hour"}
    rows = [[k, _get(m, f"{k}.pairs_found"), _get(m, f"{k}.max_eps"), _get(m, f"{k}.max_abs_Lambda"),
             _get(m, f"{k}.seconds"), seed[k]] for k in ("paper", "robust", "network") if k in m]
    out = f"Matrix: {m.get('matrix', m.get('n'))}.\n\n"
    return out + _table(["procedure", "pairs found", "max eps", "max abs Lambda", "seconds", "seed reports"], rows)


def _fisher(m: dict) -> str:
    rows = [["trained ConvFD", m.get("rel_error_40"), m.get("rel_error_40_out_of_band")],
            ["exact construction", m.get("rel_error_40_exact"), m.get("rel_error_40_exact_out_of_band")],
            ["CNN baseline", m.get("rel_error_40_baseline"), m.get("rel_error_40_baseline_out_of_band")],
            ["reference model (reported)", m.get("reference_model_rel_error_40", 0.13), "off by 100s of %"]]
    out = f"{m.get('pde', 'fisher')}, {m.get('grid')}x{m.get('grid')} grid, {m.get('steps')} steps; " \
          f"training {_fmt(m.get('train_seconds'))} s, {m.get('parameters')} parameters.\n\n"
    return out + _table(["model", "relative L2 error after 40 steps", "out of band"], rows)


def _robustness(m: dict) -> str:
    rows = []
    eps = _get(m, "lipschitz.eps", [])
    for i, e in enumerate(eps):
        rows.append([e, _get(m, "lipschitz.pgd_accuracy")[i], _get(m, "lipschitz.certified_accuracy")[i],
                     _get(m, "baseline.pgd_accuracy")[i]])
    half = m.get("at_eps_half") or {}
    out = (f"{m.get('dataset')} ({m.get('net', 'pairs')} network): Lipschitz bound {_fmt(m.get('lipschitz_bound'))} "
           f"(baseline {_fmt(_get(m, 'baseline.lipschitz_bound'))}); clean accuracy "
           f"{_fmt(_get(m, 'lipschitz.clean_accuracy'))} vs {_fmt(_get(m, 'baseline.clean_accuracy'))}; at eps 0.5 "
           f"the 1-Lipschitz network leads the ResNet under PGD by {_fmt(half.get('lead'))}. "
           "Published (CIFAR-10, L2-PGD): non-expansive 0.65-0.69 at eps 0.5, unconstrained 0.35-0.43.\n\n")
    return out + _table(["eps", "1-Lipschitz PGD", "1-Lipschitz certified", "ResNet PGD"], rows)


def _presnov(m: dict) -> str:
    rows = [[name, d.get("quadrature_points"), d.get("max_defect"), d.get("max_tolerance"),
             d.get("negative_control_U_eq_half_x_dot_f")] for name, d in (m.get("decomposition") or {}).items()]
    out = "Presnov decomposition f = grad U + X_S: x . X_S(x) must vanish to round-off.\n\n"
    return out + _table(["field", "quadrature points", "max abs(x . X_S)", "tolerance", "control (wrong U)"], rows)


def _fisher_with_split(m: dict) -> str:
    out = _fisher(m)
    split = m.get("error_split")
    if split:
        out += ("\nOne-step error splitting (max over held-out states, max-norm): measured "
                f"{_fmt(split['measured_total']['max'])} <= bound {_fmt(split['bound_sum']['max'])} "
                f"[spatial {_fmt(split['spatial']['max'])}, classical {_fmt(split['classical']['max'])}, "
                f"network {_fmt(split['network_actual']['max'])} measured / {_fmt(split['network_bound']['max'])} "
                f"bounded]; holds on every state: {split['bound_holds_every_state']}; dominant term "
                f"{split['dominant_term_actual']} (measured), {split['dominant_term_bound']} (bound).\n")
    return out


SECTIONS = {"quickstart": _quickstart, "presnov": _presnov, "mass": _structure, "hamiltonian": _structure, "heat": _heat,
            "eigen": _eigen, "fisher": _fisher_with_split, "fisher_heat": _fisher_with_split, "robustness": _robustness}


def guarantee_rows(runs: dict) -> list[tuple]:
    """(experiment, network, property, defect, tolerance, passed) from every metrics.json that lists
    checks in the quickstart format, plus the structured-drift figures of the structure experiments."""
    rows = []
    for name, run in runs.items():
        m = _shown(run)[0] if run.get("metrics") else {}
        for label, net in (m.get("networks") or {}).items():
            for c in net.get("checks", []):
                rows.append((name, label, c["property"], c["defect"], c["tolerance"], c["passed"],
                             c.get("control_defect")))
        rows += _trained_checks(name, m)
    return rows


EPS = 2.220446049250313e-16


def _trained_checks(name: str, m: dict) -> list[tuple]:
    """Guarantees measured on the experiments' trained networks, each against C n eps (stated here) and
    next to the unstructured baseline's value as the control."""
    rows = []

    def add(network, prop, defect, tol, control):
        if defect is not None and tol is not None:
            rows.append((name, network, prop, defect, tol, defect <= tol, control))

    if name == "mass" and "structured_state_scale" in m:
        # drift of 1^T x over the rollout: C = 1, n = composed steps, relative to the state size
        add("MassPreserving (trained), rollout", f"LinearInvariant(ones), {m.get('composed_steps')} steps",
            m.get("structured_drift"), m["composed_steps"] * m["structured_state_scale"] * EPS,
            m.get("baseline_drift"))
    if name == "hamiltonian":
        # ||J^T Omega J - Omega|| of the trained 4-layer map of R^2: C = 10, n = layers * dim
        scale = max(1.0, m.get("structured_jacobian_norm") or 1.0) ** 2
        add("Hamiltonian/StormerVerlet (trained)", "Symplectic()", m.get("structured_symplecticity_defect"),
            10 * m.get("layers", 4) * 2 * EPS * scale, m.get("baseline_symplecticity_defect"))
    if name == "eigen" and "trajectories" in m:
        t = m["trajectories"]
        # relative drift of ||x|| over the Cayley trajectory: C = 10, n = steps
        add("Yi field, Cayley", f"QuadraticInvariant.norm(), {t.get('steps')} steps", t.get("max_norm_drift_cayley"),
            10 * t.get("steps", 1) * EPS, t.get("max_norm_drift_euler"))
    if name == "robustness" and "lipschitz_bound" in m:
        # the certified bound itself: excess over 1 (exact norms; C = 10, n = 1)
        bound = m["lipschitz_bound"]
        base = (m.get("baseline") or {}).get("lipschitz_bound")
        add("1-Lipschitz network (trained)", "Lipschitz(1): certified bound - 1", max(0.0, bound - 1.0),
            10 * EPS, None if base is None else max(0.0, base - 1.0))
    return rows


def _seed_table(summary: dict, command: str) -> str:
    """Per-seed rows of the headline numbers with their median and worst (the runner's summary)."""
    keys = list(summary.get("better", {}))
    rows = [[seed] + [row[k] for k in keys] for seed, row in summary["per_seed"].items()]
    rows += [["median"] + [summary["median"][k] for k in keys],
             ["worst"] + [f"{_fmt(summary['worst'][k])} (seed {summary['worst_seed'][k]})" for k in keys]]
    header = ["seed"] + [f"{k} ({'lower' if summary['better'][k] == 'min' else 'higher'} is better)" for k in keys]
    return f"Over seeds {summary['seeds']} (`{command}`):\n\n" + _table(header, rows) + "\n"


def _shown(run: dict) -> tuple[dict, Path, str]:
    """The metrics and folder a section shows: the run itself, or, for a multi-seed summary, its worst seed
    on the first headline number."""
    m, out = run["metrics"], Path(run["out"])
    if "per_seed" not in m:
        return m, out, ""
    seed = m["worst_seed"][next(iter(m["better"]))] if m.get("better") else m["seeds"][0]
    folder = out / f"seed_{seed}"
    label = "the worst seed" if m.get("better") else "seed"
    return json.loads((folder / "metrics.json").read_text()), folder, f"Details of {label} {seed}:\n\n"


def render(runs: dict, full: bool, seeds: str | None = None) -> str:
    command = "python -m experiments.run_all" + (" --full" if full else "") + (f" --seeds {seeds}" if seeds else "")
    out = ["# dynnets: results report", "",
           f"Mode: {'full (published scale)' if full else 'quick (--quick)'}"
           f"{f', seeds {seeds}' if seeds else ''}. Regenerate with `{command}`.", "",
           "| experiment | status | seconds |", "|---|---|---|"]
    for name, run in runs.items():
        out.append(f"| {name} | {'ok' if run['returncode'] == 0 else 'FAILED'} | {run['seconds']:.1f} |")
    out.append("")
    for name, run in runs.items():
        out += [f"## {name}", ""]
        if run["returncode"] != 0 or run["metrics"] is None:
            out += ["Failed:", "", "```", run["stderr"].strip()[-1500:], "```", ""]
            continue
        if run["metrics"].get("better"):
            module, options = VARIANTS.get(name, (name, []))
            one = " ".join([f"python -m experiments.{module}", *options]) + ("" if full else " --quick") + f" --seeds {seeds}"
            out.append(_seed_table(run["metrics"], one))
        metrics, folder, note = _shown(run)
        out.append(note + SECTIONS.get(name, _generic)(metrics))
        report_dir = Path(run["out"]).parent
        for png in sorted(folder.glob("*.png")):
            rel = os.path.relpath(png, report_dir)
            out += [f"![{name}: {png.stem}]({rel})", ""]
    out += ["## Every guarantee measured", "",
            "Each defect is measured in float64 and held to C·n·eps (C and n are stated in experiments/report.py "
            "and in each experiment). The control is the same fields with a method that does not preserve the "
            "property (quickstart) or the experiment's unstructured baseline network (trained rows).", "",
            "| experiment | network | property | defect | tolerance | confirmed | control defect |",
            "|---|---|---|---|---|---|---|"]
    for exp, net, prop, defect, tol, ok, ctrl in guarantee_rows(runs):
        ctrl = "-" if ctrl is None else f"{ctrl:.2e}"
        out.append(f"| {exp} | {net} | `{prop}` | {defect:.2e} | {tol:.2e} | {'yes' if ok else 'NO'} | {ctrl} |")
    return "\n".join(out) + "\n"
