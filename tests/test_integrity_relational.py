"""The relational checks, both engines: drift injected with SQL is found with its exact count,
``--fix`` repairs what is safe (each repair on the ledger by integrity-repair), and a rescan
shows what is left.

Raw SQL on a memory's own row is also an audit gap (the ledger never saw the change), and the
scan says so. Where a test wants the relational drift alone, it writes it as a careless writer
would: plain SQL, recorded on the ledger (``recorded_update``, ``recorded_copy``)."""

from __future__ import annotations

import sqlalchemy as sa

from integrity_support import (
    counts,
    drop_live_guard,
    finding,
    last_row,
    raw,
    recorded_copy,
    recorded_update,
)
from memwarden import Memwarden
from memwarden.db import schema
from memwarden.observability.integrity.findings import MAX_EXAMPLES

C, D, M, P = schema.source_chunks, schema.documents, schema.memories, schema.projects


def _chunk(mw: Memwarden) -> int:
    mw.ingest_text("atlas", "plan.md", "# Plan\n\nLaunch in March from the northern pad.")
    return next(h.id for h in mw.recall("launch northern pad", "atlas") if h.kind == "chunk")


def test_a_healthy_database_is_clean(mw: Memwarden) -> None:
    chunk = _chunk(mw)
    old = mw.remember("atlas", "Launch in March", status="active", source_chunk_id=chunk).memory
    mw.supersede(old.id, content="Launch in April")
    mw.set_state("atlas", "schedule", "launch", "April")
    report = mw.integrity_check()
    assert report.status == "clean", counts(report)
    assert report.exit_code == 0
    assert {c.name for c in report.checks} >= {
        "chunk_refs",
        "orphan_chunks",
        "orphan_state",
        "duplicates",
        "supersede_chains",
        "ledger_chain",
        "audit_gaps",
    }
    assert all(c.status in ("ok", "skipped") for c in report.checks)


def test_memories_citing_a_missing_chunk_are_found_and_cleared(mw: Memwarden) -> None:
    chunk = _chunk(mw)
    citing = [
        mw.remember("atlas", f"Fact {i} from the plan", source_chunk_id=chunk).memory.id
        for i in range(MAX_EXAMPLES + 5)
    ]
    mw.remember("atlas", "A fact with no source")
    with raw(mw) as conn:
        conn.execute(sa.delete(C).where(C.c.id == chunk))

    report = mw.integrity_check()
    found = finding(report, "dangling_chunk_refs")
    assert found.count == len(citing) and found.severity == "warning"
    assert list(found.examples) == citing[:MAX_EXAMPLES]
    assert counts(report) == {"dangling_chunk_refs": len(citing)}  # the engine does not repeat it

    fixed = mw.integrity_check(fix=True)
    assert fixed.status == "clean", counts(fixed)
    assert [r.target for r in fixed.repairs] == citing and all(r.applied for r in fixed.repairs)
    assert fixed.before_repair is not None and fixed.before_repair.status == "findings"
    for memory_id in citing:
        assert mw.get(memory_id).source_chunk_id is None
        action, actor, note = last_row(mw, memory_id)
        assert (action, actor) == ("updated", "integrity-repair")
        assert note is not None and "source chunk does not exist" in note
    assert mw.verify().ok


def test_chunks_of_a_missing_document_are_found_and_left_alone(mw: Memwarden) -> None:
    mw.ingest_text("atlas", "keep.md", "# Keep\n\nThis document stays.")
    outcome = mw.ingest_text("atlas", "gone.md", "# One\n\nFirst part.\n\n# Two\n\nSecond part.")
    with mw.store.read() as conn:
        chunks = conn.execute(
            sa.select(sa.func.count()).where(C.c.document_id == outcome.document_id)
        ).scalar_one()
    assert chunks >= 2
    with raw(mw) as conn:
        conn.execute(sa.delete(D).where(D.c.id == outcome.document_id))

    report = mw.integrity_check()
    assert counts(report) == {"orphan_chunks": chunks}
    fixed = mw.integrity_check(fix=True)
    assert fixed.repairs == [] and counts(fixed) == {"orphan_chunks": chunks}  # not deleted


def test_state_of_a_missing_project_is_found_and_left_alone(mw: Memwarden) -> None:
    mw.add_project("ghost")
    mw.set_state("ghost", "team", "lead", "Ines")
    mw.set_state("ghost", "team", "pilot", "Ada")
    mw.set_state("atlas", "team", "lead", "Bo")
    with raw(mw) as conn:
        conn.execute(sa.delete(P).where(P.c.name == "ghost"))

    report = mw.integrity_check()
    found = finding(report, "orphan_state")
    assert found.count == 2 and set(found.examples) == {"ghost/team/lead", "ghost/team/pilot"}
    assert counts(report) == {"orphan_state": 2}
    assert mw.integrity_check(fix=True).repairs == []


