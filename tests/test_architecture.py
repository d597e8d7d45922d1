"""The layers of builder/ (docs/architecture.md): imports go only downward, and never in a cycle.

The contracts live in pyproject.toml (``[tool.importlinter]``), so ``lint-imports`` on the
command line checks exactly what this test checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_every_import_contract_is_kept() -> None:
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "5 kept, 0 broken" in r.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    """The contract can fail: a plan module importing the runner is reported by name."""
    for pkg in ("builder", "patterns"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    graph = tmp_path / "builder" / "plan" / "graph.py"
    graph.write_text(graph.read_text() + "\nfrom builder.runner import run  # noqa\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "builder.plan.graph -> builder.runner" in r.stdout


def test_no_module_imports_another_in_a_cycle() -> None:
    # An import inside a function (or under TYPE_CHECKING) is still a dependency: grimp sees
    # them all, so a cycle cannot hide in a function body.
    graph = grimp.build_graph("builder", "patterns", cache_dir=None)
    g = nx.DiGraph()
    for module in graph.modules:
        g.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            g.add_edge(module, imported)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert cycles == [], f"import cycles: {cycles}"
