"""Migration 0016_checkpoints: upgrade and downgrade of its own branch, on both engines, with a
tree and checkpoints in it; after the round trip the tree is built again from the ledger."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.audit import tree
from memwarden.db import migrate, schema
from memwarden.db.store import Store

TABLES = (
    schema.merkle_nodes,
    schema.merkle_state,
    schema.checkpoints,
    schema.checkpoint_publications,
)


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_upgrade_downgrade_upgrade(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree, "STORED_LEVEL", 2)  # stored nodes from 4 leaves up: a few levels
    monkeypatch.setattr(tree, "TILE", 4)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        for index in range(20):
            mw.remember("atlas", f"fact {index}")
        before = mw.checkpoint().record
    store = Store(settings)
    try:
        with store.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tree.N)).scalar_one() > 3
        assert "0016_checkpoints" in migrate.current_revisions(store)
        inspector = sa.inspect(store.engine)
        for table in TABLES:  # the migration and schema.py declare the same columns
            found = {c["name"] for c in inspector.get_columns(table.name)}
            assert found == {c.name for c in table.columns}
        migrate.downgrade(store, "0016_checkpoints@-1")  # only this branch goes
        assert "0016_checkpoints" not in migrate.current_revisions(store)
        assert not {t.name for t in TABLES} & tables(store)
        assert {"ledger", "memories", "projects"} <= tables(store)
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        assert mw.checkpoints.latest() is None
        again = mw.checkpoint().record  # rebuilt from the ledger alone: the same head
        assert (again.tree_size, again.root) == (before.tree_size, before.root)
        assert mw.verify_checkpoint(before.note).ok
