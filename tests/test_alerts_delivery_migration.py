"""Migration 0012_alert_delivery: the retry state columns, up and down, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from memwarden import Settings
from memwarden.core import opening
from memwarden.db import migrate, schema
from memwarden.db.store import Store
from memwarden.observability.alerts import Alerts

NEW = {"failures", "budget_from", "uid"}


def columns(store: Store) -> set[str]:
    return {c["name"] for c in sa.inspect(store.engine).get_columns("alert_deliveries")}


def test_upgrade_downgrade_upgrade(settings: Settings) -> None:
    opening.initialise(settings)
    store = Store(settings)
    try:
        assert "0012_alert_delivery" in migrate.current_revisions(store)
        assert columns(store) == {c.name for c in schema.alert_deliveries.columns}
        now = datetime.now(UTC)
        with store.write() as unit:
            alert_id = unit.conn.execute(
                sa.insert(schema.alerts).returning(schema.alerts.c.id),
                {
                    "fingerprint": "f",
                    "severity": "info",
                    "title": "t",
                    "message": "m",
                    "context": "{}",
                    "status": "firing",
                    "count": 1,
                    "created_at": now,
                    "last_seen_at": now,
                },
            ).scalar_one()
            unit.conn.execute(
                sa.insert(schema.alert_deliveries),
                {
                    "alert_id": alert_id,
                    "kind": "alert",
                    "target_key": "k" * 32,
                    "target": "http://x/***",
                    "target_kind": "generic",
                    "folded": 0,
                    "state": "dead",
                    "attempts": 9,
                    "failures": 9,
                    "uid": "u" * 32,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        migrate.downgrade(store, "0012_alert_delivery@-1")  # back to 0002_alerts alone
        current = migrate.current_revisions(store)
        assert "0002_alerts" in current and "0012_alert_delivery" not in current
        assert not NEW & columns(store)
        with store.read() as conn:  # a dead letter becomes the failed delivery it was before
            states = conn.execute(sa.text("SELECT state, attempts FROM alert_deliveries")).all()
        assert [tuple(row) for row in states] == [("failed", 9)]
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
        assert NEW <= columns(store)
        alerts = Alerts(settings, store)
        alerts.emit("warning", "after a round trip", "the columns work again")
        assert alerts.flush(5)
        assert alerts.history()[0].title == "after a round trip"
        alerts.close()
    finally:
        store.dispose()
