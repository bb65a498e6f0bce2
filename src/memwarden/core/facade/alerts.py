"""Facade methods: the alerts this database raised and their deliveries, as the dashboard
and the alert commands read them (observability/alerts/)."""

from __future__ import annotations

from memwarden.core.dashboard import AlertView
from memwarden.core.facade.base import FacadeBase
from memwarden.observability.alerts import SEVERITIES, AlertRecord, DeliveryRecord


class AlertsFacade(FacadeBase):
    def last_alerts(self) -> dict[str, AlertRecord]:
        """The newest alert of each severity that has one, most severe first."""
        found = self.alerts.last_per_severity()
        return {s: found[s] for s in reversed(SEVERITIES) if s in found}

    def alert_feed(self, limit: int = 20, severity: str | None = None) -> list[AlertView]:
        """Alert history, newest first, each with its delivery outcome."""
        alerts = self.alerts.history(severity=severity, limit=limit)
        deliveries: dict[int, list[DeliveryRecord]] = {}
        for delivery in self.alerts.deliveries([a.id for a in alerts]):
            deliveries.setdefault(delivery.alert_id, []).append(delivery)
        return [AlertView(a, deliveries.get(a.id, [])) for a in alerts]

    def alert_dead_letters(self, limit: int = 100) -> list[DeliveryRecord]:
        """Deliveries given up (failed or dead), oldest first."""
        return self.alerts.dead_letters(limit)

    def alert_webhooks(self) -> int:
        """How many webhooks alerts are delivered to."""
        return len(self.alerts.targets)
