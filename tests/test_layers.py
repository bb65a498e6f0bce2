"""The layering docs/architecture.md promises, checked on the source (every import, including
those inside functions and under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from pathlib import Path

import memwarden

SRC = Path(memwarden.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports; ``from pkg import name`` counts as ``pkg.name`` too (a
    submodule, when it is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_dashboard_never_imports_the_api() -> None:
    """web/ and api/ are both faces: what they share lives below them, in serving/."""
    offenders = {
        module_name(path): sorted(m for m in imports(path) if m.startswith("memwarden.api"))
        for path in (SRC / "web").rglob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}
    shared = {module_name(p) for p in (SRC / "serving").glob("*.py")}
    assert {"memwarden.serving.auth", "memwarden.serving.errors"} <= shared
    for path in (SRC / "serving").glob("*.py"):
        faces = ("memwarden.api", "memwarden.web", "memwarden.cli", "memwarden.mcp")
        assert not [m for m in imports(path) if m.startswith(faces)], path.name


def test_the_operation_log_has_no_import_cycle() -> None:
    package = SRC / "audit" / "oplog"
    modules = {module_name(p): p for p in package.glob("*.py") if p.name != "__init__.py"}
    graph = {name: imports(path) & set(modules) for name, path in modules.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for name in sorted(graph) if (c := cycle_from(name)) is not None]
    assert cycles == []
