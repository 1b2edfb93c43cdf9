"""The import graph of ``controller/``: the engine and the kinds meet only in the contract.

Read from the source (every ``import`` and ``from ... import`` a module runs, at any depth, but not
those under ``if TYPE_CHECKING:``, which only the type checker follows). The contract imports
neither the engine nor any kind (the registry finds kinds by name at first use); the engine imports
no kind; a kind imports no engine module; and no two of the controller's packages import each other
in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "controller"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(path: Path, package: str) -> set[str]:
    """Modules ``path`` (in ``package``) imports when it runs (``if TYPE_CHECKING:`` left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name == "controller" or name.startswith("controller.")}


def _room(module: str) -> str:
    """``controller.engine.graph`` -> ``engine``; top-level modules are rooms of their own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_graph() -> dict[str, set[str]]:
    """Room -> the rooms it imports at run time."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        room = _room(module)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = {_room(name) for name in _runtime_imports(path, package)}
        graph.setdefault(room, set()).update(t for t in targets if t and t != room)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A path of imports from room ``start`` to room ``goal``, if there is one."""
    pending, seen = [[start]], {start}
    while pending:
        path = pending.pop()
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == goal:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                pending.append([*path, nxt])
    return None


def test_the_engine_and_the_kinds_meet_only_in_the_contract() -> None:
    graph = import_graph()
    assert "kinds" not in graph["engine"], graph["engine"]
    assert "engine" not in graph["kinds"], graph["kinds"]
    assert not {"engine", "kinds"} & graph["contract"], graph["contract"]
    assert "contract" in graph["engine"] and "contract" in graph["kinds"]
    assert _reaches(graph, "engine", "kinds") is None
    assert _reaches(graph, "kinds", "engine") is None


def test_no_two_rooms_import_each_other_in_a_cycle() -> None:
    graph = import_graph()
    cycles = sorted(
        " -> ".join(path) for room in graph if (path := _reaches(graph, room, room)) is not None
    )
    assert cycles == [], cycles


def test_the_reader_sees_imports_at_any_depth_and_skips_type_checking(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from controller.engine import graph\n"
        "else:\n    from . import plan\n"
        "def f():\n    from controller.kinds import base\n    return base\n",
        encoding="utf-8",
    )
    imports = _runtime_imports(module, "controller.contract")
    assert {"controller.kinds.base", "controller.contract.plan"} <= imports
    assert not any(name.startswith("controller.engine") for name in imports)
