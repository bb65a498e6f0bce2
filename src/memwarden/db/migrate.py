"""Schema migrations through Alembic, run programmatically against the store's engine.

The revisions form a branch model: each stands on ``0001`` (unless it needs another), so a
current database is at several heads at once. ``upgrade`` goes to all of them; ``downgrade``
to any revision, ``base`` included. Before a downgrade, ``plan_downgrade`` runs it inside a
transaction it rolls back, and reports what it would drop (tables and the rows in them), so a
caller can ask for confirmation and refuse to lose the ledger without being told to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, func, inspect, select, table

from memwarden.db.engine import ensure_pg_schema
from memwarden.db.schema import metadata
from memwarden.db.store import Store
from memwarden.errors import InvalidInputError, SchemaMismatchError

MIGRATIONS = Path(__file__).with_name("migrations")
ALEMBIC_INI = MIGRATIONS / "alembic.ini"
VERSION_TABLE = "alembic_version"
# The ledger's own tables: a downgrade that drops rows of these destroys the audit trail.
LEDGER_TABLES = frozenset({"ledger", "ledger_payloads"})
# SQLite's full-text index tables (memories_fts, chunks_fts and their shadows) hold what the
# indexed tables hold: not counted as data a downgrade loses.
_DERIVED = re.compile(r"_fts(_[a-z]+)?$")


def _config(conn: Connection | None = None, settings: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        config.attributes["connection"] = conn
    if settings is not None:
        # For revisions that need more than the database (0010_row_macs: the ledger key).
        config.attributes["settings"] = settings
    return config


@cache
def _script() -> ScriptDirectory:
    # Loaded once per process: reading the revision files is most of what a migration costs
    # on a small database (tests open hundreds).
    return ScriptDirectory.from_config(_config())


def head_revisions() -> frozenset[str]:
    """The revisions a current database is at (several while features grow side by side)."""
    return frozenset(_script().get_heads())


def known_revisions() -> set[str]:
    return {rev.revision for rev in _script().walk_revisions()}


def revisions() -> list[Script]:
    """Every revision, parents before their children, then by id (0001, 0002_alerts, …)."""
    found = {rev.revision: rev for rev in _script().walk_revisions()}

    def depth(rev: Script) -> int:
        down = rev.down_revision
        parents = (down,) if isinstance(down, str) else tuple(down or ())
        return 1 + max((depth(found[p]) for p in parents), default=-1)

    return sorted(found.values(), key=lambda rev: (depth(rev), rev.revision))


def current_revisions(store: Store) -> frozenset[str]:
    with store.read() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


@dataclass(frozen=True)
class Change:
    """What an upgrade or a downgrade did: the revisions before and after."""

    before: frozenset[str]
    after: frozenset[str]

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def to_dict(self) -> dict[str, Any]:
        return {"before": sorted(self.before), "after": sorted(self.after)}


def upgrade(store: Store, target: str = "heads") -> Change:
    """Apply the migrations up to ``target`` (every head by default); creates the store's
    PostgreSQL schema first when it is missing."""
    if store.settings.resolved_pg_schema:
        with store.write() as unit:
            ensure_pg_schema(unit.conn, store.settings.resolved_pg_schema)
    before = current_revisions(store)
    _refuse_newer(before, head_revisions())
    script = _script()
    _check_target(target)
    _run(store, target, lambda rev: script._upgrade_revs(target, rev))
    return Change(before, current_revisions(store))


def downgrade(store: Store, target: str = "base") -> Change:
    before = current_revisions(store)
    _refuse_newer(before, head_revisions())
    script = _script()
    _check_target(target)
    _run(store, target, lambda rev: script._downgrade_revs(target, rev))
    return Change(before, current_revisions(store))


@dataclass
class DowngradePlan:
    """What ``downgrade(target)`` would do, found by doing it and rolling it back."""

    target: str
    before: frozenset[str]
    after: frozenset[str]
    undone: list[str]  # the revisions it would undo, newest first
    # table -> rows it holds now, for every table the downgrade drops or empties
    rows_lost: dict[str, int] = field(default_factory=dict)

    @property
    def drops_ledger(self) -> bool:
        return any(self.rows_lost.get(name, 0) for name in LEDGER_TABLES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "before": sorted(self.before),
            "after": sorted(self.after),
            "undone": self.undone,
            "rows_lost": self.rows_lost,
            "drops_ledger": self.drops_ledger,
        }


def plan_downgrade(store: Store, target: str) -> DowngradePlan:
    """Run the downgrade in a transaction, look at what is gone, and roll it all back.

    Both engines roll back DDL, so nothing changes; what the plan reports is what the real
    downgrade will drop, whatever revisions the migrations directory holds."""
    before = current_revisions(store)
    _refuse_newer(before, head_revisions())
    _check_target(target)
    script = _script()
    with store.connect() as conn:
        transaction = conn.begin()
        try:
            counts = _row_counts(conn)
            _run_on(conn, target, lambda rev: script._downgrade_revs(target, rev))
            after = frozenset(MigrationContext.configure(conn).get_current_heads())
            remaining = _row_counts(conn)
        finally:
            transaction.rollback()
    lost = {
        name: rows
        for name, rows in counts.items()
        if rows and (name not in remaining or remaining[name] < rows)
    }
    undone = [
        rev.revision
        for rev in _script().walk_revisions()
        if _applied(rev.revision, before) and not _applied(rev.revision, after)
    ]
    return DowngradePlan(target, before, after, undone, lost)


def _applied(revision: str, heads: frozenset[str]) -> bool:
    """Whether ``revision`` is applied in a database at ``heads`` (itself or an ancestor)."""
    script = _script()
    return any(
        revision in {r.revision for r in script.iterate_revisions(head, "base")} for head in heads
    )


def _row_counts(conn: Connection) -> dict[str, int]:
    found = [
        name
        for name in inspect(conn).get_table_names()
        if name != VERSION_TABLE and not _DERIVED.search(name)
    ]
    return {
        name: int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())
        for name in found
    }


def _check_target(target: str) -> None:
    """A clear refusal for a revision that does not exist (Alembic's own error is a trace)."""
    if target in {"heads", "head", "base"} or "@" in target or re.search(r"[+-]\d+$", target):
        return  # Alembic's own names and relative steps: checked when the plan is made
    try:
        _script().get_revisions(target)
    except CommandError as exc:
        raise InvalidInputError(f"no such schema revision {target!r}: {exc}") from None


def _run(store: Store, target: str, steps: Callable[[Any], Any]) -> None:
    with store.connect() as conn, conn.begin():
        _run_on(conn, target, steps, store.settings)


def _run_on(
    conn: Connection, target: str, steps: Callable[[Any], Any], settings: Any = None
) -> None:
    """What ``alembic upgrade``/``downgrade`` do, with the cached script directory, on a
    connection already in a transaction (the caller commits or rolls back)."""

    def plan(revision: Iterable[str], _context: MigrationContext) -> Any:
        try:
            return steps(revision)
        except CommandError as exc:
            raise InvalidInputError(f"cannot migrate to {target!r}: {exc}") from None

    config = _config(conn, settings)
    with EnvironmentContext(config, _script(), fn=plan, destination_rev=target) as context:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


def check_schema(store: Store) -> None:
    """Refuse to serve a database at another schema version than this code's."""
    current = current_revisions(store)
    heads = head_revisions()
    if current == heads:
        return
    if not current:
        raise SchemaMismatchError(
            "the database is not initialised: run `memwarden init` to create its schema"
        )
    _refuse_newer(current, heads)
    raise SchemaMismatchError(
        f"the database is at schema {names(current)}, older than this memwarden "
        f"(schema {names(heads)}): run `memwarden init` (or `memwarden db upgrade`) to upgrade it"
    )


def _refuse_newer(current: frozenset[str], heads: frozenset[str]) -> None:
    """A revision this code does not know comes from a newer memwarden: never touch it."""
    if current - known_revisions():
        raise SchemaMismatchError(
            f"the database is at schema {names(current)}, newer than this memwarden "
            f"(schema {names(heads)}): upgrade memwarden; refusing to touch it"
        )


def names(revisions: frozenset[str]) -> str:
    return "+".join(sorted(revisions)) or "(none)"
