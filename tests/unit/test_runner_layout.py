"""The runner's module graph: no import cycles (lazy imports included), one role per module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "runner" / "aiassistant_runner"


def _imports(path: Path) -> set[str]:
    """The package modules `path` imports, at module level or inside functions (not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or node.level != 1:
            continue
        if node.module:
            found.add(node.module.split(".")[0])
        else:  # from . import a, b
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: _imports(p) & modules for p in PACKAGE.glob("*.py")}


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "llm_client" in graph["text_engine"] and "wiring" in graph["app"]


def test_no_import_cycles() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = " -> ".join((*path[path.index(module) :], module))
            pytest.fail(f"import cycle: {cycle}")
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_no_module_is_a_service_locator() -> None:
    """No object is handed to every part: the wiring's Runner reaches only the app and the
    processes' entry points: the CLI, the server it runs, the worker processes (workers.py)."""
    users = sorted(
        p.stem
        for p in PACKAGE.glob("*.py")
        if "wiring" in _imports(p) and p.stem not in ("app", "__main__", "server", "workers", "wiring")
    )
    assert users == []
