"""Rendering results/REPORT.md from the experiments' metrics.json files.

Each experiment gets a section: its key numbers next to the seed's (where the seed reports any), then
its figures. A final table lists every guarantee measured (property, network, defect, tolerance).
Section writers are keyed by experiment name; an experiment without one gets its scalar metrics listed.
"""

from __future__ import annotations

import os
from pathlib import Path


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


def _quickstart(m: dict) -> str:
    return "Guarantees of the demonstration networks are listed in the guarantee table below.\n"


SECTIONS = {"quickstart": _quickstart}


def guarantee_rows(runs: dict) -> list[tuple]:
    """(experiment, network, property, defect, tolerance, passed) from every metrics.json that lists
    checks in the quickstart format, plus the structured-drift figures of the structure experiments."""
    rows = []
    for name, run in runs.items():
        m = run.get("metrics") or {}
        for label, net in (m.get("networks") or {}).items():
            for c in net.get("checks", []):
                rows.append((name, label, c["property"], c["defect"], c["tolerance"], c["passed"],
                             c.get("control_defect")))
        for check in m.get("guarantee_checks", []):
            rows.append((name, check["network"], check["property"], check["defect"], check["tolerance"],
                         check["defect"] <= check["tolerance"], check.get("control_defect")))
    return rows


def render(runs: dict, full: bool) -> str:
    out = ["# dynnets: results report", "",
           f"Mode: {'full (published scale)' if full else 'quick (--quick)'}. "
           "Regenerate with `python -m experiments.run_all" + (" --full" if full else "") + "`.", "",
           "| experiment | status | seconds |", "|---|---|---|"]
    for name, run in runs.items():
        out.append(f"| {name} | {'ok' if run['returncode'] == 0 else 'FAILED'} | {run['seconds']:.1f} |")
    out.append("")
    for name, run in runs.items():
        out += [f"## {name}", ""]
        if run["returncode"] != 0 or run["metrics"] is None:
            out += ["Failed:", "", "```", run["stderr"].strip()[-1500:], "```", ""]
            continue
        out.append(SECTIONS.get(name, _generic)(run["metrics"]))
        report_dir = Path(run["out"]).parent
        for png in sorted(Path(run["out"]).glob("*.png")):
            rel = os.path.relpath(png, report_dir)
            out += [f"![{name}: {png.stem}]({rel})", ""]
    out += ["## Every guarantee measured", "",
            "Each defect is measured in float64 and held to C·n·eps; the control is the same fields with a method "
            "that does not preserve the property.", "",
            "| experiment | network | property | defect | tolerance | confirmed | control defect |",
            "|---|---|---|---|---|---|---|"]
    for exp, net, prop, defect, tol, ok, ctrl in guarantee_rows(runs):
        ctrl = "-" if ctrl is None else f"{ctrl:.2e}"
        out.append(f"| {exp} | {net} | `{prop}` | {defect:.2e} | {tol:.2e} | {'yes' if ok else 'NO'} | {ctrl} |")
    return "\n".join(out) + "\n"
