"""The ledger checks, both engines: chain breaks (never repaired), audit gaps (a memory that
is not what its ledger replays to, or has no ledger at all), incremental scans, the persisted
runs and the alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from integrity_support import counts, finding, raw
from ledger_support import attacker, head_seq, ledger_rows, set_fields
from memwarden import Memwarden
from memwarden.audit.chain import canonical_json
from memwarden.core import memories
from memwarden.db import schema
from memwarden.observability.integrity import audit_gaps
from memwarden.observability.integrity.replay import MemoryRow

M = schema.memories


def _check(report_checks: list[object], name: str) -> object:
    return next(c for c in report_checks if getattr(c, "name", None) == name)


def test_the_scan_snapshot_is_the_ledgers_snapshot(mw: Memwarden) -> None:
    """The replay builds a memory's snapshot, and its canonical text, without core: both must
    be exactly what core writes to the ledger, whatever the content holds."""
    chunk = mw.ingest_text("atlas", "a.md", "# A\n\nSome text.")
    contents = [
        'Quotes " and \\ backslashes, a tab\tand a newline\n here',
        "Ünïcödé, emoji 🚀 and \u2028 a line separator",
        '{"after":{},"before":null} looks like a payload',
    ]
    ids = [mw.remember("atlas", text, status="active").memory.id for text in contents]
    mw.reinforce(ids[0])
    mw.update(ids[1], confidence=0.3333333333333333)
    mw.supersede(ids[2], content="Its successor")
    assert chunk.document_id is not None
    with mw.store.read() as conn:
        for memory_id in ids:
            row = conn.execute(sa.select(M).where(M.c.id == memory_id)).one()
            core = memories.load(conn, memory_id).snapshot()
            assert audit_gaps.memory_snapshot(row) == core
            values = [getattr(row, name) for name in MemoryRow._fields]
            assert MemoryRow.of(values).text() == canonical_json(core)
            last = mw.history(memory_id)[-1]
            assert last.after == core


def test_a_tampered_ledger_row_is_critical_and_never_fixed(mw: Memwarden) -> None:
    for i in range(3):
        mw.remember("atlas", f"Fact number {i}")
    assert mw.integrity_check().status == "clean"
    before = ledger_rows(mw)
    target = head_seq(mw) - 1
    with attacker(mw) as conn:
        set_fields(conn, target, actor="mallory")

    # An incremental scan reads only the rows added since the last one: an edit to a row
    # already verified is for --full (the nightly default is incremental; see the README).
    assert mw.integrity_check().status == "clean"
    report = mw.integrity_check(full=True)
    found = finding(report, "ledger_chain")
    assert (found.severity, found.count, found.examples) == ("critical", 1, (target,))
    assert counts(report) == {"ledger_chain": 1}
    assert report.run.ledger_verified_seq == target - 1

    fixed = mw.integrity_check(fix=True)
    assert fixed.repairs == [] and counts(fixed) == {"ledger_chain": 1}
    again = mw.integrity_check()  # incremental: the verified point went back before the break
    assert counts(again) == {"ledger_chain": 1}
    after = ledger_rows(mw)
    # Nothing deleted, nothing rewritten (but the tampered row); the only rows added are the
    # alerts' mirror into project state (the last alert of each severity, actor "alerts").
    assert [r["seq"] for r in after[: len(before)]] == [r["seq"] for r in before]
    assert [r for r in after[: len(before)] if r["seq"] != target] == [
        r for r in before if r["seq"] != target
    ]
    assert all(r["actor"] == "alerts" for r in after[len(before) :])
    assert not mw.verify().ok


def test_a_ledger_cut_short_under_the_previous_scan_is_caught_incrementally(
    mw: Memwarden,
) -> None:
    for i in range(4):
        mw.remember("atlas", f"Fact number {i}")
    assert mw.integrity_check().status == "clean"
    last = head_seq(mw)
    with attacker(mw) as conn:
        conn.execute(sa.delete(schema.ledger_payloads).where(schema.ledger_payloads.c.seq == last))
        conn.execute(sa.delete(schema.ledger).where(schema.ledger.c.seq == last))
    report = mw.integrity_check()
    assert "ledger_chain" in counts(report)


def test_an_edit_behind_memwardens_back_is_an_audit_gap(mw: Memwarden) -> None:
    kept = mw.remember("atlas", "The fuel is kerosene", status="active").memory
    edited = mw.remember("atlas", "The rover weighs 900 kg", status="active").memory
    with raw(mw) as conn:
        conn.execute(
            sa.update(M).where(M.c.id == edited.id).values(content="The rover weighs 9 kg")
        )

    report = mw.integrity_check()
    found = finding(report, "audit_gap_replay")
    assert (found.severity, found.count, found.examples) == ("critical", 1, (edited.id,))
    assert "content" in found.message
    # The row MAC names it too (reads already withhold it).
    assert counts(report) == {"audit_gap_replay": 1, "tampered_memories": 1}
    assert kept.id not in found.examples

    # --fix puts the row back to its last ledger version (the row MAC's repair), after which
    # its history replays without a seam.
    fixed = mw.integrity_check(fix=True)
    assert [(r.check, r.target) for r in fixed.repairs] == [("tampered_memories", edited.id)]
    assert counts(fixed) == {}
    assert mw.get(edited.id).content == "The rover weighs 900 kg"
    mw.update(edited.id, content="The rover weighs 950 kg")
    assert counts(mw.integrity_check(full=True)) == {}


def test_fail_open_mutations_are_audit_gaps_found_incrementally(mw: Memwarden) -> None:
    """The ledger failed (here: switched off) while mutations committed: a memory changed
    without its row, and one created without any."""
    changed = mw.remember("atlas", "Launch in March").memory
    assert mw.integrity_check().status == "clean"
    mw.ledger.enabled = False
    try:
        mw.promote(changed.id)
        unrecorded = mw.remember("atlas", "Created while the ledger was down").memory
    finally:
        mw.ledger.enabled = True

    report = mw.integrity_check()
    assert counts(report) == {"audit_gap_replay": 1, "audit_gap_unrecorded": 1}
    assert finding(report, "audit_gap_replay").examples == (changed.id,)
    assert finding(report, "audit_gap_unrecorded").examples == (unrecorded.id,)
    # The next incremental scan looks at them again: a gap stays reported.
    assert counts(mw.integrity_check()) == counts(report)


def test_incremental_scans_read_only_what_changed(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_gaps, "LOOKBACK", timedelta(0))
    old = [mw.remember("atlas", f"Old fact {i}").memory for i in range(5)]
    first = mw.integrity_check()
    assert first.status == "clean" and first.run.ledger_verified_seq == head_seq(mw)

    mw.promote(old[0].id)
    mw.remember("atlas", "A new fact")
    second = mw.integrity_check()
    assert second.status == "clean"
    assert _check(second.checks, "ledger_chain").scanned == 2  # type: ignore[attr-defined]
    # Two memories replayed: old[0] (created + promoted) and the new one (created). On
    # PostgreSQL also any row written by a transaction the first scan's snapshot did not see
    # as over, which a transaction running then anywhere on the server (another test's) widens.
    replayed = _check(second.checks, "audit_gaps").scanned  # type: ignore[attr-defined]
    assert replayed == 3 if mw.store.is_sqlite else 3 <= replayed <= 7

    # An edit that leaves updated_at alone: the replay sees it only in a full scan, but the row
    # MAC check catches it in the incremental one already (every row on SQLite; on PostgreSQL
    # every row written since the previous scan, which a raw UPDATE is).
    with raw(mw) as conn:
        conn.execute(sa.update(M).where(M.c.id == old[3].id).values(content="Rewritten"))
        postgres = conn.dialect.name == "postgresql"
    # On PostgreSQL the replay takes every row written since the previous scan's snapshot.
    expected = {"tampered_memories": 1} | ({"audit_gap_replay": 1} if postgres else {})
    assert counts(mw.integrity_check()) == expected
    full = mw.integrity_check(full=True)
    assert counts(full) == {"audit_gap_replay": 1, "tampered_memories": 1} and full.full
    assert _check(full.checks, "ledger_chain").scanned == head_seq(mw)  # type: ignore[attr-defined]


def test_runs_are_persisted_newest_first(mw: Memwarden) -> None:
    assert mw.latest_integrity() is None and mw.integrity_runs() == []
    first = mw.integrity_check()
    memory = mw.remember("atlas", "Launch in March").memory
    with raw(mw) as conn:
        conn.execute(sa.update(M).where(M.c.id == memory.id).values(confidence=0.99))
    second = mw.integrity_check(full=True)

    latest = mw.latest_integrity()
    assert latest is not None and latest.id == second.run.id
    assert (latest.status, latest.full) == ("findings", True)
    assert [f.to_dict() for f in latest.findings] == [f.to_dict() for f in second.findings]
    assert latest.finished_at is not None and latest.finished_at >= latest.started_at
    assert set(latest.check_seconds) == {c.name for c in second.checks}
    assert [r.id for r in mw.integrity_runs()] == [second.run.id, first.run.id]
    assert [r.id for r in mw.integrity_runs(limit=1)] == [second.run.id]


def test_findings_raise_alerts_and_a_clean_scan_resolves_them(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "Launch in March").memory
    with raw(mw) as conn:
        conn.execute(sa.update(M).where(M.c.id == memory.id).values(confidence=0.99))
    mw.integrity_check()
    assert mw.alerts.flush(10)
    warning = mw.alerts.history(fingerprint="integrity-findings")
    critical = mw.alerts.history(fingerprint="integrity-critical")
    assert [(a.severity, a.status) for a in warning] == [("warning", "firing")]
    assert [(a.severity, a.status) for a in critical] == [("critical", "firing")]
    assert "audit_gap_replay" in critical[0].message

    with raw(mw) as conn:  # put the row back as the ledger has it
        conn.execute(sa.update(M).where(M.c.id == memory.id).values(confidence=memory.confidence))
    assert mw.integrity_check().status == "clean"
    assert mw.alerts.flush(10)
    assert [a.status for a in mw.alerts.history(fingerprint="integrity-critical")] == ["resolved"]


def memory_rows(mw: Memwarden) -> int:
    """The ledger rows a replay of every memory reads."""
    return sum(1 for row in ledger_rows(mw) if row["entity_type"] == "memory")


def test_a_memory_deleted_in_the_database_is_found_incrementally(mw: Memwarden) -> None:
    """memwarden never deletes a memory row: fewer rows at or below the previous scan's
    highest id than it counted sends the scan back to replaying every memory. Before, a
    memory deleted in the database escaped every incremental scan, the nightly one's too."""
    kept = [mw.remember("atlas", f"Kept fact {i}").memory for i in range(3)]
    gone = mw.remember("atlas", "A fact deleted behind memwarden's back").memory
    first = mw.integrity_check()
    assert first.status == "clean" and first.run.memory_count == 4
    with raw(mw) as conn:
        conn.execute(sa.delete(M).where(M.c.id == gone.id))
    newer = mw.remember("atlas", "Written after the deletion").memory  # the count is not fooled
    report = mw.integrity_check()
    assert not report.run.full
    assert counts(report) == {"audit_gap_replay": 1}
    found = finding(report, "audit_gap_replay")
    assert found.examples == (gone.id,) and "its row is gone" in found.message
    assert _check(report.checks, "audit_gaps").scanned == memory_rows(mw)  # type: ignore[attr-defined]
    # The gap stays reported by the incremental scans that follow.
    assert counts(mw.integrity_check()) == {"audit_gap_replay": 1}
    assert {m.id for m in kept} | {newer.id} <= {m.id for m in mw.list_memories()}


