"""Projects and their key/value state, with their ledger entries, on both engines."""

from __future__ import annotations

import json

import pytest

from core_support import ledger_count, raises_and_changes_nothing
from memwarden import Memwarden
from memwarden.audit.actor import acting_as
from memwarden.errors import ConflictError, InvalidInputError, NotFoundError


def state_history(
    mw: Memwarden, project: str, category: str, key: str
) -> list[tuple[str, object, object]]:
    entity = json.dumps([project, category, key], ensure_ascii=False, separators=(",", ":"))
    return [
        (r.action, r.before, r.after)
        for r in reversed(mw.recent(entity_type="project_state"))
        if r.entity_id == entity
    ]


def test_add_and_list_projects(mw: Memwarden) -> None:
    with acting_as("tester"):
        project = mw.add_project("borealis", "the northern mission")
    assert (project.name, project.description) == ("borealis", "the northern mission")
    mw.add_project("Aurora-2.b_x")
    assert [p.name for p in mw.list_projects()] == sorted(["atlas", "borealis", "Aurora-2.b_x"])
    entry = mw.recent(entity_type="project", limit=2)[1]
    assert (entry.entity_id, entry.action, entry.actor, entry.before) == (
        "borealis",
        "created",
        "tester",
        None,
    )
    assert entry.after == project.snapshot()


def test_duplicate_and_invalid_project_names(mw: Memwarden) -> None:
    raises_and_changes_nothing(mw, ConflictError, lambda: mw.add_project("atlas"))
    for bad in ("", " ", "-leading", "has space", "x" * 101, "semi;colon", "ümlaut"):
        raises_and_changes_nothing(mw, InvalidInputError, lambda b=bad: mw.add_project(b))


def test_remove_an_empty_project(mw: Memwarden) -> None:
    mw.add_project("borealis")
    count = ledger_count(mw)
    mw.remove_project("borealis")
    assert [p.name for p in mw.list_projects()] == ["atlas"]
    assert ledger_count(mw) == count + 1
    entry = mw.recent(limit=1)[0]
    assert (entry.entity_type, entry.entity_id, entry.action, entry.after) == (
        "project",
        "borealis",
        "deleted",
        None,
    )
    assert entry.before is not None and entry.before["name"] == "borealis"
    raises_and_changes_nothing(mw, NotFoundError, lambda: mw.remove_project("borealis"))


@pytest.mark.parametrize("holding", ["memory", "state", "document", "rejected-memory"])
def test_remove_a_project_that_holds_anything_is_refused(mw: Memwarden, holding: str) -> None:
    mw.add_project("borealis")
    if holding == "memory":
        mw.remember("borealis", "Borealis flies north")
    elif holding == "rejected-memory":
        mw.reject(mw.remember("borealis", "Borealis flies south").memory.id)
    elif holding == "state":
        mw.set_state("borealis", "status", "phase", "design")
    else:
        mw.ingest_text("borealis", "plan.md", "# Plan\n\nFly north.")
    error = raises_and_changes_nothing(mw, ConflictError, lambda: mw.remove_project("borealis"))
    assert "borealis" in str(error)


def test_state_set_get_update_list_delete(mw: Memwarden) -> None:
    count = ledger_count(mw)
    with acting_as("tester"):
        first = mw.set_state("atlas", "schedule", "launch", "March", source="meeting 3")
    assert mw.get_state("atlas", "schedule", "launch") == first
    assert (first.value, first.source, first.created_at) == ("March", "meeting 3", first.updated_at)
    with acting_as("tester"):
        second = mw.set_state("atlas", "schedule", "launch", "April", source="meeting 4")
    assert mw.get_state("atlas", "schedule", "launch") == second
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    mw.set_state("atlas", "team", "lead", "Ada")
    mw.set_state("atlas", "schedule", "review", "weekly")
    assert [(e.category, e.key) for e in mw.list_state("atlas")] == [
        ("schedule", "launch"),
        ("schedule", "review"),
        ("team", "lead"),
    ]
    assert [e.key for e in mw.list_state("atlas", "team")] == ["lead"]
    assert ledger_count(mw) == count + 4
    with acting_as("tester"):
        deleted = mw.delete_state("atlas", "schedule", "launch")
    assert deleted == second
    with pytest.raises(NotFoundError):
        mw.get_state("atlas", "schedule", "launch")
    assert ledger_count(mw) == count + 5
    history = state_history(mw, "atlas", "schedule", "launch")
    assert history == [
        ("state_set", None, first.snapshot()),
        ("state_set", first.snapshot(), second.snapshot()),
        ("state_deleted", second.snapshot(), None),
    ]
    latest = mw.recent(limit=1)[0]
    assert (latest.actor, latest.project, latest.entity_type) == (
        "tester",
        "atlas",
        "project_state",
    )


def test_state_is_per_project(mw: Memwarden) -> None:
    mw.add_project("borealis")
    mw.set_state("atlas", "schedule", "launch", "March")
    mw.set_state("borealis", "schedule", "launch", "June")
    assert mw.get_state("atlas", "schedule", "launch").value == "March"
    assert mw.get_state("borealis", "schedule", "launch").value == "June"
    mw.delete_state("borealis", "schedule", "launch")
    assert mw.get_state("atlas", "schedule", "launch").value == "March"


def test_state_keys_with_separators_stay_apart(mw: Memwarden) -> None:
    mw.set_state("atlas", "a/b", "c", "one")
    mw.set_state("atlas", "a", "b/c", "two")
    assert mw.get_state("atlas", "a/b", "c").value == "one"
    assert mw.get_state("atlas", "a", "b/c").value == "two"
    assert len(state_history(mw, "atlas", "a/b", "c")) == 1


def test_state_bad_input_changes_nothing(mw: Memwarden) -> None:
    error = raises_and_changes_nothing(
        mw, NotFoundError, lambda: mw.set_state("ghost", "schedule", "launch", "March")
    )
    assert "memwarden project add ghost" in str(error)
    raises_and_changes_nothing(mw, NotFoundError, lambda: mw.list_state("ghost"))
    raises_and_changes_nothing(
        mw, NotFoundError, lambda: mw.delete_state("atlas", "schedule", "nothing")
    )
    for category, key, value in [
        ("", "k", "v"),
        ("c", "  ", "v"),
        ("c", "k", "   "),
        ("c\n", "k", "v"),
        ("c", "k" * 201, "v"),
    ]:
        raises_and_changes_nothing(
            mw, InvalidInputError, lambda c=category, k=key, v=value: mw.set_state("atlas", c, k, v)
        )
    with pytest.raises(NotFoundError):
        mw.get_state("atlas", "schedule", "launch")
