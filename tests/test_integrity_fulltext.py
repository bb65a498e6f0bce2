"""The integrity scan checks the full-text indexes against their rows, and ``--fix`` rebuilds a
broken one as an audited repair. Both engines, each index broken for real."""

from __future__ import annotations

import sqlalchemy as sa

from integrity_support import counts, finding
from ledger_support import ledger_rows
from memwarden import Memwarden


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
