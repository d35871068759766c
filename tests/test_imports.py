"""Every module of mlprod imports on its own, and mlprod's modules import each other without a cycle.

Two checks. The import graph is read from the source (``ast``): a cycle among mlprod's modules is
refused whether its imports sit at the top of a module or inside a function (a function-level
import only hides a cycle until the function runs). Then each module is imported on its own, in
a fresh interpreter: one interpreter for all of them, with every ``mlprod`` and ``server`` module
dropped from ``sys.modules`` before each import, so each starts alone while the third-party
libraries stay loaded (a fresh interpreter per module would take a minute).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mlprod

PACKAGE = Path(mlprod.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    """Map each module's dotted name to its file, for every ``.py`` under ``mlprod/``."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["mlprod", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The mlprod modules ``module`` imports anywhere in its file (top level or in a function).

    ``from package import submodule`` depends on the submodule alone: Python finds it once it is
    imported, even while the package's ``__init__`` is still running.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    out.add(f"{base}.{alias.name}")
                elif base in modules:
                    out.add(base)
    out.discard(module)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while component[-1:] != [v]:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_mlprod_modules_import_each_other_without_a_cycle():
    modules = _modules()
    graph = {m: _imported(m, p, modules) for m, p in modules.items()}
    cycles = _cycles(graph)
    detail = "; ".join(
        " ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles)
    assert not cycles, (
        f"Import cycles among mlprod's modules: {cycles}. Edges: {detail}. Move what both sides "
        "need into a module that imports neither.")


_IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("mlprod", "server")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_module_imports_on_its_own():
    # __main__ modules run their command when imported; they are covered by the graph above.
    names = [m for m in _modules() if not m.endswith(".__main__")]
    done = subprocess.run([sys.executable, "-c", _IMPORT_EACH, json.dumps(names)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    failed = json.loads(done.stdout.splitlines()[-1])
    assert not failed, "Modules that fail to import on their own:\n" + "\n".join(
        f"{name}:\n{error}" for name, error in failed.items())
