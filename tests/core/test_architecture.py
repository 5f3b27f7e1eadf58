"""The layout's rules (docs/architecture.md), checked statically: layers import only downwards, no import
cycles (imports inside functions included), `import dynnets` loads neither the runtime nor the
applications."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "dynnets"
ORDER = {"core": 0, "fields": 1, "methods": 1, "systems": 1, "constraints": 2, "solvers": 2, "networks": 2, "train": 3,
         "applications": 4}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(name: str, path: Path, mods: dict) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module if not node.level else (f"{base}.{node.module}" if node.module else base)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in mods else module)
    return {m for m in found if m in mods}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package's __init__ (it gathers the public names)
    return parts[1] if parts[1] in ORDER else "core"


def test_layers_import_only_downwards_and_modules_have_no_cycles():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    upward = []
    for m, targets in graph.items():
        for t in targets:
            a, b = _layer(m), _layer(t)
            if a and b and ORDER[b] > ORDER[a]:
                upward.append(f"{m} -> {t}")
            if a and b and a != b and ORDER[a] == ORDER[b]:
                upward.append(f"{m} -> {t} (fields, methods and systems never import each other)")
    assert not upward, upward
    # no cycle among modules (depth-first search for a back edge)
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(t):] + [t])}")
            if t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in graph:
        if m not in state and _layer(m):
            visit(m, [m])


@pytest.mark.slow
def test_import_dynnets_loads_neither_the_runtime_nor_the_applications():
    code = ("import sys, torch; before = set(sys.modules); import dynnets; "
            "new = sorted(m for m in set(sys.modules) - before if m.startswith(('dynnets.train', "
            "'dynnets.applications', 'tqdm'))); print(new)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


