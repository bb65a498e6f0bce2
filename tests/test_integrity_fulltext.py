"""The integrity scan checks the full-text indexes against their rows, and ``--fix`` rebuilds a
broken one as an audited repair. Both engines, each index broken for real."""

from __future__ import annotations

import sqlalchemy as sa

from conftest import raw_sqlite_connect
from integrity_support import counts, finding
from ledger_support import ledger_rows
from memwarden import Memwarden, Settings
from memwarden.core import doctor
from memwarden.db.engine import sqlite_path


def _break_index(mw: Memwarden) -> None:
    """SQLite: a ghost entry in the FTS5 index with no row behind it. PostgreSQL: the GIN
    index marked invalid, as a failed concurrent build leaves it."""
    with mw.store.engine.connect() as conn:
        if mw.store.is_sqlite:
            conn.exec_driver_sql(
                "INSERT INTO memories_fts(rowid, content) VALUES (999999, 'ghost words')"
            )
        else:
            conn.exec_driver_sql(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
                "CAST('ix_memories_content_tsv' AS regclass)"
            )
        conn.commit()


def test_a_broken_fulltext_index_is_found_and_rebuilt(mw: Memwarden) -> None:
    kept = mw.remember("atlas", "The rover has six wheels", status="active").memory
    clean = mw.integrity_check()
    fulltext = next(c for c in clean.checks if c.name == "fulltext_index")
    assert fulltext.status == "ok" and fulltext.scanned == 2

    _break_index(mw)
    report = mw.integrity_check()
    found = finding(report, "fulltext_index")
    assert found.severity == "critical" and found.count == 1
    assert "memories" in found.examples[0] and "--fix" in found.message

    fixed = mw.integrity_check(fix=True)
    assert [(r.check, r.action, r.applied) for r in fixed.repairs] == [
        ("fulltext_index", "rebuild index", True)
    ]
    assert counts(fixed) == {}
    rebuilt = [r for r in ledger_rows(mw) if r["entity_type"] == "index"]
    assert [(r["action"], r["actor"], r["entity_id"]) for r in rebuilt] == [
        ("rebuilt", "integrity-repair", "memories")
    ]
    assert [h.id for h in mw.recall("six wheels", "atlas")] == [kept.id]
    assert not [h for h in mw.recall("ghost words", "atlas")]
    with mw.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM memories")).scalar_one() == 1
    assert mw.verify().ok


def test_a_locked_database_is_not_a_broken_index(settings: Settings, engine_name: str) -> None:
    """SQLite's index check is an INSERT command: while another writer holds the lock past the
    busy timeout, doctor says the index was not checked, never that it is broken (which would
    send an operator to rebuild a sound one). Seen in CI while a large load filled the disk."""
    if engine_name != "sqlite":
        return
    quick = settings.model_copy(update={"sqlite_busy_timeout_ms": 200})
    with Memwarden.init(quick) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "The rover has six wheels", status="active")
    holder = raw_sqlite_connect(sqlite_path(quick.resolved_database_url))
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer, holding the write lock
        checks = {c.name: c for c in doctor.run(quick).results}
        assert checks["fulltext_index"].status == "warn"
        assert "not checked" in checks["fulltext_index"].detail
    finally:
        holder.rollback()
        holder.close()
    checks = {c.name: c for c in doctor.run(quick).results}
    assert checks["fulltext_index"].status == "ok"
