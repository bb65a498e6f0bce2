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


# The facade (docs/architecture.md, "The facade"): ``Memwarden`` in core/service.py opens and
# closes; every operation is a method of a group in core/facade/, one module per concept.
FACADE = ("memwarden.core.service", "memwarden.core.facade", "memwarden.Memwarden")
BELOW_THE_FACADE = ("core", "audit", "observability", "db", "tlog")
# The doctor opens a Memwarden to check a store: it sits above the facade, like a face.
ABOVE_THE_FACADE = ("memwarden.core.service", "memwarden.core.facade", "memwarden.core.doctor")


def test_nothing_below_the_facade_imports_it() -> None:
    offenders: dict[str, list[str]] = {}
    for folder in BELOW_THE_FACADE:
        for path in (SRC / folder).rglob("*.py"):
            name = module_name(path)
            if name.startswith(ABOVE_THE_FACADE):
                continue
            found = sorted(m for m in imports(path) if m.startswith(FACADE))
            if found:
                offenders[name] = found
    assert offenders == {}


def test_the_facade_groups_never_import_the_class_they_make_up() -> None:
    """A group reaches another group's methods by subclassing it, never through the
    assembled class (which imports every group: a cycle)."""
    offenders = {
        module_name(path): sorted(m for m in imports(path) if m == "memwarden.core.service")
        for path in (SRC / "core" / "facade").glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_every_operation_lives_in_a_facade_group() -> None:
    from memwarden.core.service import Memwarden

    own = {
        name
        for name, value in vars(Memwarden).items()
        if callable(value) or isinstance(value, classmethod)
    }
    # core/service.py keeps only opening and closing the database's parts.
    assert own <= {"__init__", "_open", "init", "close", "__enter__", "__exit__", "_on_mutation"}
    homes = {
        name: klass.__module__
        for klass in Memwarden.__mro__[1:]
        for name, value in vars(klass).items()
        if callable(value) and not name.startswith("__")
    }
    assert homes, "no facade group found"
    outside = {n: m for n, m in homes.items() if not m.startswith("memwarden.core.facade.")}
    assert outside == {}


def test_the_facade_modules_stay_small() -> None:
    paths = [SRC / "core" / "service.py", *(SRC / "core" / "facade").glob("*.py")]
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in paths}
    assert {name: lines for name, lines in sizes.items() if lines > 400} == {}


def test_tables_are_imported_through_the_schema() -> None:
    """db/tables/ holds each concept's tables; only db/schema.py imports them, so whoever
    uses a table also has every table in ``schema.metadata`` (foreign keys name tables by
    string, and the migrations compare the whole schema)."""
    tables = SRC / "db" / "tables"
    offenders = {
        module_name(path): found
        for path in SRC.rglob("*.py")
        if tables not in path.parents and path != SRC / "db" / "schema.py"
        if (found := sorted(m for m in imports(path) if m.startswith("memwarden.db.tables")))
    }
    assert offenders == {}


def test_the_schema_exports_every_table() -> None:
    from memwarden.db import schema

    exported = {getattr(schema, name) for name in schema.__all__}
    assert set(schema.metadata.tables.values()) <= exported
