"""What a recalled memory replaced is read with the candidates (recall_hits.memory_hits), not
by a statement of its own, and is still complete, ordered and MAC-checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.db import schema
from memwarden.errors import NotFoundError


@pytest.fixture
def statements(mw: Memwarden) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(mw.store.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(mw.store.engine, "before_cursor_execute", record)


def _successor_of_two(mw: Memwarden) -> tuple[int, int, int]:
    """Two memories replaced by the same statement: (first, second, successor)."""
    mw.add_project("p")
    first = mw.remember("p", "The launch is in March", status="active").memory.id
    second = mw.remember("p", "The launch is in May", status="active").memory.id
    _, successor = mw.supersede(first, content="The launch is in April")
    _, again = mw.supersede(second, content="The launch is in April")
    assert again.id == successor.id  # the active restatement is reused
    for index in range(5):
        mw.remember("p", f"The launch checklist has item {index}", status="active")
    return first, second, successor.id


def test_a_recall_reads_what_its_hits_replaced_with_them(
    mw: Memwarden, statements: list[str]
) -> None:
    first, second, successor = _successor_of_two(mw)
    statements.clear()
    hits = mw.recall("launch April", "p", mode="text")
    assert hits[0].id == successor
    replaced = hits[0].provenance["supersedes"]
    assert [r["memory_id"] for r in replaced] == [first, second]
    assert [r["content"] for r in replaced] == ["The launch is in March", "The launch is in May"]
    assert all(r["by"] and r["at"] for r in replaced)
    for other in hits[1:]:
        assert "supersedes" not in other.provenance
    by_successor = [s for s in statements if "superseded_by" in s and " WHERE " in s]
    by_successor = [s for s in by_successor if "superseded_by" in s.split(" WHERE ", 1)[1]]
    # One statement looks them up, and it is the one that reads the hits themselves.
    assert len(by_successor) == 1, by_successor
    assert "memories.id" in by_successor[0].split(" WHERE ", 1)[1]


def test_a_replaced_memory_that_fails_its_mac_is_not_shown(mw: Memwarden) -> None:
    first, second, successor = _successor_of_two(mw)
    with mw.store.engine.begin() as conn:  # an edit behind memwarden's back
        conn.execute(
            sa.update(schema.memories)
            .where(schema.memories.c.id == first)
            .values(content="The launch is cancelled")
        )
    (hit,) = [h for h in mw.recall("launch April", "p", mode="text") if h.id == successor]
    assert [r["memory_id"] for r in hit.provenance["supersedes"]] == [second]


def test_a_superseded_hit_shown_with_its_replacement(mw: Memwarden) -> None:
    first, _, successor = _successor_of_two(mw)
    hits = mw.recall("launch March", "p", mode="text", include_superseded=True)
    old = next(h for h in hits if h.id == first)
    assert old.provenance["status"] == "superseded"
    assert old.provenance["replaced"]["by_memory"] == successor
    new = next(h for h in hits if h.id == successor)
    assert first in [r["memory_id"] for r in new.provenance["supersedes"]]


def test_a_text_recall_of_a_missing_project_is_refused_after_its_search(
    mw: Memwarden, statements: list[str]
) -> None:
    """Text recall checks the project only when it found nothing (a hit proves it exists);
    a project that does not exist is refused all the same, even when other projects hold
    the words."""
    _successor_of_two(mw)
    for call in (
        lambda: mw.recall("launch", "ghost", mode="text"),
        lambda: mw.recall("launch", "ghost", mode="text", include_superseded=True),
        lambda: mw.context("launch", "ghost", mode="text"),
    ):
        with pytest.raises(NotFoundError, match="memwarden project add ghost"):
            call()
    statements.clear()
    assert mw.recall("launch", "p", mode="text")
    assert not [s for s in statements if "FROM projects" in s]
    statements.clear()
    assert mw.recall("nothing-matches-this", "p", mode="text") == []
    assert [s for s in statements if "FROM projects" in s]
