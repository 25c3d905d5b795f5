"""The import rules between the project's packages, read from the source with `ast`.

Every import counts, including the ones inside functions: a lazy import is still a door between
two rooms, it only opens later.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("conversations", "features", "models", "serving", "monitoring", "pipelines")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                yield f"{prefix}.{node.module}" if node.module else prefix
            elif node.module:
                yield node.module


def import_graph(root: str) -> dict[str, set[str]]:
    """Module → project modules it imports, for every .py file under `root`."""
    graph: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / root).rglob("*.py")):
        graph[_module_name(path)] = {
            name for name in _imported_modules(path) if name.split(".")[0] in PACKAGES
        }
    return graph


def imports_between(source: str, target: str) -> list[str]:
    """Every `module -> imported` edge from package `source` into package `target`."""
    return sorted(
        f"{module} -> {imported}"
        for module, imported_names in import_graph(source).items()
        for imported in imported_names
        if imported == target or imported.startswith(f"{target}.")
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the graph's own modules, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            target = imported if imported in graph else imported.rsplit(".", 1)[0]
            if target not in graph:
                continue
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("conversations", "features"),
        ("conversations", "models"),
        ("conversations", "serving"),
        ("conversations", "monitoring"),
        ("conversations", "pipelines"),
        ("features", "models"),
        ("features", "serving"),
        ("features", "monitoring"),
        ("features", "pipelines"),
        ("models", "serving"),
        ("models", "monitoring"),
        ("models", "pipelines"),
        ("monitoring", "serving"),
        ("monitoring", "pipelines"),
        ("serving", "monitoring"),
        ("serving", "pipelines"),
    ],
)
def test_a_lower_layer_never_imports_a_higher_one(lower: str, higher: str) -> None:
    assert imports_between(lower, higher) == []


def test_the_chat_tier_has_no_import_cycle() -> None:
    assert find_cycle(import_graph("serving/chat")) is None


def test_the_product_packages_have_no_import_cycle() -> None:
    graph = {name: edges for package in PACKAGES for name, edges in import_graph(package).items()}
    assert find_cycle(graph) is None
