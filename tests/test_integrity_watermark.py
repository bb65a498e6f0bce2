"""Incremental scans on PostgreSQL check the row MACs and full-text vectors of the rows written
since the previous scan alone (those its snapshot could not see, by their ``xmin``), and still
find every drift: a raw edit, a tampered row reported before, a changed text search
configuration. SQLite has no row versions: every row, every scan, as before. Both engines."""

from __future__ import annotations

import sqlalchemy as sa

from integrity_support import counts, raw
from memwarden import Memwarden
from memwarden.db import schema
from memwarden.observability.integrity.context import Snapshot
from memwarden.observability.integrity.findings import CheckResult

M = schema.memories


def _scanned(checks: list[CheckResult], name: str) -> int:
    return next(c.scanned for c in checks if c.name == name)


def test_incremental_row_macs_read_only_the_rows_written_since(mw: Memwarden) -> None:
    ids = [mw.remember("atlas", f"Fact number {i}", status="active").memory.id for i in range(6)]
    first = mw.integrity_check()
    assert first.status == "clean" and _scanned(first.checks, "row_macs") == 6
    assert (first.run.row_snapshot is None) == mw.store.is_sqlite

    mw.reinforce(ids[0])
    second = mw.integrity_check()
    assert second.status == "clean"
    # PostgreSQL: the reinforced row alone, unless a transaction older than some of the other
    # rows was still running at the first scan (another client of this shared server): then
    # those rows may be unseen and count as new too. SQLite: every row.
    assert _scanned(second.checks, "row_macs") == _expected(mw, first.run.row_snapshot, 1, 6)

    # A raw edit makes a new row version: the next incremental scan checks it and finds it.
    with raw(mw) as conn:
        conn.execute(sa.update(M).where(M.c.id == ids[4]).values(content="Rewritten"))
    # (The replay may see it too: its row was updated within the replay's look-back.)
    assert counts(mw.integrity_check())["tampered_memories"] == 1
    # Reported again by the next scan though nothing changed since (a finding means every row
    # again), and by a full scan.
    again = mw.integrity_check()
    assert counts(again)["tampered_memories"] == 1
    assert _scanned(again.checks, "row_macs") == 6
    assert counts(mw.integrity_check(full=True)) == {
        "tampered_memories": 1,
        "audit_gap_replay": 1,
    }
    assert counts(mw.integrity_check(fix=True)) == {}
    assert mw.integrity_check().status == "clean"


def _expected(mw: Memwarden, snapshot: str | None, changed: int, rows: int) -> int:
    if mw.store.is_sqlite:
        return rows
    assert snapshot is not None
    parsed = Snapshot.parse(snapshot)
    assert parsed is not None
    with mw.store.engine.connect() as conn:
        written = [
            int(x)
            for x in conn.exec_driver_sql("SELECT CAST(xmin AS text) FROM memories").scalars()
        ]
    # Test servers are far from transaction id wraparound: 32-bit ids compare as numbers.
    # The changed rows, and any row the first scan may not have seen: written at or after the
    # oldest transaction still running then (on a quiet server, none).
    unseen = sum(1 for x in written if x >= parsed.xmin % 2**32)
    assert changed <= unseen <= rows
    return unseen


def test_a_changed_text_search_configuration_is_found_incrementally(mw: Memwarden) -> None:
    """Every stored vector goes stale with no row rewritten: the incremental check sees the
    catalog change and compares every row (PostgreSQL; SQLite's check is FTS5's own)."""
    mw.remember("atlas", "The rover has six wheels", status="active")
    assert mw.integrity_check().status == "clean"
    if mw.store.is_sqlite:
        return
    with mw.store.engine.begin() as conn:
        # memwarden_english lives in the test's own schema: nothing else sees the change.
        conn.exec_driver_sql(
            "ALTER TEXT SEARCH CONFIGURATION memwarden_english DROP MAPPING FOR asciiword"
        )
    report = mw.integrity_check()
    assert counts(report) == {"fulltext_index": 1}
    assert "indexed with other words" in report.findings[0].examples[0]


def test_a_raw_edit_committed_after_a_scan_began_is_found_by_the_next(mw: Memwarden) -> None:
    """The edit is made in a savepoint of a transaction still open while a scan runs (so the
    scan cannot see it) and committed after: its row carries a subtransaction id, which no
    snapshot lists as running. The next incremental scan must still check that row.
    PostgreSQL's (SQLite checks every row; releasing its outermost savepoint commits)."""
    ids = [mw.remember("atlas", f"Fact number {i}", status="active").memory.id for i in range(3)]
    assert mw.integrity_check().status == "clean"
    if mw.store.is_sqlite:
        return
    with raw(mw) as conn:
        conn.execute(sa.select(M.c.id).limit(1)).all()  # the outer transaction has begun
        conn.exec_driver_sql("SAVEPOINT hidden")
        conn.execute(sa.update(M).where(M.c.id == ids[1]).values(content="Rewritten"))
        conn.exec_driver_sql("RELEASE SAVEPOINT hidden")
        # A later transaction completes before the scan: the snapshot's upper bound passes
        # the subtransaction's id, and only its still-running parent is listed.
        mw.remember("atlas", "A later fact", status="active")
        assert mw.integrity_check().status == "clean"  # the edit is not committed yet
    assert counts(mw.integrity_check())["tampered_memories"] == 1
