"""Migration 0005_extraction: its own branch goes down and comes back, on both engines."""

from __future__ import annotations

import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import migrate, schema
from memwarden.db.store import Store

TABLES = (schema.memory_origins, schema.extraction_watermarks)


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_upgrade_downgrade_upgrade_keeps_interactions(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.capture("atlas", "I prefer tabs over spaces.", "ok")
        assert len(mw.extract().created) == 1
    store = Store(settings)
    try:
        assert "0005_extraction" in migrate.current_revisions(store)
        inspector = sa.inspect(store.engine)
        for table in TABLES:  # the migration and schema.py declare the same columns
            found = {c["name"] for c in inspector.get_columns(table.name)}
            assert found == {c.name for c in table.columns}
        migrate.downgrade(store, "0005_extraction@-1")  # only this branch goes
        assert "0005_extraction" not in migrate.current_revisions(store)
        assert not {t.name for t in TABLES} & tables(store)
        assert {"interactions", "memories", "ledger"} <= tables(store)
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
    finally:
        store.dispose()
    with Memwarden(settings) as mw:
        assert len(mw.list_interactions()) == 1
        again = mw.extract()  # the watermark went with the tables: the interaction is read again
        assert again.interactions == 1 and again.reinforced and not again.created
