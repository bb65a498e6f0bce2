"""The triage queue: listing with origins, details, decisions by human-triage, all or nothing."""

from __future__ import annotations

import pytest

from core_support import raises_and_changes_nothing
from memwarden import Memwarden
from memwarden.audit.actor import HUMAN_TRIAGE
from memwarden.errors import ConflictError, IllegalTransitionError, InvalidInputError, NotFoundError


def extracted(mw: Memwarden, *prompts: str) -> list[int]:
    for prompt in prompts:
        mw.capture("atlas", prompt, "Noted.", "claude-code")
    return mw.extract().created


def test_the_queue_lists_candidates_newest_first_with_their_origin(mw: Memwarden) -> None:
    ids = extracted(mw, "I prefer tabs over spaces.", "We decided to use Kafka.", "My name is Ada.")
    mw.remember("atlas", "Made by hand.", "knowledge", status="active")
    items = mw.triage_queue()
    assert [i.memory.id for i in items] == ids[::-1] and mw.triage_size() == 3
    assert all(i.source is not None and i.source.extractor == "rules" for i in items)
    assert [i.source.interaction_id for i in items if i.source] == [3, 2, 1]
    page = mw.triage_queue(limit=2)
    rest = mw.triage_queue(after_id=page[-1].memory.id)
    assert [i.memory.id for i in page + rest] == ids[::-1]
    assert [i.memory.id for i in mw.triage_queue(type="identity")] == [ids[2]]
    assert (
        mw.triage_queue(project="atlas", limit=1)[0].to_dict()["origins"][0]["interaction_id"] == 3
    )


def test_queue_arguments_are_checked(mw: Memwarden) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        mw.triage_queue(limit=501)
    with pytest.raises(NotFoundError, match="unknown project"):
        mw.triage_queue(project="ghost")
    with pytest.raises(InvalidInputError, match="unknown memory type"):
        mw.triage_queue(type="opinion")
    with pytest.raises(NotFoundError, match="cursor"):
        mw.triage_queue(after_id=12345)


def test_detail_shows_the_source_interaction_and_similar_active_memories(mw: Memwarden) -> None:
    close = mw.remember(
        "atlas", "I prefer tabs over spaces in Go code.", "preference", status="active"
    ).memory
    mw.remember("atlas", "The moon is far away.", "knowledge", status="active")
    (new,) = extracted(mw, "I prefer tabs over spaces in Python code.")
    detail = mw.triage_detail(new)
    assert detail.interaction is not None and detail.interaction.client == "claude-code"
    assert detail.interaction.prompt == "I prefer tabs over spaces in Python code."
    assert [s.memory.id for s in detail.similar] == [close.id] and detail.similar[0].score > 0.5
    made = mw.remember("atlas", "Created directly.", "knowledge").memory
    assert mw.triage_detail(made.id).interaction is None


def test_promote_and_reject_are_made_by_human_triage(mw: Memwarden) -> None:
    a, b, c = extracted(
        mw, "I prefer tabs over spaces.", "We decided to use Kafka.", "My name is Ada."
    )
    promoted = mw.triage_promote([a, b, a], note="checked with the team")
    assert [m.status for m in promoted] == ["active", "active"]
    rejected = mw.triage_reject([c])
    assert rejected[0].status == "rejected"
    for memory_id, action in ((a, "promoted"), (b, "promoted"), (c, "rejected")):
        last = mw.history(memory_id)[-1]
        assert (last.action, last.actor) == (action, HUMAN_TRIAGE)
    assert mw.history(a)[-1].note == "checked with the team"
    assert mw.triage_size() == 0


def test_a_decision_on_several_is_all_or_nothing(mw: Memwarden) -> None:
    a, b = extracted(mw, "I prefer tabs over spaces.", "We decided to use Kafka.")
    mw.triage_reject([b])
    raises_and_changes_nothing(mw, IllegalTransitionError, lambda: mw.triage_promote([a, b]))
    raises_and_changes_nothing(mw, NotFoundError, lambda: mw.triage_reject([a, 999]))
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.triage_promote([]))
    assert mw.get(a).status == "candidate"


def test_edit_then_promote_records_both_steps(mw: Memwarden) -> None:
    (a,) = extracted(mw, "Btw I prefer tabs over spaces")
    memory = mw.triage_edit_promote(a, "Prefers tabs over spaces (Python and Go).", "clarified")
    assert (memory.status, memory.content) == (
        "active",
        "Prefers tabs over spaces (Python and Go).",
    )
    steps = [(r.action, r.actor) for r in mw.history(a)]
    assert steps[-2:] == [("updated", HUMAN_TRIAGE), ("promoted", HUMAN_TRIAGE)]
    raises_and_changes_nothing(
        mw, IllegalTransitionError, lambda: mw.triage_edit_promote(a, "again")
    )
    (b,) = extracted(mw, "I prefer dark mode.")
    raises_and_changes_nothing(
        mw,
        ConflictError,
        lambda: mw.triage_edit_promote(b, "Prefers tabs over spaces (Python and Go)."),
    )
    raises_and_changes_nothing(mw, InvalidInputError, lambda: mw.triage_edit_promote(b, "  "))