def test_duplicate_active_memories_are_folded_into_the_oldest(mw: Memwarden) -> None:
    oldest = mw.remember("atlas", "The fuel is kerosene", status="active").memory.id
    other = mw.remember("atlas", "The rover weighs 900 kg", status="active").memory.id
    mw.remember("atlas", "The fuel is kerosene", type="project", status="active")  # another type
    drop_live_guard(mw)
    copies = [recorded_copy(mw, oldest), recorded_copy(mw, oldest), recorded_copy(mw, other)]

    report = mw.integrity_check()
    found = finding(report, "duplicate_memories")
    assert found.count == 3 and sorted(found.examples) == sorted(copies)
    assert counts(report) == {"duplicate_memories": 3}

    fixed = mw.integrity_check(fix=True)
    assert fixed.status == "clean", counts(fixed)
    assert {(r.target, r.action) for r in fixed.repairs} == {(c, "fold duplicate") for c in copies}
    for copy, into in zip(copies, (oldest, oldest, other), strict=True):
        folded = mw.get(copy)
        assert (folded.status, folded.superseded_by) == ("superseded", into)
        assert last_row(mw, copy)[:2] == ("superseded", "integrity-repair")
    assert mw.get(oldest).status == "active"


def test_a_superseded_memory_without_successor_gets_it_back(mw: Memwarden) -> None:
    old = mw.remember("atlas", "Launch in March", status="active").memory
    _, successor = mw.supersede(old.id, content="Launch in April")
    recorded_update(mw, old.id, superseded_by=None)

    report = mw.integrity_check()
    assert counts(report) == {"supersede_missing_successor": 1}
    assert finding(report, "supersede_missing_successor").examples == (old.id,)

    fixed = mw.integrity_check(fix=True)
    assert fixed.status == "clean", counts(fixed)
    assert [(r.target, r.action) for r in fixed.repairs] == [(old.id, "relink successor")]
    assert mw.get(old.id).superseded_by == successor.id
    assert last_row(mw, old.id)[:2] == ("updated", "integrity-repair")


def test_a_supersede_loop_is_found_and_broken_at_its_newest_memory(mw: Memwarden) -> None:
    a = mw.remember("atlas", "The pad is north", status="active").memory.id
    b = mw.remember("atlas", "The pad is south", status="active").memory.id
    c = mw.remember("atlas", "The pad is east", status="active").memory.id
    recorded_update(mw, a, status="superseded", superseded_by=b)
    recorded_update(mw, b, status="superseded", superseded_by=a)
    recorded_update(mw, c, status="superseded", superseded_by=c)  # a loop of one

    report = mw.integrity_check()
    found = finding(report, "supersede_loops")
    assert found.count == 3 and sorted(found.examples) == [a, b, c]
    assert counts(report) == {"supersede_loops": 3}

    fixed = mw.integrity_check(fix=True)
    assert fixed.status == "clean", counts(fixed)
    assert sorted(r.target for r in fixed.repairs) == [b, c]
    assert (mw.get(b).status, mw.get(b).superseded_by) == ("active", None)
    assert (mw.get(a).status, mw.get(a).superseded_by) == ("superseded", b)
    assert last_row(mw, b)[:2] == ("updated", "integrity-repair")


def test_a_successor_deleted_behind_memwardens_back(mw: Memwarden) -> None:
    """The superseded memory now points nowhere (a warning) and the successor's ledger records
    a memory whose row is gone (an audit gap, critical). ``--fix`` reinstates the superseded
    memory; the gap stays: it is never repaired."""
    old = mw.remember("atlas", "Launch in March", status="active").memory
    _, successor = mw.supersede(old.id, content="Launch in April")
    with raw(mw) as conn:
        conn.execute(sa.delete(M).where(M.c.id == successor.id))

    report = mw.integrity_check()
    assert counts(report) == {"supersede_dangling": 1, "audit_gap_replay": 1}
    assert finding(report, "supersede_dangling").examples == (old.id,)
    assert finding(report, "audit_gap_replay").examples == (successor.id,)
    assert report.exit_code == 1

    fixed = mw.integrity_check(fix=True)
    assert [(r.target, r.action) for r in fixed.repairs] == [(old.id, "reinstate")]
    assert (mw.get(old.id).status, mw.get(old.id).superseded_by) == ("active", None)
    assert counts(fixed) == {"audit_gap_replay": 1}


def test_dry_run_plans_and_writes_nothing(mw: Memwarden) -> None:
    chunk = _chunk(mw)
    memory = mw.remember("atlas", "Launch from the northern pad", source_chunk_id=chunk).memory
    with raw(mw) as conn:
        conn.execute(sa.delete(C).where(C.c.id == chunk))
    head = mw.anchor().seq

    report = mw.integrity_check(fix=True, dry_run=True)
    assert report.dry_run and [(r.target, r.applied) for r in report.repairs] == [
        (memory.id, False)
    ]
    assert mw.anchor().seq == head
    assert mw.get(memory.id).source_chunk_id == chunk
    assert counts(report) == {"dangling_chunk_refs": 1}
