"""Migration 0013_recall on both engines: stemmed full text and the vector tables, down and up
again with the rows already there."""

from __future__ import annotations

import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import migrate
from memwarden.db.store import Store


def _stemmed_match(store: Store) -> bool:
    """Does the memories index find "prefers" for "prefer"?"""
    with store.engine.connect() as conn:
        if store.is_sqlite:
            sql = "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH 'prefer'"
        else:
            sql = (
                "SELECT count(*) FROM memories WHERE content_tsv @@ to_tsquery('english', 'prefer')"
            )
        return int(conn.execute(sa.text(sql)).scalar_one()) > 0


def test_0013_down_and_up_keeps_the_rows_and_rebuilds_the_index(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("p")
        memory = mw.remember("p", "The user prefers tea", status="active").memory.id
    store = Store(settings)
    try:
        assert _stemmed_match(store)
        migrate.downgrade(store, "0013_recall@-1")
        assert "0013_recall" not in migrate.current_revisions(store)
        tables = set(sa.inspect(store.engine).get_table_names())
        assert not {"embeddings", "vector_generation"} & tables
        assert not _stemmed_match(store)  # the plain index again, rebuilt from the rows
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
        assert _stemmed_match(store)  # rebuilt over the rows already there
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        assert [h.id for h in mw.recall("preferring", "p")] == [memory]
