"""What the alert history holds, read back: the alerts, their deliveries and attempts, the
dead letters and what is still pending. A mixin of ``Alerts`` (``service.py``), apart from the
fan-out and the workers; with no store (before a database exists) every answer is empty."""

from __future__ import annotations

from datetime import datetime

from memwarden.db.store import Store
from memwarden.observability.alerts import history as hist
from memwarden.observability.alerts import outbox
from memwarden.observability.alerts.targets import WebhookTarget


class AlertReads:
    store: Store | None
    targets: list[WebhookTarget]

    def history(
        self,
        severity: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        fingerprint: str | None = None,
    ) -> list[hist.AlertRecord]:
        """Newest first."""
        if self.store is None:
            return []
        with self.store.read() as conn:
            return hist.list_alerts(conn, severity, since, limit, fingerprint)

    def last_per_severity(self) -> dict[str, hist.AlertRecord]:
        if self.store is None:
            return {}
        with self.store.read() as conn:
            return hist.last_per_severity(conn)

    def deliveries(self, alert_ids: list[int]) -> list[hist.DeliveryRecord]:
        if self.store is None:
            return []
        with self.store.read() as conn:
            return hist.deliveries(conn, alert_ids)

    def attempts(self, delivery_ids: list[int]) -> list[hist.AttemptRecord]:
        if self.store is None:
            return []
        with self.store.read() as conn:
            return hist.attempts(conn, delivery_ids)

    def dead_letters(self, limit: int = 100) -> list[hist.DeliveryRecord]:
        """Deliveries given up (failed or dead), oldest first."""
        if self.store is None:
            return []
        with self.store.read() as conn:
            return hist.dead_letters(conn, limit)

    def pending(self) -> int:
        if self.store is None or not self.targets:
            return 0
        with self.store.read() as conn:
            return outbox.pending_count(conn, [t.key for t in self.targets])
