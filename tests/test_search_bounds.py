"""The bounded full-text search: common words never widen the candidates, yet still count.

Both engines. The corpus is loaded in bulk (no ledger rows: these tests are about search) and
sized around the smallest cap (500 documents): "alpha" is mid-common (in more than ``cap``
documents but at most ``4 × cap``), "the" is a stop word for this corpus (in every one of its
2,100 documents), "omega" is rare.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.core import search, search_common, search_postgres
from memwarden.core.text import content_hash
from memwarden.db import schema

DOCUMENTS = 2_100
ALPHA = 600
OMEGA = 30


def _load(mw: Memwarden) -> int:
    """The corpus; returns the id of the one document holding both "omega" and "alpha"."""
    now = datetime.now(UTC)
    texts = []
    for index in range(DOCUMENTS):
        words = ["the", f"filler{index}"]
        if index < ALPHA:
            words.append("alpha")
        if DOCUMENTS - OMEGA <= index:
            words += ["omega", "omega"]
        texts.append(" ".join(words))
    # The one document with both words says "omega" once where the others say it twice, and
    # it is the newest (recall breaks ties by the lower id): on "omega" alone it ranks last.
    both = "the omega alpha alpha"
    texts.append(both)
    rows = [
        {
            "project": "atlas", "type": "knowledge", "content": text,
            "content_hash": content_hash(text), "confidence": 0.5, "status": "active",
            "source_chunk_id": None, "reinforcement_count": 0, "superseded_by": None,
            "created_at": now, "updated_at": now, "last_reinforced_at": None,
        }
        for text in texts
    ]  # fmt: skip
    with mw.store.engine.begin() as conn:
        conn.execute(sa.insert(schema.memories), rows)
        for row in conn.execute(sa.select(schema.memories)).all():  # signed, as memwarden would
            conn.execute(
                sa.update(schema.memories)
                .where(schema.memories.c.id == row.id)
                .values(mac=mw.runtime.guard.macs.memory(row))
            )
    if mw.store.dialect == "postgresql":
        # PostgreSQL learns how common each word is from its statistics (autovacuum's job).
        with mw.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE memories")
    with mw.store.read() as conn:
        return int(conn.execute(sa.select(schema.memories.c.id).where(
            schema.memories.c.content == both)).scalar_one())  # fmt: skip


def _ids(mw: Memwarden, query: str, k: int = 10) -> list[int]:
    return [hit.id for hit in mw.recall(query, "atlas", k=k, include_chunks=False)]


def _contents(mw: Memwarden, ids: list[int]) -> list[str]:
    return [mw.get(memory_id).content for memory_id in ids]


def test_a_common_word_adds_to_the_score_without_widening_the_candidates(mw: Memwarden) -> None:
    both = _load(mw)
    hits = _ids(mw, "alpha omega", k=50)
    assert hits[0] == both, "the document holding the mid-common word too must rank first"
    # Candidates come from the rare word only: no document with just "alpha" is returned.
    assert len(hits) == OMEGA + 1
    assert all("omega" in text for text in _contents(mw, hits))


def test_a_stop_word_is_ignored(mw: Memwarden) -> None:
    _load(mw)
    hits = _ids(mw, "the omega", k=50)
    assert len(hits) == OMEGA + 1
    assert all("omega" in text for text in _contents(mw, hits))


def test_only_common_words_still_find_documents(mw: Memwarden) -> None:
    _load(mw)
    hits = _ids(mw, "the alpha")
    assert len(hits) == 10
    assert all("alpha" in text for text in _contents(mw, hits))


def test_the_candidate_budget_groups_the_commoner_selective_terms() -> None:
    frequency = {"a": 10, "b": 300, "c": 400, "d": 450}
    plan = search.plan_terms(list(frequency), frequency, cap=500, boost=["x"])
    assert plan == search.Plan(any_of=["a", "b"], all_of=["c", "d"], boost=["x"])
    # A group of one is just one more OR-ed term.
    frequency = {"a": 10, "b": 300, "c": 400}
    plan = search.plan_terms(list(frequency), frequency, cap=500)
    assert plan == search.Plan(any_of=["a", "b", "c"], all_of=[], boost=[])
    # Nothing selective: no plan, the caller takes the bounded path.
    assert search.plan_terms(["z"], {"z": 900}, cap=500) is None


def test_postgres_searches_a_corpus_in_two_statements(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the row count and the terms' stems are one round trip, the ranking the
    other (the statistics cached); words seen in the last minute need the ranking alone; an
    empty corpus stops after its row count; without statistics every term's bounded count is
    one statement, each count the right term's."""
    if mw.store.dialect != "postgresql":
        pytest.skip("PostgreSQL's statements")
    both = _load(mw)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    terms = ["omega", "alpha", "zeta"]
    sa.event.listen(mw.store.engine, "before_cursor_execute", record)
    try:
        with mw.store.read() as conn:
            for corpus in (search.MEMORIES, search.CHUNKS):  # the statistics, then cached
                search.search(conn, corpus, terms, 10, "atlas")
            statements.clear()
            found = search.search(conn, search.MEMORIES, terms, 50, "atlas")
            assert len(statements) == 1, statements  # stems and row count remembered
            assert found[0].id == both and len(found) == OMEGA + 1
            statements.clear()
            again = search.search(conn, search.MEMORIES, [*terms, "filler7"], 50, "atlas")
            assert len(statements) == 2, statements  # a new word: stemmed, then ranked
            assert len(again) == OMEGA + 2  # and "filler7" found its one document
            statements.clear()
            assert search.search(conn, search.CHUNKS, terms, 10, "atlas") == []
            assert len(statements) == 1, statements
            monkeypatch.setattr(search_postgres, "_postgres_statistics", lambda *a: None)
            statements.clear()
            cap, frequency = search_postgres.frequencies(conn, search.MEMORIES, ["the", *terms])
            assert len(statements) == 2, statements
    finally:
        sa.event.remove(mw.store.engine, "before_cursor_execute", record)
    assert cap == search_common.MIN_CAP  # 1% of about 2,100 rows is less
    common = search_common.BOOST_FACTOR * cap + 1  # counted no further than the cap: common
    assert frequency == {"the": common, "omega": OMEGA + 1, "alpha": common, "zeta": 0}
