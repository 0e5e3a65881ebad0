"""The layering holds: only the repositories (and the database plumbing under `backend/db/`)
speak MongoDB, and the packages import one another without cycles.

Read from the source, so a route given a raw query fails here before any review sees it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parent.parent / "backend"
#: The layers above the repositories: they call services or repositories, never the driver.
UPPER_LAYERS = ("api", "services", "sync")
DRIVER_MODULES = ("pymongo", "gridfs", "motor", "bson.son")
#: The generic query methods of `Repository`, for subclasses only.
PROTECTED_REPOSITORY_METHODS = frozenset({
    "_find", "_find_one", "_find_raw", "_page", "_count", "_exists", "_aggregate", "_collection",
})


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (BACKEND / package).rglob("*.py"))


def driver_uses(source: str) -> list[str]:
    """Each place in a module that speaks MongoDB itself, as 'line: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in DRIVER_MODULES or a.name in DRIVER_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in DRIVER_MODULES:
                found.append(f"{line}: from {node.module} import")
            if node.module == "backend.repositories._errors":
                found.append(f"{line}: driver error mapping imported")
        elif isinstance(node, ast.Name) and node.id == "driver_errors":
            found.append(f"{line}: driver_errors")
        elif isinstance(node, ast.Attribute) and (
                node.attr == "collection" or node.attr in PROTECTED_REPOSITORY_METHODS):
            found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.Subscript) and (
                (isinstance(node.value, ast.Name) and node.value.id == "db")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "db")):
            found.append(f"{line}: db[...]")
    return found


@pytest.mark.parametrize("path", _modules(*UPPER_LAYERS),
                         ids=lambda p: str(p.relative_to(BACKEND)))
def test_no_module_above_the_repositories_speaks_mongodb(path: Path) -> None:
    assert driver_uses(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("raw_query", [
    'async def route(services):\n    return await services.repos.users._find({"a": 1})\n',
    "from pymongo import DESCENDING\n",
    "async def route(db):\n    return await db['users'].find_one({})\n",
    "async def route(services):\n    return await services.users.repo.collection.find_one()\n",
    "from backend.repositories._errors import driver_errors\n",
])
def test_the_check_catches_a_raw_query(raw_query: str) -> None:
    assert driver_uses(raw_query) != []


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def import_graph() -> dict[str, dict[str, str]]:
    """package -> imported package -> one module that imports it (function-level imports
    included: a cycle hidden in a function is still a cycle)."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for path in BACKEND.rglob("*.py"):
        module = ".".join(path.relative_to(BACKEND.parent).with_suffix("").parts)
        source = _package(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                target = _package(name)
                if name.startswith("backend.") and target != source:
                    graph[source].setdefault(target, module)
    return graph


def test_packages_import_one_another_without_cycles() -> None:
    graph = import_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, {}))
        return False

    cycles = [f"{a} -> {b} (in {via})" for a, targets in graph.items()
              for b, via in targets.items() if reaches(b, a)]
    assert cycles == []


def test_the_database_plumbing_never_imports_the_repositories() -> None:
    assert "backend.repositories" not in import_graph().get("backend.db", {})
