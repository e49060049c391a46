"""The package's rooms: imports run one way into the core, and no module imports itself back.

Every import of a package module counts, module-level or inside a function, so a lazy import
cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_deepliif"
#: Rooms the engine side must never import (shells over the core).
SHELLS = ("cli", "server", "widget")
#: Core rooms, each allowed to import only the rooms listed (and the top-level modules).
CORE_IMPORTS = {
    "engine": {"engine", "models"},
    "models": {"models", "engine", "io"},
    "cells": {"cells"},
    "io": {"io", "cells"},
    "regions": {"regions", "engine", "cells", "io", "slides"},
    "slides": {"slides", "regions", "engine", "cells", "io"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node: ast.ImportFrom, name: str, path: Path) -> str:
    """The absolute module a (possibly relative) ``from ... import`` names."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, node.module] if node.module else package)


def imports() -> dict[str, set[str]]:
    """Module -> package modules it imports (``from X import y`` counts X.y when it is a module)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = absolute(node, name, path)
                if not base.startswith("napari_deepliif"):
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("napari_deepliif")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def test_no_import_cycles() -> None:
    graph = imports()
    # a package's __init__ re-exporting its own modules is not a cycle between modules
    edges = {m: {t for t in targets if not (t == m.rsplit(".", 1)[0] or m == t.rsplit(".", 1)[0])}
             for m, targets in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("core", sorted(CORE_IMPORTS))
def test_core_rooms_import_only_inwards(core: str) -> None:
    allowed = CORE_IMPORTS[core]
    wrong = sorted(f"{m} -> {t}" for m, targets in imports().items() if room(m) == core
                   for t in targets if room(t) is not None and room(t) not in allowed)
    assert not wrong, f"the {core} room imports rooms it must not:\n" + "\n".join(wrong)


def test_the_package_is_rooms_not_a_flat_list() -> None:
    flat = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(flat) <= 6, f"modules left at the top level: {flat}"