def test_a_memory_put_back_to_an_older_version_is_found(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of an older row carries that version's valid MAC and times. PostgreSQL's
    incremental scan finds it by its row version; SQLite has none, and only ``--full``
    replays it (docs/ledger.md). (No look-back: the old version's time is minutes old.)"""
    monkeypatch.setattr(audit_gaps, "LOOKBACK", timedelta(0))
    memory = mw.remember("atlas", "The launch window opens in March").memory
    with raw(mw) as conn:
        old = dict(conn.execute(sa.select(M).where(M.c.id == memory.id)).one()._mapping)
    mw.update(memory.id, content="The launch window opens in April")
    assert mw.integrity_check().status == "clean"
    with raw(mw) as conn:
        conn.execute(sa.update(M).where(M.c.id == memory.id).values(**old))
        postgres = conn.dialect.name == "postgresql"
    assert mw.get(memory.id).content == "The launch window opens in March"  # its MAC holds
    incremental = counts(mw.integrity_check())
    assert incremental == ({"audit_gap_replay": 1} if postgres else {})
    full = mw.integrity_check(full=True)
    assert counts(full) == {"audit_gap_replay": 1}
    assert finding(full, "audit_gap_replay").examples == (memory.id,)


def test_a_previous_scan_without_a_count_means_a_full_replay(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs made before 0023_integrity_memory_count kept no count: the first scan after the
    upgrade replays every memory once."""
    monkeypatch.setattr(audit_gaps, "LOOKBACK", timedelta(0))
    for i in range(3):
        mw.remember("atlas", f"Fact {i}")
    assert mw.integrity_check().status == "clean"
    with raw(mw) as conn:
        conn.execute(sa.update(schema.integrity_runs).values(memory_count=None))
    again = mw.integrity_check()
    assert _check(again.checks, "audit_gaps").scanned == memory_rows(mw) == 3  # type: ignore[attr-defined]
    assert again.run.memory_count == 3
