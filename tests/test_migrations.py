"""Migrations: up to the heads, down to base (nothing left behind), up again, both engines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import migrate, schema
from memwarden.db.store import Store


def leftovers(store: Store) -> dict[str, list[str]]:
    """Every schema object in the database other than Alembic's own version table."""
    with store.engine.connect() as conn:
        if store.is_sqlite:
            rows = conn.execute(
                sa.text(
                    "SELECT type, name FROM sqlite_master "
                    "WHERE name NOT LIKE 'sqlite_%' AND tbl_name != 'alembic_version'"
                )
            )
            found: dict[str, list[str]] = {}
            for kind, name in rows:
                found.setdefault(kind, []).append(name)
            return found
        queries = {
            "table": "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name != 'alembic_version'",
            "sequence": "SELECT sequence_name FROM information_schema.sequences "
            "WHERE sequence_schema = current_schema()",
            "function": "SELECT p.proname FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE n.nspname = current_schema()",
            "type": "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd', 'c') "
            "AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)",
        }
        result = {kind: [r[0] for r in conn.execute(sa.text(sql))] for kind, sql in queries.items()}
        return {kind: names for kind, names in result.items() if names}


def tables(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_upgrade_downgrade_upgrade(settings: Settings) -> None:
    # Up to the heads, with data in every core table, through the library.
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.set_state("atlas", "schedule", "launch", "March")
        outcome = mw.ingest_text("atlas", "plan.md", "# Plan\n\nLaunch in March.")
        chunk = next(h for h in mw.recall("launch", "atlas") if h.kind == "chunk")
        old = mw.remember("atlas", "Launch in March", source_chunk_id=chunk.id, status="active")
        mw.supersede(old.memory.id, content="Launch in April")
        assert outcome.document_id is not None
    store = Store(settings)
    try:
        assert migrate.current_revisions(store) == migrate.head_revisions()
        core = {t.name for t in schema.metadata.sorted_tables} & {
            "memwarden_meta",
            "projects",
            "project_state",
            "documents",
            "source_chunks",
            "interactions",
            "memories",
            "ledger",
            "ledger_payloads",
        }
        assert core <= tables(store)

        migrate.downgrade(store, "base")
        assert leftovers(store) == {}
        assert tables(store) <= {"alembic_version"}
        assert migrate.current_revisions(store) == frozenset()

        # and up again, cleanly, to a working database
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
        migrate.check_schema(store)
    finally:
        store.dispose()
    fresh = settings.model_copy(update={"home": settings.home.parent / "home2"})
    with Memwarden.init(fresh) as mw:
        mw.add_project("atlas")
        memory = mw.remember("atlas", "Works after a round trip", status="active").memory
        assert [h.id for h in mw.recall("round trip", "atlas")] == [memory.id]
        assert mw.verify().ok


def test_each_revision_downgrades_on_its_own(settings: Settings) -> None:
    """Walk down one revision at a time (newest first) and back up, checking the heads."""
    store = Store(settings)
    try:
        migrate.upgrade(store)
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(migrate._config())
        revisions = list(script.walk_revisions())  # newest first, every branch
        for revision in revisions:
            migrate.downgrade(
                store, f"{revision.revision}@-1" if revision.down_revision else "base"
            )
        assert leftovers(store) == {}
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
    finally:
        store.dispose()


def test_init_is_idempotent(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Still here")
    with Memwarden.init(settings) as mw:
        assert [m.content for m in mw.list_memories()] == ["Still here"]
        assert mw.verify().ok


def _expected_difference(diff: object) -> bool:
    """The full-text structures live in the migrations only, per engine, by design."""
    if isinstance(diff, list):  # column modifications come grouped
        return all(_expected_difference(d) for d in diff)
    assert isinstance(diff, tuple)
    kind = diff[0]
    if kind == "remove_table":
        return "_fts" in diff[1].name
    if kind == "remove_column":
        return diff[3].name == "content_tsv"
    if kind == "remove_index":
        return "content_tsv" in diff[1].name
    return False


def test_schema_py_matches_the_migrations(settings: Settings) -> None:
    """schema.py declares what the migrations build: no table, column, index or type apart."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = Store(settings)
    try:
        migrate.upgrade(store)
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = [
                d for d in compare_metadata(context, schema.metadata) if not _expected_difference(d)
            ]
    finally:
        store.dispose()
    assert differences == []


def test_ledger_rowid_migration_keeps_the_chain(settings: Settings) -> None:
    """0008 rebuilds the ledger tables on SQLite (seq becomes the row id): down and up again
    with rows in them, the chain still verifies and the append-only guard is back."""
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        for index in range(5):
            mw.promote(mw.remember("atlas", f"Kept through the rebuild {index}").memory.id)
        head = mw.anchor()
    store = Store(settings)
    try:
        migrate.downgrade(store, "0008_ledger_rowid@-1")
        assert "0008_ledger_rowid" not in migrate.current_revisions(store)
        migrate.upgrade(store)
        with store.engine.connect() as conn:
            if store.is_sqlite:
                plan = conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT seq FROM ledger ORDER BY seq"
                ).all()
                assert "INDEX" not in " ".join(str(row[-1]) for row in plan)
                types = {
                    row[1]: row[2] for row in conn.exec_driver_sql("PRAGMA table_info(ledger)")
                }
                assert types["seq"] == "INTEGER"
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                conn.execute(sa.update(schema.ledger).values(actor="mallory"))
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        report = mw.verify()
        assert report.ok, report.reason
        assert report.head == head
