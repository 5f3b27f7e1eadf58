"""The code blocks of README.md and docs/*.md run, and the outputs they show are what the code gives.

Every ```python block of a file runs, in order, in one namespace per file (so a later block may use an
earlier one's names), in a temporary working directory, with torch's seed 0 at the start of the file.
A statement whose last line ends in ``# -> TEXT`` (optionally followed by ``  # prose``) is evaluated and
``repr`` of its value must equal TEXT;
``# raises NAME`` means the statement must raise an exception of that class (or a subclass); every other
comment is prose. A block preceded by the line ``<!-- doctest: skip (reason) -->`` is not run (a GPU,
torchrun): the reason is part of the page.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(<!-- doctest: skip[^\n]*-->\n)?```python\n(.*?)```", re.S)
SHOWN = re.compile(r"#\s*->\s*(.*?)\s*(?:\s#\s.*)?$")
RAISES = re.compile(r"#\s*raises\s+([A-Za-z_][A-Za-z_0-9]*)")


def blocks(page: Path) -> list[tuple[int, str]]:
    """(first line number, source) of each block of ``page`` that runs."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) is None:
            out.append((text[: m.start(2)].count("\n") + 1, m.group(2)))
    return out


def _check_statement(node, lines, namespace, where):
    last = lines[node.end_lineno - 1]
    shown, raises = SHOWN.search(last), RAISES.search(last)
    code = compile(ast.Module([node], []) if not shown else ast.Expression(node.value), where,
                   "exec" if not shown else "eval")
    if raises:
        with pytest.raises(Exception) as info:
            exec(code, namespace)
        names = {cls.__name__ for cls in type(info.value).__mro__}
        assert raises.group(1) in names, f"{where}: raised {type(info.value).__name__}, the page says {raises.group(1)}"
        return
    if shown:
        assert isinstance(node, ast.Expr), f"{where}: '# ->' needs an expression"
        got = repr(eval(code, namespace))
        assert " ".join(got.split()) == " ".join(shown.group(1).split()), f"{where}: shows {shown.group(1)}, gives {got}"
        return
    exec(code, namespace)


def run_page(page: Path, tmp_path: Path) -> int:
    namespace: dict = {"__name__": "__doc__"}
    torch.manual_seed(0)
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        count = 0
        for first, source in blocks(page):
            lines = source.splitlines()
            for node in ast.parse(source).body:
                _check_statement(node, lines, namespace, f"{page.name}:{first + node.lineno - 1}")
                count += 1
        return count
    finally:
        os.chdir(here)


#: pages whose blocks train or search (tens of seconds): in the full suite, not the fast loop
SLOW_PAGES = {"eigen.md", "training.md", "gpu.md"}


@pytest.mark.parametrize("page", [pytest.param(p, marks=[pytest.mark.slow] if p.name in SLOW_PAGES else [])
                                  for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_the_pages_code_runs_and_shows_what_it_gives(page, tmp_path):
    assert run_page(page, tmp_path) > 0


def test_negative_control_a_wrong_shown_output_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\n1 + 1   # -> 3\n```\n")
    with pytest.raises(AssertionError, match="shows 3, gives 2"):
        run_page(page, tmp_path)
    page.write_text("```python\n1 + 1   # raises ZeroDivisionError\n```\n")
    with pytest.raises(pytest.fail.Exception):
        run_page(page, tmp_path)
