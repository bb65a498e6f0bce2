"""Every lifecycle mutation, its resulting row and its ledger entry, on both engines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from core_support import db_state, ledger_count, raises_and_changes_nothing
from erase_support import scrub_all
from memwarden import Memwarden
from memwarden.audit.actor import acting_as
from memwarden.audit.records import LedgerRecord
from memwarden.core.models import CreateResult, Memory
from memwarden.errors import (
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
)

STATEMENT = "The launch window opens in March"


def last_entry(mw: Memwarden, memory_id: int) -> LedgerRecord:
    return mw.history(memory_id)[-1]


def check_entry(
    entry: LedgerRecord, action: str, before: Memory | None, after: Memory, actor: str = "tester"
) -> None:
    assert entry.entity_type == "memory"
    assert entry.entity_id == str(after.id)
    assert entry.action == action
    assert entry.actor == actor
    assert entry.project == after.project
    assert entry.before == (before.snapshot() if before is not None else None)
    assert entry.after == after.snapshot()


# -- create ------------------------------------------------------------------------------------


def test_create_writes_a_candidate_row_and_one_created_entry(mw: Memwarden) -> None:
    seq_before = ledger_count(mw)
    with acting_as("tester"):
        result = mw.remember("atlas", f"  {STATEMENT}  ", "project", 0.8, note="from a meeting")
    memory = result.memory
    assert not result.reinforced
    assert mw.get(memory.id) == memory
    assert memory.content == STATEMENT  # stripped
    assert (memory.project, memory.type, memory.status) == ("atlas", "project", "candidate")
    assert memory.confidence == pytest.approx(0.8)
    assert memory.reinforcement_count == 0
    assert memory.superseded_by is None and memory.source_chunk_id is None
    assert memory.last_reinforced_at is None
    assert memory.created_at == memory.updated_at
    assert memory.created_at.tzinfo is not None
    assert ledger_count(mw) == seq_before + 1
    history = mw.history(memory.id)
    assert len(history) == 1
    check_entry(history[0], "created", None, memory)
    assert history[0].note == "from a meeting"


def test_create_active_directly(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT, status="active").memory
    assert mw.get(memory.id).status == "active"


def test_create_defaults(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT).memory
    assert memory.type == "knowledge"
    assert memory.confidence == pytest.approx(0.6)
    assert memory.status == "candidate"


@pytest.mark.parametrize(
    "restated",
    [
        STATEMENT,
        STATEMENT.upper(),
        STATEMENT.lower() + ".",
        "  the   launch window\topens in march !! ",
        STATEMENT + "...",
        "The launch window opens in March;",
    ],
)
def test_restating_a_candidate_reinforces_it(mw: Memwarden, restated: str) -> None:
    original = mw.remember("atlas", STATEMENT, "project").memory
    with acting_as("tester"):
        result = mw.remember("atlas", restated, "project")
    assert result.reinforced
    assert result.memory.id == original.id
    after = mw.get(original.id)
    assert after == result.memory
    assert after.content == STATEMENT  # the original wording stays
    assert after.status == "candidate"
    assert after.reinforcement_count == 1
    assert after.last_reinforced_at is not None
    assert len(mw.list_memories()) == 1
    entry = last_entry(mw, original.id)
    check_entry(entry, "reinforced", original, after)
    assert entry.note == "restated by a new memory"


def test_restating_an_active_memory_reinforces_it(mw: Memwarden) -> None:
    original = mw.remember("atlas", STATEMENT).memory
    mw.promote(original.id)
    for expected in (1, 2):
        result = mw.remember("atlas", STATEMENT.lower())
        assert result.reinforced and result.memory.id == original.id
        assert mw.get(original.id).reinforcement_count == expected
        assert mw.get(original.id).status == "active"


def test_restatement_is_per_project_type_and_live_status(mw: Memwarden) -> None:
    mw.add_project("borealis")
    original = mw.remember("atlas", STATEMENT, "project").memory
    other_type = mw.remember("atlas", STATEMENT, "episodic")
    other_project = mw.remember("borealis", STATEMENT, "project")
    different = mw.remember("atlas", STATEMENT + " and April", "project")
    for result in (other_type, other_project, different):
        assert not result.reinforced and result.memory.id != original.id
    mw.reject(original.id)
    fresh = mw.remember("atlas", STATEMENT, "project")
    assert not fresh.reinforced and fresh.memory.id != original.id
    assert mw.get(original.id).status == "rejected"
    assert mw.get(original.id).reinforcement_count == 0


def _restate_at_once(mw: Memwarden, statement: str, writers: int) -> list[object]:
    """``writers`` threads create the same statement at the same moment."""
    import threading

    barrier = threading.Barrier(writers)
    results: list[object] = []
    lock = threading.Lock()

    def write() -> None:
        barrier.wait()
        try:
            outcome: object = mw.remember("atlas", statement, "knowledge")
        except Exception as exc:  # noqa: BLE001 - collected and asserted on by the caller
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_restatements_make_one_memory(mw: Memwarden) -> None:
    """8 writers say the same thing at once: one memory, reinforced 7 times, no error."""
    writers = 8
    for round_ in range(3):
        statement = f"The telemetry link uses band {round_}"
        results = _restate_at_once(mw, statement, writers)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        assert len(results) == writers
        memories = [m for m in mw.list_memories() if m.content == statement]
        assert len(memories) == 1
        memory = memories[0]
        assert memory.reinforcement_count == writers - 1
        created = [r for r in results if isinstance(r, CreateResult) and not r.reinforced]
        assert len(created) == 1 and created[0].memory.id == memory.id
        actions = [entry.action for entry in mw.history(memory.id)]
        assert actions == ["created"] + ["reinforced"] * (writers - 1)
    assert mw.verify().ok


def test_create_racing_an_uncommitted_insert_reinforces_it(mw: Memwarden, engine_name: str) -> None:
    """The savepoint path, made deterministic: another transaction inserts the same statement
    and commits while create() is blocked on the unique index; create() then reinforces it."""
    if engine_name != "postgresql":
        pytest.skip("only PostgreSQL lets two writers race inside the index")
    import threading
    import time

    import sqlalchemy as sa

    from memwarden.core.text import content_hash
    from memwarden.db import schema

    other = mw.store.engine.connect()
    transaction = other.begin()
    now = datetime.now().astimezone()
    new_id = other.execute(
        sa.insert(schema.memories)
        .values(
            project="atlas",
            type="knowledge",
            content=STATEMENT,
            content_hash=content_hash(STATEMENT),
            confidence=0.5,
            status="candidate",
            reinforcement_count=0,
            created_at=now,
            updated_at=now,
        )
        .returning(schema.memories.c.id)
    ).scalar_one()
    # Signed as memwarden's own writer would (a row without its MAC is not built on).
    row = other.execute(sa.select(schema.memories).where(schema.memories.c.id == new_id)).one()
    other.execute(
        sa.update(schema.memories)
        .where(schema.memories.c.id == new_id)
        .values(mac=mw.runtime.guard.macs.memory(row))
    )
    outcome: list[object] = []
    thread = threading.Thread(
        target=lambda: outcome.append(mw.remember("atlas", STATEMENT.lower()))
    )
    thread.start()
    time.sleep(0.5)  # let create() reach the index and wait on the other transaction
    assert thread.is_alive(), "create() did not wait for the concurrent insert"
    transaction.commit()
    other.close()
    thread.join(timeout=30)
    assert len(outcome) == 1
    result = outcome[0]
    assert result.reinforced and result.memory.id == new_id  # type: ignore[attr-defined]
    assert mw.get(new_id).reinforcement_count == 1
    assert len(mw.list_memories()) == 1


# -- update ------------------------------------------------------------------------------------


def test_update_content_records_before_and_after(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT).memory
    with acting_as("tester"):
        updated = mw.update(memory.id, content="The launch window opens in April ", note="moved")
    assert updated == mw.get(memory.id)
    assert updated.content == "The launch window opens in April"
    assert updated.content_hash != memory.content_hash
    assert updated.updated_at >= memory.updated_at
    assert (updated.status, updated.reinforcement_count) == (memory.status, 0)
    entry = last_entry(mw, memory.id)
    check_entry(entry, "updated", memory, updated)
    assert entry.before is not None and entry.after is not None
    assert entry.before["content"] == STATEMENT
    assert entry.after["content"] == "The launch window opens in April"
    assert entry.note == "moved"
    # the new wording is now the one a restatement reinforces
    assert mw.remember("atlas", "the launch window opens in april").reinforced
    assert not mw.remember("atlas", STATEMENT).reinforced


def test_update_type_confidence_and_source_chunk(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT).memory
    mw.promote(memory.id)
    updated = mw.update(memory.id, type="Project", confidence=0.95)
    assert (updated.type, updated.confidence, updated.status) == ("project", 0.95, "active")
    outcome = mw.ingest_text("atlas", "notes.md", "# Plan\n\nThe window opens in March.")
    assert outcome.document_id is not None
    from memwarden.db import schema

    with mw.store.read() as conn:
        import sqlalchemy as sa

        chunk_id = conn.execute(sa.select(schema.source_chunks.c.id)).scalar_one()
    cited = mw.update(memory.id, source_chunk_id=chunk_id)
    assert cited.source_chunk_id == chunk_id
    uncited = mw.update(memory.id, source_chunk_id=None)
    assert uncited.source_chunk_id is None
    actions = [entry.action for entry in mw.history(memory.id)]
    assert actions == ["created", "promoted", "updated", "updated", "updated"]


def test_update_that_would_duplicate_a_live_memory_conflicts(mw: Memwarden) -> None:
    first = mw.remember("atlas", STATEMENT, "project").memory
    second = mw.remember("atlas", "The launch window opens in April", "project").memory
    error = raises_and_changes_nothing(
        mw, ConflictError, lambda: mw.update(second.id, content=STATEMENT.lower() + ".")
    )
    assert str(first.id) in str(error)
    # a type change that lands on a duplicate conflicts too
    third = mw.remember("atlas", STATEMENT, "episodic").memory
    raises_and_changes_nothing(mw, ConflictError, lambda: mw.update(third.id, type="project"))
    # once the first is no longer live the same update goes through
    mw.reject(first.id)
    assert mw.update(second.id, content=STATEMENT).content == STATEMENT


def test_update_needs_something_to_change(mw: Memwarden) -> None:
    memory = mw.remember("atlas", STATEMENT).memory
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.update(memory.id))


def test_update_a_chunk_of_another_project_is_refused(mw: Memwarden) -> None:
    mw.add_project("borealis")
    mw.ingest_text("borealis", "b.md", "Borealis notes about engines.")
    import sqlalchemy as sa

    from memwarden.db import schema

    with mw.store.read() as conn:
        chunk_id = conn.execute(sa.select(schema.source_chunks.c.id)).scalar_one()
    memory = mw.remember("atlas", STATEMENT).memory
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.update(memory.id, source_chunk_id=chunk_id)
    )
    raises_and_changes_nothing(
        mw, NotFoundError, lambda: mw.update(memory.id, source_chunk_id=chunk_id + 1000)
    )
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.remember("atlas", "other", source_chunk_id=chunk_id)
    )


# -- status moves ------------------------------------------------------------------------------

MOVES = [
    ("promote", "candidate", "active", "promoted"),
    ("auto_promote", "candidate", "active", "auto_promoted"),
    ("reject", "candidate", "rejected", "rejected"),
    ("expire", "candidate", "expired", "expired"),
    ("invalidate", "active", "invalid", "invalidated"),
]


@pytest.mark.parametrize(("operation", "start", "end", "action"), MOVES)
def test_status_move(mw: Memwarden, operation: str, start: str, end: str, action: str) -> None:
    memory = make_in_status(mw, start)
    count = ledger_count(mw)
    with acting_as("tester"):
        moved = getattr(mw, operation)(memory.id, note="because")
    assert moved == mw.get(memory.id)
    assert moved.status == end
    assert (moved.content, moved.reinforcement_count) == (
        memory.content,
        memory.reinforcement_count,
    )
    assert ledger_count(mw) == count + 1
    entry = last_entry(mw, memory.id)
    check_entry(entry, action, memory, moved)
    assert entry.note == "because"


@pytest.mark.parametrize("start", ["candidate", "active"])
def test_reinforce(mw: Memwarden, start: str) -> None:
    memory = make_in_status(mw, start)
    with acting_as("tester"):
        once = mw.reinforce(memory.id)
        twice = mw.reinforce(memory.id, note="seen again")
    assert twice == mw.get(memory.id)
    assert (once.reinforcement_count, twice.reinforcement_count) == (1, 2)
    assert twice.status == start
    assert twice.last_reinforced_at is not None
    entry = last_entry(mw, memory.id)
    check_entry(entry, "reinforced", once, twice)
    assert entry.note == "seen again"


def test_supersede_by_id(mw: Memwarden) -> None:
    old = make_in_status(mw, "active")
    new = mw.remember("atlas", "The launch window opens in April", status="active").memory
    with acting_as("tester"):
        superseded, successor = mw.supersede(old.id, by=new.id, note="schedule moved")
    assert superseded == mw.get(old.id)
    assert (superseded.status, superseded.superseded_by) == ("superseded", new.id)
    assert successor == mw.get(new.id) == new  # the successor itself is untouched
    entry = last_entry(mw, old.id)
    check_entry(entry, "superseded", old, superseded)
    assert entry.extra == {"successor": new.id}
    assert [e.action for e in mw.history(new.id)] == ["created"]


def test_supersede_by_content_creates_an_active_successor(mw: Memwarden) -> None:
    old = make_in_status(mw, "active")
    mw.update(old.id, type="project", confidence=0.9)
    old = mw.get(old.id)
    count = ledger_count(mw)
    with acting_as("tester"):
        superseded, successor = mw.supersede(old.id, content=" The window opens in April ")
    assert ledger_count(mw) == count + 2
    assert successor == mw.get(successor.id)
    assert successor.id != old.id
    assert successor.content == "The window opens in April"
    assert (successor.status, successor.type, successor.project) == ("active", "project", "atlas")
    assert successor.confidence == pytest.approx(0.9)
    assert (superseded.status, superseded.superseded_by) == ("superseded", successor.id)
    created = mw.history(successor.id)
    assert [e.action for e in created] == ["created"]
    check_entry(created[0], "created", None, successor)
    assert created[0].extra == {"supersedes": old.id}
    assert created[0].seq < last_entry(mw, old.id).seq
    check_entry(last_entry(mw, old.id), "superseded", old, superseded)


def test_supersede_by_content_reuses_an_active_restatement(mw: Memwarden) -> None:
    old = make_in_status(mw, "active")
    existing = mw.remember("atlas", "The window opens in April", status="active").memory
    superseded, successor = mw.supersede(old.id, content="the window opens in april!")
    assert successor.id == existing.id
    assert superseded.superseded_by == existing.id
    assert len(mw.list_memories()) == 2


def test_supersede_by_content_restating_a_candidate_is_refused(mw: Memwarden) -> None:
    old = make_in_status(mw, "active")
    candidate = mw.remember("atlas", "The window opens in April").memory
    error = raises_and_changes_nothing(
        mw,
        IllegalTransitionError,
        lambda: mw.supersede(old.id, content="The window opens in April"),
    )
    assert isinstance(error, IllegalTransitionError)
    assert error.memory_id == candidate.id and error.status == "candidate"


def test_supersede_across_projects_is_refused(mw: Memwarden) -> None:
    mw.add_project("borealis")
    old = make_in_status(mw, "active")
    other = mw.remember("borealis", "Borealis launches in May", status="active").memory
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.supersede(old.id, by=other.id))


def test_supersede_needs_exactly_one_successor(mw: Memwarden) -> None:
    old = make_in_status(mw, "active")
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.supersede(old.id))
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.supersede(old.id, by=old.id, content="x")
    )
    raises_and_changes_nothing(mw, NotFoundError, lambda: mw.supersede(old.id, by=old.id + 99))


@pytest.mark.parametrize(
    "operation", ["promote", "reject", "invalidate", "expire", "reinforce", "auto_promote"]
)
def test_operations_on_a_missing_memory(mw: Memwarden, operation: str) -> None:
    raises_and_changes_nothing(mw, NotFoundError, lambda: getattr(mw, operation)(4242))


def test_missing_memory_reads_and_updates(mw: Memwarden) -> None:
    with pytest.raises(NotFoundError):
        mw.get(4242)
    with pytest.raises(NotFoundError):
        mw.history(4242)
    raises_and_changes_nothing(mw, NotFoundError, lambda: mw.update(4242, content="x"))
    raises_and_changes_nothing(mw, NotFoundError, lambda: mw.supersede(4242, content="x"))


# -- illegal transitions -----------------------------------------------------------------------


def make_in_status(mw: Memwarden, status: str, content: str = STATEMENT) -> Memory:
    memory = mw.remember("atlas", content).memory
    if status in {"active", "invalid", "superseded"}:
        mw.promote(memory.id)
    if status == "rejected":
        mw.reject(memory.id)
    elif status == "expired":
        mw.expire(memory.id)
    elif status == "invalid":
        mw.invalidate(memory.id)
    elif status == "superseded":
        mw.supersede(memory.id, content=content + " (revised)")
    elif status == "erased":
        mw.erase(memory.id, "privacy request")
        scrub_all(mw)  # the background scrub writes too: finished before "changes nothing"
    memory = mw.get(memory.id)
    assert memory.status == status
    return memory


def _other_active(mw: Memwarden) -> int:
    return mw.remember("atlas", "A different active statement", status="active").memory.id


def _an_active(mw: Memwarden) -> int:
    return mw.list_memories(status="active")[0].id


ILLEGAL: list[tuple[str, str, Callable[[Memwarden, Memory], object]]] = [
    ("promote", "rejected", lambda mw, m: mw.promote(m.id)),
    ("promote", "active", lambda mw, m: mw.promote(m.id)),
    ("promote", "expired", lambda mw, m: mw.promote(m.id)),
    ("promote", "invalid", lambda mw, m: mw.promote(m.id)),
    ("promote", "superseded", lambda mw, m: mw.promote(m.id)),
    ("promote", "erased", lambda mw, m: mw.promote(m.id)),
    ("auto-promote", "active", lambda mw, m: mw.auto_promote(m.id)),
    ("auto-promote", "rejected", lambda mw, m: mw.auto_promote(m.id)),
    ("reject", "active", lambda mw, m: mw.reject(m.id)),
    ("reject", "rejected", lambda mw, m: mw.reject(m.id)),
    ("reject", "expired", lambda mw, m: mw.reject(m.id)),
    ("invalidate", "candidate", lambda mw, m: mw.invalidate(m.id)),
    ("invalidate", "invalid", lambda mw, m: mw.invalidate(m.id)),
    ("invalidate", "superseded", lambda mw, m: mw.invalidate(m.id)),
    ("expire", "active", lambda mw, m: mw.expire(m.id)),
    ("expire", "rejected", lambda mw, m: mw.expire(m.id)),
    ("expire", "expired", lambda mw, m: mw.expire(m.id)),
    ("reinforce", "expired", lambda mw, m: mw.reinforce(m.id)),
    ("reinforce", "rejected", lambda mw, m: mw.reinforce(m.id)),
    ("reinforce", "invalid", lambda mw, m: mw.reinforce(m.id)),
    ("reinforce", "superseded", lambda mw, m: mw.reinforce(m.id)),
    ("reinforce", "erased", lambda mw, m: mw.reinforce(m.id)),
    ("update", "rejected", lambda mw, m: mw.update(m.id, content="new words")),
    ("update", "expired", lambda mw, m: mw.update(m.id, confidence=0.1)),
    ("update", "superseded", lambda mw, m: mw.update(m.id, type="episodic")),
    ("update", "erased", lambda mw, m: mw.update(m.id, content="back again")),
    ("supersede", "candidate", lambda mw, m: mw.supersede(m.id, by=_an_active(mw))),
    ("supersede", "superseded", lambda mw, m: mw.supersede(m.id, content="newer words")),
    ("supersede", "rejected", lambda mw, m: mw.supersede(m.id, content="newer words")),
    ("supersede", "active", lambda mw, m: mw.supersede(m.id, by=m.id)),  # with itself
    ("supersede", "active", lambda mw, m: mw.supersede(m.id, content=m.content.upper() + ".")),
    ("erase", "erased", lambda mw, m: mw.erase(m.id, "again")),
    ("revert", "erased", lambda mw, m: mw.revert(m.id, mw.history(m.id)[0].seq)),
]


ILLEGAL_STATUSES = sorted({status for _, status, _ in ILLEGAL})


@pytest.mark.parametrize("status", ILLEGAL_STATUSES)
def test_illegal_transitions_name_the_status_and_change_nothing(mw: Memwarden, status: str) -> None:
    memory = make_in_status(mw, status)
    if status == "candidate":
        _other_active(mw)  # the successor offered to a candidate, made before the refusal
    cases = [(operation, call) for operation, s, call in ILLEGAL if s == status]
    assert cases
    for operation, call in cases:
        before = db_state(mw)
        with pytest.raises(IllegalTransitionError) as caught:
            call(mw, memory)
        assert db_state(mw) == before, f"{operation} on a {status} memory changed the database"
        error = caught.value
        assert (error.status, error.memory_id) == (status, memory.id), operation
        assert f"it is {status}" in str(error)
        assert f"memory {memory.id}" in str(error)
        assert operation in str(error)


def test_supersede_with_a_non_active_successor_names_the_successor(mw: Memwarden) -> None:
    old = make_in_status(mw, "active")
    for status in ("candidate", "rejected", "invalid"):
        successor = make_in_status(mw, status, content=f"Successor in status {status}")
        error = raises_and_changes_nothing(
            mw, IllegalTransitionError, lambda s=successor: mw.supersede(old.id, by=s.id)
        )
        assert isinstance(error, IllegalTransitionError)
        assert (error.memory_id, error.status) == (successor.id, status)
        assert f"it is {status}" in str(error)


# -- memory types ------------------------------------------------------------------------------


def test_default_memory_types(mw: Memwarden) -> None:
    defaults = ("identity", "preference", "project", "episodic", "knowledge", "adaptation")
    assert mw.settings.memory_types == defaults
    for type_ in defaults:
        assert mw.remember("atlas", f"A statement of type {type_}", type_).memory.type == type_
    assert mw.remember("atlas", "Shouted type", "  PREFERENCE ").memory.type == "preference"
    error = raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.remember("atlas", "x", "foo")
    )
    assert "MEMWARDEN_EXTRA_MEMORY_TYPES" in str(error)


def test_memory_types_extended_by_settings(mw: Memwarden) -> None:
    extended = mw.settings.model_copy(update={"extra_memory_types": "foo, BAR,,knowledge"})
    assert extended.memory_types[-2:] == ("foo", "bar")
    assert extended.memory_types.count("knowledge") == 1
    with Memwarden(extended) as wide:
        foo = wide.remember("atlas", "A foo statement", "foo").memory
        bar = wide.remember("atlas", "A bar statement", "Bar").memory
        assert (foo.type, bar.type) == ("foo", "bar")
        wide.promote(foo.id)
        assert [h.id for h in wide.recall("foo statement", "atlas", types=["foo"])] == [foo.id]
        assert wide.update(bar.id, type="foo").type == "foo"
    # the narrow configuration still reads them, and refuses new ones
    assert mw.get(foo.id).type == "foo"
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.remember("atlas", "y", "bar"))


def test_memory_types_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from memwarden import Settings

    monkeypatch.setenv("MEMWARDEN_EXTRA_MEMORY_TYPES", "skill,Tool")
    assert Settings().memory_types[-2:] == ("skill", "tool")


# -- listing -----------------------------------------------------------------------------------


def test_list_memories_filters_and_pages(mw: Memwarden) -> None:
    mw.add_project("borealis")
    ids = [mw.remember("atlas", f"Atlas statement {i}", "knowledge").memory.id for i in range(5)]
    mw.promote(ids[0])
    other = mw.remember("borealis", "Borealis statement", "episodic").memory.id
    assert [m.id for m in mw.list_memories()] == [other, *reversed(ids)]
    assert [m.id for m in mw.list_memories(project="atlas", status="active")] == [ids[0]]
    assert [m.id for m in mw.list_memories(type="episodic")] == [other]
    page1 = mw.list_memories(project="atlas", limit=2)
    page2 = mw.list_memories(project="atlas", limit=2, after_id=page1[-1].id)
    assert [m.id for m in page1 + page2] == list(reversed(ids))[:4]
    with pytest.raises(InvalidInputError):
        mw.list_memories(status="zombie")
    with pytest.raises(InvalidInputError):
        mw.list_memories(limit=0)


def test_refusals_list_the_allowed_states_in_plain_english(mw: Memwarden) -> None:
    from memwarden.core.lifecycle import one_of

    assert one_of({"candidate"}) == "a candidate"
    assert one_of({"candidate", "active"}) == "an active or candidate"
    assert one_of({"rejected", "candidate", "expired"}) == "a candidate, expired or rejected"
    memory = mw.remember("atlas", "Refused politely").memory
    mw.reject(memory.id)
    with pytest.raises(IllegalTransitionError) as refused:
        mw.update(memory.id, content="Changed")
    assert "only an active or candidate memory can be updated" in str(refused.value)
    mw.erase(memory.id, reason="test")
    with pytest.raises(IllegalTransitionError) as again:
        mw.erase(memory.id, reason="twice")
    assert (
        "only an active, candidate, expired, invalid, rejected or superseded memory can be erased"
        in str(again.value)
    )


@pytest.mark.parametrize("metadata", [None, {"source": "meeting", "n": 2}])
def test_create_stores_the_mac_of_its_row(
    mw: Memwarden, metadata: dict[str, object] | None
) -> None:
    """create() makes the MAC from the new memory's fields (not from a record read back): the
    row as stored carries that MAC, it is the MAC of the row's own fields, and the record
    returned holds it too."""
    import sqlalchemy as sa

    from memwarden.db import schema

    memory = mw.remember("atlas", STATEMENT, metadata=metadata).memory
    with mw.store.engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.memories).where(schema.memories.c.id == memory.id)
        ).one()
    assert row.mac is not None and row.mac == memory.mac
    assert mw.runtime.guard.macs.memory(row) == row.mac
    assert mw.runtime.guard.macs.memory(memory) == row.mac
    assert Memory.from_row(row) == memory
