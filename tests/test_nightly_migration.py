"""Migration 0007_nightly: its own branch goes down and comes back, on both engines."""

from __future__ import annotations

import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import migrate, schema
from memwarden.db.store import Store
from memwarden.nightly import run_nightly

TABLES = (schema.harness_runs, schema.nightly_runs, schema.nightly_steps, schema.nightly_lock)


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_upgrade_downgrade_upgrade(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Still here after the round trip.", status="active")
        run_nightly(mw, skip={"integrity"})
    store = Store(settings)
    try:
        assert "0007_nightly" in migrate.current_revisions(store)
        inspector = sa.inspect(store.engine)
        for table in TABLES:  # the migration and schema.py declare the same columns
            found = {c["name"] for c in inspector.get_columns(table.name)}
            assert found == {c.name for c in table.columns}
        migrate.downgrade(store, "0007_nightly@-1")  # only this branch goes
        assert "0007_nightly" not in migrate.current_revisions(store)
        assert not {t.name for t in TABLES} & tables(store)
        assert {"memories", "ledger", "alerts"} <= tables(store)
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        assert mw.nightly_runs() == [] and mw.harness_runs() == []
        assert [m.content for m in mw.list_memories()] == ["Still here after the round trip."]
        assert run_nightly(mw, skip={"integrity"}).status == "ok"
