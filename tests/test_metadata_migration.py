"""Migration 0017_metadata on both engines, with data: existing rows keep their MACs (a NULL
metadata is no part of the MAC's message); down drops the column (and PostgreSQL's helper
function), up adds it back, and a memory whose metadata the downgrade dropped is caught by
its MAC and restored from its ledger snapshot by ``integrity check --fix``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import migrate
from memwarden.db.store import Store
from memwarden.errors import TamperedRowError


def columns(store: Store) -> set[str]:
    return {c["name"] for c in sa.inspect(store.engine).get_columns("memories")}


def test_metadata_migration_round_trip_with_data(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        plain = mw.remember("atlas", "The crew is four people", status="active").memory
        tagged = mw.remember(
            "atlas", "The dock is on level 3", status="active", metadata={"room": "dock"}
        ).memory
    store = Store(settings)
    try:
        with store.read() as conn:
            macs_before = dict(conn.execute(sa.text("SELECT id, mac FROM memories")).all())
        migrate.downgrade(store, "0017_metadata@-1")  # only this branch goes
        assert "0017_metadata" not in migrate.current_revisions(store)
        assert "metadata" not in columns(store)
        with store.read() as conn:  # the rows' MACs are untouched by the downgrade
            assert dict(conn.execute(sa.text("SELECT id, mac FROM memories")).all()) == macs_before
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
        assert "metadata" in columns(store)
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        assert mw.get(plain.id).content == "The crew is four people"  # its old MAC holds
        with pytest.raises(TamperedRowError):  # its metadata went with the downgrade
            mw.get(tagged.id)
        mw.integrity_check(fix=True)
        assert mw.get(tagged.id).meta == {"room": "dock"}  # back from its ledger snapshot
        assert [m.id for m in mw.list_memories(where=["room=dock"])] == [tagged.id]


def test_row_macs_bless_a_store_from_before_the_metadata_column(settings: Settings) -> None:
    """Upgrading a store that has neither: 0010_row_macs runs first and reads rows without
    the metadata column; the MACs it gives hold once 0017 has added it."""
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        kept = mw.remember("atlas", "The launch is in March", status="active").memory
    store = Store(settings)
    try:
        migrate.downgrade(store, "0017_metadata@-1")
        migrate.downgrade(store, "0010_row_macs@-1")
        assert {"metadata", "mac"}.isdisjoint(columns(store))
        migrate.upgrade(store, "0010_row_macs")  # as alembic may order them: 0010 first
        assert "mac" in columns(store) and "metadata" not in columns(store)
        migrate.upgrade(store)
        assert {"metadata", "mac"} <= columns(store)
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        assert mw.get(kept.id).content == "The launch is in March"
