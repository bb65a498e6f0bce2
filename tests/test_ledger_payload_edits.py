"""A ledger row or payload edited in the database (by someone without the ledger key) is never
a source of truth: ``integrity check --fix`` does not restore from it, ``revert`` does not
revert to it, time travel (as-of, diff, blame) and evidence bundles refuse it, and history
shows it marked. Before, each of them read payloads without their tag: a forged payload, the
memory row edited to match, and ``--fix`` sealed the forgery with a new MAC and a new tagged
row (found by an attack session). Both engines."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import sqlalchemy as sa

from ledger_support import attacker, set_fields
from memwarden import Memwarden
from memwarden.errors import TamperedLedgerError, TamperedRowError

TRUE = "The fuel supplier is Acme Corp"
FORGED = "The fuel supplier is Evil Corp"


def sql(mw: Memwarden, statement: str, **params: Any) -> None:
    """An edit straight in the database, as someone with write access to it would make."""
    with mw.store.write() as unit:
        unit.conn.execute(sa.text(statement), params)


def forge_payload(mw: Memwarden, seq: int) -> None:
    """Rewrite the row's payload so its snapshot says FORGED (the digest in the entry, which
    the tag covers, cannot be recomputed without the key)."""
    with mw.store.read() as conn:
        body = conn.execute(
            sa.text("SELECT body FROM ledger_payloads WHERE seq = :seq"), {"seq": seq}
        ).scalar_one()
    payload = json.loads(body)
    for side in ("before", "after"):
        snapshot = payload.get(side)
        if snapshot and snapshot.get("content") == TRUE:
            snapshot["content"] = FORGED
            snapshot["content_hash"] = hashlib.sha256(FORGED.encode()).hexdigest()
    sql(
        mw,
        "UPDATE ledger_payloads SET body = :body WHERE seq = :seq",
        body=json.dumps(payload),
        seq=seq,
    )


def seqs(mw: Memwarden, memory_id: int) -> list[int]:
    return [record.seq for record in mw.history(memory_id)]


@pytest.fixture
def memory(mw: Memwarden) -> int:
    """A memory created with TRUE, then reinforced: two ledger rows carry TRUE."""
    created = mw.remember("atlas", TRUE, status="active").memory
    mw.reinforce(created.id)
    return created.id


def test_fix_does_not_restore_a_memory_from_an_edited_payload(mw: Memwarden, memory: int) -> None:
    last = seqs(mw, memory)[-1]
    forge_payload(mw, last)
    sql(
        mw,
        "UPDATE memories SET content = :content, content_hash = :hash WHERE id = :id",
        content=FORGED,
        hash=hashlib.sha256(FORGED.encode()).hexdigest(),
        id=memory,
    )
    report = mw.integrity_check(fix=True)
    restores = [r for r in report.repairs if r.check == "tampered_memories"]
    assert [(r.target, r.applied) for r in restores] == [(memory, False)]
    assert restores[0].error is not None and f"ledger row {last} fails its tag" in restores[0].error
    # Still withheld: nothing sealed the forged text with a new MAC.
    with pytest.raises(TamperedRowError):
        mw.get(memory)
    assert FORGED not in [hit.content for hit in mw.recall("fuel supplier", "atlas")]
    assert [r.action for r in mw.history(memory)][-1] != "restored"
    assert not mw.verify().ok  # and the chain's own check names the edit


def test_revert_refuses_a_version_whose_payload_was_edited(mw: Memwarden, memory: int) -> None:
    first = seqs(mw, memory)[0]
    mw.update(memory, content="The fuel supplier changed")
    forge_payload(mw, first)
    with pytest.raises(TamperedLedgerError, match=f"ledger row {first} fails its tag"):
        mw.revert(memory, first)
    with pytest.raises(TamperedLedgerError):
        mw.revert_preview(memory, first)
    assert mw.get(memory).content == "The fuel supplier changed"


def test_time_travel_and_evidence_refuse_an_edited_history(mw: Memwarden, memory: int) -> None:
    first, second = seqs(mw, memory)[:2]
    forge_payload(mw, first)
    history = mw.history(memory)
    assert [(r.seq, r.authentic) for r in history] == [(first, False), (second, True)]
    for call in (
        lambda: mw.blame(memory),
        lambda: mw.diff(memory, first, second),
        lambda: mw.as_of(memory, __import__("datetime").datetime.now()),
        lambda: mw.export_evidence(memory),
    ):
        with pytest.raises(TamperedLedgerError, match=f"ledger row {first}"):
            call()
    story = mw.memory_story(memory)
    assert story.blame == [] and not any(v.revertible for v in story.versions[:1])
    assert all(r.authentic is not False for r in mw.recent(limit=50) if r.seq != first)
    assert [r.authentic for r in mw.recent(limit=50) if r.seq == first] == [False]


def test_an_edited_entry_field_fails_too(mw: Memwarden, memory: int) -> None:
    """The entry's own fields (here its actor) are covered by the tag as the payload is."""
    first = seqs(mw, memory)[0]
    with attacker(mw) as conn:  # the append-only triggers dropped first, as an attacker would
        set_fields(conn, first, actor="person:someone-else")
    assert [r.authentic for r in mw.history(memory)][0] is False
    with pytest.raises(TamperedLedgerError):
        mw.blame(memory)


def test_an_untouched_history_is_authentic_throughout(mw: Memwarden, memory: int) -> None:
    mw.update(memory, content="The fuel supplier changed")
    mw.revert(memory, seqs(mw, memory)[0])
    assert all(r.authentic is True for r in mw.history(memory))
    assert mw.blame(memory)
    assert mw.export_evidence(memory)["memory_id"] == memory


def test_an_edited_payload_marked_erased_still_fails(mw: Memwarden, memory: int) -> None:
    """An erase blanks a payload's body and marks it: a forged body left under an erased mark
    must not pass (as ``audit verify`` checks any body there; found by a review)."""
    first = seqs(mw, memory)[0]
    forge_payload(mw, first)
    sql(
        mw,
        "UPDATE ledger_payloads SET erased_at = '2026-12-01T00:00:00.000000Z' WHERE seq = :s",
        s=first,
    )
    assert [r.authentic for r in mw.history(memory)][0] is False
    with pytest.raises(TamperedLedgerError):
        mw.blame(memory)
