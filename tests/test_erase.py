"""Privacy erase: the content leaves the live row, the full-text index, every ledger payload of
the memory and the bytes of the database files; the chain still verifies; the
erasure is recorded without content; what stays behind cannot confirm a guess. Both engines."""

from __future__ import annotations

import hmac
from hashlib import sha256

import pytest

from core_support import index_matches, raises_and_changes_nothing
from erase_support import disk_hits, scrub_all
from ledger_support import ledger_rows
from memwarden import Memwarden
from memwarden.audit.actor import acting_as
from memwarden.errors import IllegalTransitionError, InvalidInputError, NotFoundError

SECRET_WORD = "zanzibarquokka"
SECRET = f"the door code is {SECRET_WORD} seven"


def memory_rows(mw: Memwarden, memory_id: int) -> list[dict[str, object]]:
    return [
        r
        for r in ledger_rows(mw)
        if r["entity_type"] == "memory" and r["entity_id"] == str(memory_id)
    ]


@pytest.fixture
def erased(mw: Memwarden) -> tuple[Memwarden, int, list[dict[str, object]]]:
    """A memory with a rich history (restated, updated, promoted, with notes), then erased."""
    memory = mw.remember("atlas", SECRET, note=f"heard: {SECRET_WORD}").memory
    mw.remember("atlas", "the door code is ZANZIBARQUOKKA seven")  # restated: reinforced
    mw.update(memory.id, content=f"{SECRET}, changed monthly", note="more detail")
    mw.promote(memory.id)
    mw.remember("atlas", "An unrelated fact about the rover", status="active")
    before = memory_rows(mw, memory.id)
    assert len(before) == 4 and all(SECRET_WORD in str(r["body"]).lower() for r in before)
    assert index_matches(mw, SECRET_WORD) == {memory.id}
    assert disk_hits(mw, SECRET_WORD), "the test must be able to fail"
    with acting_as("dpo"):
        mw.erase(memory.id, "GDPR request #42")
    return mw, memory.id, before


def test_content_leaves_the_live_row_and_the_index(
    erased: tuple[Memwarden, int, list[dict[str, object]]],
) -> None:
    mw, memory_id, _ = erased
    memory = mw.get(memory_id)
    assert (memory.content, memory.status) == ("", "erased")
    assert memory.content_hash == f"erased:{memory_id}"
    assert index_matches(mw, SECRET_WORD) == set()
    assert index_matches(mw, "door") == set()


def test_recall_and_context_never_return_it(
    erased: tuple[Memwarden, int, list[dict[str, object]]],
) -> None:
    mw, memory_id, _ = erased
    for query in (SECRET_WORD, "door code", "door code changed monthly"):
        hits = mw.recall(query, "atlas")
        assert all(not (h.kind == "memory" and h.id == memory_id) for h in hits)
        assert all(SECRET_WORD not in h.content.lower() for h in hits)
    pack = mw.context("door code", "atlas")
    assert SECRET_WORD not in str(pack).lower()
    assert [m.id for m in mw.list_memories(status="active")] != [memory_id]


def test_every_ledger_payload_of_the_memory_is_blanked_and_the_chain_verifies(
    erased: tuple[Memwarden, int, list[dict[str, object]]],
) -> None:
    mw, memory_id, before = erased
    rows = memory_rows(mw, memory_id)
    *old, erasure = rows
    assert [r["seq"] for r in old] == [r["seq"] for r in before]
    assert all(r["body"] is None and r["erased_at"] is not None for r in old)
    for row in ledger_rows(mw):
        assert SECRET_WORD not in str(row["body"]).lower(), f"row {row['seq']} still holds it"
    report = mw.verify()
    assert report.ok, report.reason
    history = mw.history(memory_id)
    assert all(r.erased and r.before is None and r.after is None for r in history[:-1])
    # The erasure itself: who, why, which rows, and no content.
    last = history[-1]
    assert (last.action, last.actor, last.note) == ("erased", "dpo", "GDPR request #42")
    assert last.extra == {"erased_seqs": [r["seq"] for r in before]}
    assert last.after is not None and last.after["content"] == "" and not last.erased
    assert erasure["erased_at"] is None


def test_the_digest_left_behind_is_keyed(
    erased: tuple[Memwarden, int, list[dict[str, object]]],
) -> None:
    mw, memory_id, before = erased
    key = mw.settings.resolved_ledger_key_file.read_text().strip()
    after = {r["seq"]: r for r in memory_rows(mw, memory_id)}
    for row in before:
        body = str(row["body"])
        digest = after[row["seq"]]["payload_digest"]
        # Guessing the payload (even exactly) and hashing the guess confirms nothing ...
        assert digest != sha256(body.encode()).hexdigest()
        assert digest != sha256(SECRET.encode()).hexdigest()
        # ... only the key does.
        assert digest == hmac.digest(bytes.fromhex(key), body.encode(), "sha256").hex()


def test_the_erased_text_leaves_the_database_files(
    erased: tuple[Memwarden, int, list[dict[str, object]]],
) -> None:
    """SQLite: the file and its WAL; PostgreSQL: every page of the schema's tables, TOAST
    tables and indexes (the dead row versions and the GIN index's words included)."""
    mw, memory_id, _ = erased
    scrub_all(mw)  # PostgreSQL leaves it to the background: done now
    assert mw.erase_status(memory_id=memory_id).status == "scrubbed"
    assert disk_hits(mw, SECRET_WORD, "door code") == []


def test_erase_refusals_change_nothing(
    erased: tuple[Memwarden, int, list[dict[str, object]]],
) -> None:
    mw, memory_id, _ = erased
    scrub_all(mw)  # the background scrub writes too: let it finish first
    raises_and_changes_nothing(
        mw,
        IllegalTransitionError,
        lambda: mw.erase(memory_id, "again"),
        match="erased",
    )
    raises_and_changes_nothing(mw, NotFoundError, lambda: mw.erase(999, "nope"), match="not found")
    other = mw.remember("atlas", "Keep this one").memory
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.erase(other.id, "   "))
    for operation in ("promote", "reinforce", "invalidate"):
        raises_and_changes_nothing(
            mw,
            IllegalTransitionError,
            lambda op=operation: getattr(mw, op)(memory_id),
        )
    raises_and_changes_nothing(
        mw,
        IllegalTransitionError,
        lambda: mw.update(memory_id, content="resurrected"),
    )


def test_a_new_memory_may_say_the_same_thing_again(
    erased: tuple[Memwarden, int, list[dict[str, object]]],
) -> None:
    """Erasing frees the statement: the live-content guard no longer holds it."""
    mw, memory_id, _ = erased
    again = mw.remember("atlas", "A different statement entirely").memory
    assert again.id != memory_id
    assert mw.verify().ok


def test_erasing_a_superseded_memory_keeps_its_successor(mw: Memwarden) -> None:
    memory = mw.remember("atlas", SECRET, status="active").memory
    _, successor = mw.supersede(memory.id, content="The door code is kept in the safe")
    mw.erase(memory.id, "privacy request")
    assert mw.get(successor.id).content == "The door code is kept in the safe"
    assert mw.history(successor.id)[-1].after == mw.get(successor.id).snapshot()
    assert index_matches(mw, SECRET_WORD) == set()
    assert mw.verify().ok
