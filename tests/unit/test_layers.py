"""The layering of the packages (docs/architecture.md), checked on the source itself.

Dependencies point downward only, ``serving`` never imports ``training``, nothing imports
``pipelines``, and no module imports one that imports it back, lazily (inside a function) or not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each package and what it may import from the project.
ALLOWED: dict[str, set[str]] = {
    "data_contracts": set(),
    "features": {"data_contracts"},
    "training": {"data_contracts", "features"},
    "serving": {"data_contracts", "features"},
    # The synthetic world; its simulator drives training and serving as a deployment would.
    "world": {"data_contracts", "features", "training", "serving"},
    "pipelines": {"data_contracts", "features", "training", "serving", "world"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Project modules ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ALLOWED}


def _graph() -> dict[str, set[str]]:
    modules = {
        _module_name(path): path for package in ALLOWED for path in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # "from features.views import x" names a module or an object in one: keep modules.
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_downward(package: str) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in ALLOWED[package] | {package}
    )
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)
