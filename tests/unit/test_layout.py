"""The package's shape: no import cycles, so each family can be read on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_llmeval

PACKAGE = Path(pytest_llmeval.__file__).parent


def imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports, anywhere in its code."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
        graph[name] = found - {name}
    return graph


def test_the_package_has_no_import_cycles() -> None:
    graph = imports()
    assert {"pytest_llmeval.calls.client", "pytest_llmeval.calls.retry"} <= graph.keys()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join([*path[path.index(name) :], name])
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
