"""Schema migrations through Alembic, run programmatically against the store's engine."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from memwarden.db.schema import metadata
from memwarden.db.store import Store
from memwarden.errors import SchemaMismatchError

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        config.attributes["connection"] = conn
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


def current_revisions(store: Store) -> frozenset[str]:
    with store.read() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def upgrade(store: Store, target: str = "heads") -> None:
    _refuse_newer(current_revisions(store), head_revisions())
    script = _script()
    _run(store, target, lambda rev: script._upgrade_revs(target, rev))


def downgrade(store: Store, target: str = "base") -> None:
    script = _script()
    _run(store, target, lambda rev: script._downgrade_revs(target, rev))


def _run(store: Store, target: str, steps: Any) -> None:
    """What ``alembic upgrade``/``downgrade`` do, with the cached script directory."""

    def plan(revision: Iterable[str], _context: MigrationContext) -> Any:
        return steps(revision)

    with store.engine.begin() as conn:
        config = _config(conn)
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
        f"the database is at schema {_names(current)}, older than this memwarden "
        f"(schema {_names(heads)}): run `memwarden init` to upgrade it"
    )


def _refuse_newer(current: frozenset[str], heads: frozenset[str]) -> None:
    """A revision this code does not know comes from a newer memwarden: never touch it."""
    if current - known_revisions():
        raise SchemaMismatchError(
            f"the database is at schema {_names(current)}, newer than this memwarden "
            f"(schema {_names(heads)}): upgrade memwarden; refusing to touch it"
        )


def _names(revisions: frozenset[str]) -> str:
    return "+".join(sorted(revisions))
