"""Spec acceptance for the ledger, and time travel: history, as-of, diff, blame, revert.

Both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core_support import ledger_count, raises_and_changes_nothing
from erase_support import scrub_all
from memwarden import Memwarden
from memwarden.audit.actor import acting_as
from memwarden.audit.chain import parse_ts
from memwarden.errors import IllegalTransitionError, InvalidInputError, NotFoundError

STATEMENT = "The launch window opens in March"
MICROSECOND = timedelta(microseconds=1)


# -- spec acceptance: one entry per mutation, with its action and actor -------------------------


def _one_entry(mw: Memwarden, operation: str, action: str) -> None:
    """``operation`` on a memory writes exactly one ledger entry: its action, actor, project."""
    memory = None if operation == "create" else mw.remember("atlas", STATEMENT).memory
    before = ledger_count(mw)
    with acting_as("agent-7"):
        if memory is None:
            memory = mw.remember("atlas", STATEMENT).memory
        else:
            getattr(mw, operation)(memory.id)
    assert ledger_count(mw) == before + 1
    entry = mw.recent(limit=1)[0]
    assert (entry.entity_type, entry.entity_id) == ("memory", str(memory.id))
    assert (entry.action, entry.actor, entry.project) == (action, "agent-7", "atlas")
    assert entry.after == mw.get(memory.id).snapshot()


def test_audit_create_logs_entry(mw: Memwarden) -> None:
    _one_entry(mw, "create", "created")


def test_audit_promote_logs_entry(mw: Memwarden) -> None:
    _one_entry(mw, "promote", "promoted")


def test_audit_reject_logs_entry(mw: Memwarden) -> None:
    _one_entry(mw, "reject", "rejected")


def test_audit_reinforce_logs_entry(mw: Memwarden) -> None:
    _one_entry(mw, "reinforce", "reinforced")


def test_audit_update_captures_before_after(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT, confidence=0.5).memory
    with acting_as("editor"):
        updated = mw.update(
            memory.id,
            content="The launch window opens in April",
            confidence=0.9,
            note="new schedule",
        )
    entry = mw.history(memory.id)[-1]
    assert (entry.action, entry.actor, entry.note) == ("updated", "editor", "new schedule")
    assert entry.before is not None and entry.after is not None
    assert (entry.before["content"], entry.after["content"]) == (
        STATEMENT,
        "The launch window opens in April",
    )
    assert (entry.before["confidence"], entry.after["confidence"]) == (0.5, 0.9)
    assert entry.before == memory.snapshot() and entry.after == updated.snapshot()


def test_recent_audit_returns_cross_memory_entries(mw: Memwarden) -> None:
    mw.add_project("borealis")
    ids = []
    for n in range(12):
        with acting_as("alice" if n % 2 else "bob"):
            project = "atlas" if n % 3 else "borealis"
            ids.append(mw.remember(project, f"Fact number {n}").memory.id)
    middle = mw.history(ids[6])[0].ts
    with acting_as("carol"):
        for memory_id in ids[:4]:
            mw.promote(memory_id)
    everything = mw.recent(limit=100)
    assert [r.seq for r in everything] == sorted((r.seq for r in everything), reverse=True)
    memory_rows = [r for r in everything if r.entity_type == "memory"]
    assert len({r.entity_id for r in memory_rows}) == 12
    assert [int(r.entity_id) for r in mw.recent(limit=4)] == ids[:4][::-1]
    assert len(mw.recent(limit=5)) == 5
    assert {r.actor for r in mw.recent(actor="alice", limit=100)} == {"alice"}
    assert len(mw.recent(actor="alice", limit=100)) == 6
    promoted = mw.recent(action="promoted")
    assert [int(r.entity_id) for r in promoted] == ids[:4][::-1]
    assert {r.project for r in mw.recent(project="borealis", entity_type="memory")} == {"borealis"}
    # Four borealis memories were created, and two of them (0 and 3) promoted.
    assert len(mw.recent(project="borealis", entity_type="memory")) == 6
    since = mw.recent(since=parse_ts(middle), entity_type="memory", limit=100)
    assert min(r.seq for r in since) == mw.history(ids[6])[0].seq
    until = mw.recent(until=parse_ts(middle), entity_type="memory", limit=100)
    assert max(r.seq for r in until) == mw.history(ids[6])[0].seq
    both = mw.recent(actor="carol", action="promoted", project="atlas")
    assert all(r.actor == "carol" and r.project == "atlas" for r in both) and both


# -- history and as-of ---------------------------------------------------------------------------


def test_history_is_every_row_oldest_first(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT).memory
    mw.remember("atlas", "Something else")
    mw.promote(memory.id)
    mw.reinforce(memory.id)
    history = mw.history(memory.id)
    assert [r.action for r in history] == ["created", "promoted", "reinforced"]
    assert [r.seq for r in history] == sorted(r.seq for r in history)
    with pytest.raises(NotFoundError, match="memory 999 not found"):
        mw.history(999)


def test_as_of(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT).memory
    mw.promote(memory.id)
    mw.update(memory.id, content="The launch window opens in April")
    created, promoted, updated = mw.history(memory.id)
    at = parse_ts
    with pytest.raises(InvalidInputError, match=f"memory {memory.id} did not exist yet at"):
        mw.as_of(memory.id, at(created.ts) - MICROSECOND)
    assert mw.as_of(memory.id, at(created.ts)) == created.after
    assert mw.as_of(memory.id, at(promoted.ts) - MICROSECOND) == created.after
    assert mw.as_of(memory.id, at(promoted.ts))["status"] == "active"  # type: ignore[index]
    assert mw.as_of(memory.id, at(updated.ts) - MICROSECOND)["content"] == STATEMENT  # type: ignore[index]
    assert mw.as_of(memory.id, at(updated.ts) + timedelta(days=365)) == mw.get(memory.id).snapshot()
    with pytest.raises(NotFoundError):
        mw.as_of(12345, at(updated.ts))


# -- diff and blame ---------------------------------------------------------------------------


def test_diff_field_by_field(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT, confidence=0.5).memory
    mw.promote(memory.id)
    mw.update(memory.id, content="The launch window opens in April", confidence=0.7)
    created, promoted, updated = mw.history(memory.id)
    changes = {c.field: (c.before, c.after) for c in mw.diff(memory.id, created.seq, updated.seq)}
    assert set(changes) == {"content", "content_hash", "confidence", "status", "updated_at"}
    assert changes["content"] == (STATEMENT, "The launch window opens in April")
    assert changes["confidence"] == (0.5, 0.7)
    assert changes["status"] == ("candidate", "active")
    one_step = mw.diff(memory.id, created.seq, promoted.seq)
    assert {c.field for c in one_step} == {"status", "updated_at"}
    assert mw.diff(memory.id, promoted.seq, promoted.seq) == []
    backwards = {c.field: (c.before, c.after) for c in mw.diff(memory.id, updated.seq, created.seq)}
    assert backwards["status"] == ("active", "candidate")
    other = mw.remember("atlas", "Another memory").memory
    with pytest.raises(InvalidInputError, match=f"not part of memory {memory.id}'s history"):
        mw.diff(memory.id, created.seq, mw.history(other.id)[0].seq)


def test_blame_names_who_last_set_each_field(mw: Memwarden) -> None:
    with acting_as("alice"):
        memory = mw.remember("atlas", STATEMENT, confidence=0.5).memory
    with acting_as("bob"):
        mw.update(memory.id, content="The launch window opens in April")
    with acting_as("carol"):
        mw.promote(memory.id)
    with acting_as("dave"):
        mw.reinforce(memory.id)
    history = mw.history(memory.id)
    blame = {line.field: line for line in mw.blame(memory.id)}
    assert "updated_at" not in blame
    assert (blame["content"].actor, blame["content"].seq) == ("bob", history[1].seq)
    assert blame["content"].value == "The launch window opens in April"
    assert blame["status"].actor == "carol" and blame["status"].action == "promoted"
    assert blame["confidence"].actor == "alice" and blame["type"].actor == "alice"
    assert blame["reinforcement_count"].actor == "dave"
    assert blame["reinforcement_count"].ts == history[3].ts


# -- revert -----------------------------------------------------------------------------------


def test_revert_is_an_audited_mutation(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT, confidence=0.5).memory
    mw.update(memory.id, content="A wrong edit", confidence=0.9)
    target = mw.history(memory.id)[0]
    with acting_as("reviewer"):
        reverted = mw.revert(memory.id, target.seq, note="the edit was wrong")
    assert (reverted.content, reverted.confidence, reverted.status) == (STATEMENT, 0.5, "candidate")
    assert reverted.content_hash == memory.content_hash
    entry = mw.history(memory.id)[-1]
    assert (entry.action, entry.actor, entry.note) == ("reverted", "reviewer", "the edit was wrong")
    assert entry.extra == {"to_seq": target.seq}
    assert entry.after == mw.get(memory.id).snapshot()
    assert mw.verify().ok


def test_revert_refusals_change_nothing(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT).memory
    other = mw.remember("atlas", "Another memory").memory
    candidate_seq = mw.history(memory.id)[0].seq
    mw.promote(memory.id)
    raises_and_changes_nothing(
        mw,
        InvalidInputError,
        lambda: mw.revert(memory.id, mw.history(other.id)[0].seq),
        match=f"belongs to memory {other.id}, not memory {memory.id}",
    )
    raises_and_changes_nothing(
        mw,
        IllegalTransitionError,
        lambda: mw.revert(memory.id, candidate_seq),
        match="does not allow active -> candidate",
    )
    raises_and_changes_nothing(
        mw,
        InvalidInputError,
        lambda: mw.revert(memory.id, 99999),
        match="does not exist",
    )
    raises_and_changes_nothing(
        mw,
        InvalidInputError,
        lambda: mw.revert(memory.id, mw.history(memory.id)[-1].seq),
        match="already matches",
    )
    raises_and_changes_nothing(
        mw,
        NotFoundError,
        lambda: mw.revert(4242, candidate_seq),
        match="not found",
    )
    project_row = mw.recent(entity_type="project", limit=1)[0].seq
    raises_and_changes_nothing(
        mw,
        InvalidInputError,
        lambda: mw.revert(memory.id, project_row),
        match="belongs to project",
    )
    mw.erase(other.id, "privacy request")
    scrub_all(mw)  # the background scrub writes ledger rows too: let it finish first
    raises_and_changes_nothing(
        mw,
        IllegalTransitionError,
        lambda: mw.revert(other.id, mw.history(other.id)[0].seq),
        match="erased",
    )


def test_revert_to_a_version_citing_a_replaced_chunk_is_refused(mw: Memwarden) -> None:
    mw.ingest_text("atlas", "inline://notes", "# Notes\n\nThe rover weighs 900 kg.\n")
    chunk_id = next(h.id for h in mw.recall("rover", "atlas") if h.kind == "chunk")
    memory = mw.remember("atlas", "The rover weighs 900 kg", source_chunk_id=chunk_id).memory
    cited = mw.history(memory.id)[0].seq
    # Re-ingesting replaces the chunk; the memory loses its citation through an update.
    mw.ingest_text("atlas", "inline://notes", "# Notes\n\nThe rover weighs 950 kg.\n")
    assert mw.get(memory.id).source_chunk_id is None
    raises_and_changes_nothing(
        mw,
        InvalidInputError,
        lambda: mw.revert(memory.id, cited),
        match=f"cites source chunk {chunk_id}, which no longer exists",
    )
