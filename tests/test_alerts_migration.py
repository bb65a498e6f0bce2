"""Migration 0002_alerts: upgrade and downgrade of its own branch, on both engines."""

from __future__ import annotations

import sqlalchemy as sa

from memwarden import Settings
from memwarden.core import opening
from memwarden.db import migrate, schema
from memwarden.db.store import Store
from memwarden.observability.alerts import Alerts

TABLES = (schema.alerts, schema.alert_deliveries, schema.alert_attempts)


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_upgrade_downgrade_upgrade(settings: Settings) -> None:
    opening.initialise(settings)
    store = Store(settings)
    try:
        assert "0012_alert_delivery" in migrate.current_revisions(store)  # stands on 0002
        inspector = sa.inspect(store.engine)
        for table in TABLES:  # the migration and schema.py declare the same columns
            found = {c["name"] for c in inspector.get_columns(table.name)}
            assert found == {c.name for c in table.columns}
        migrate.downgrade(store, "0012_alert_delivery@-1")  # it stands on 0002_alerts
        migrate.downgrade(store, "0002_alerts@-1")  # only this branch goes
        assert not {"0002_alerts", "0012_alert_delivery"} & migrate.current_revisions(store)
        assert not {t.name for t in TABLES} & tables(store)
        assert {"ledger", "memories", "projects"} <= tables(store)
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
        alerts = Alerts(settings, store)
        alerts.emit("warning", "after a round trip", "the tables work again")
        assert alerts.flush(5)
        assert [a.title for a in alerts.history()] == ["after a round trip"]
        alerts.close()
    finally:
        store.dispose()
