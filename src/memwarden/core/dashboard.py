"""What the dashboard shows, as plain records: the overview (also served as JSON at
``GET /admin/dashboard``), alerts with their delivery outcome, and the operation log's stats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memwarden.audit.oplog import ActionStats, LoggedOperation
from memwarden.core.views import DayCount, MemoryCounts, MutationBrief
from memwarden.observability.alerts import AlertRecord, DeliveryRecord
from memwarden.observability.harness.records import HarnessRun
from memwarden.observability.integrity import IntegrityRun
from memwarden.observability.pipeline.records import NightlyRun

__all__ = [
    "AlertRecord",
    "AlertView",
    "Dashboard",
    "DayCount",
    "HarnessRun",
    "IntegrityRun",
    "MemoryCounts",
    "MutationBrief",
    "NightlyRun",
    "OperationsView",
]


@dataclass(frozen=True)
class AlertView:
    """One alert and what became of its webhook deliveries."""

    alert: AlertRecord
    deliveries: list[DeliveryRecord]

    @property
    def outcome(self) -> str:
        """``no webhook``, ``delivered``, ``failed``, ``pending``, or a mix: ``1/2 delivered``."""
        if not self.deliveries:
            return "no webhook"
        states = [d.state for d in self.deliveries]
        if all(s == states[0] for s in states):
            return states[0]
        return f"{states.count('delivered')}/{len(states)} delivered"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.alert.to_dict(),
            "outcome": self.outcome,
            "deliveries": [d.to_dict() for d in self.deliveries],
        }


@dataclass(frozen=True)
class OperationsView:
    enabled: bool
    actions: list[str]  # the allowlist; ["*"] for every action
    counters: dict[str, int]  # this process's writer: queued, written, dropped, failed
    since: datetime | None
    stats: list[ActionStats]
    recent: list[LoggedOperation]

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "actions": self.actions,
            "counters": self.counters,
            "since": self.since.isoformat() if self.since else None,
            "stats": [s.to_dict() for s in self.stats],
            "recent": [o.to_dict() for o in self.recent],
        }


@dataclass(frozen=True)
class Dashboard:
    """The overview: is memory healthy, what changed lately and by whom, what waits."""

    generated_at: datetime
    counts: MemoryCounts
    mutations_per_day: list[DayCount]  # oldest first
    recent_mutations: list[MutationBrief]  # newest first
    last_alerts: dict[str, AlertRecord]  # most severe first
    alerts: list[AlertView]  # newest first
    nightly: NightlyRun | None  # the latest run
    harness: list[HarnessRun]  # oldest first: the pass rate over time
    integrity: IntegrityRun | None  # the latest finished integrity scan
    # The last signed checkpoint and each publisher's last outcome (core/checkpoints status).
    checkpoint: dict[str, Any] | None = None

    @property
    def candidate_queue(self) -> int:
        return self.counts.candidates

    def to_dict(self) -> dict[str, Any]:
        integrity = self.integrity
        recent = [m.to_dict() for m in self.recent_mutations]
        return {
            "generated_at": self.generated_at.isoformat(),
            "counts": self.counts.to_dict(),
            "candidate_queue": self.candidate_queue,
            "mutations_per_day": [d.to_dict() for d in self.mutations_per_day],
            "recent_mutations": recent,
            # The seed's name for the same list (its dashboard: recent_audit, integrity, alerts).
            "recent_audit": recent,
            "last_alerts": {s: a.to_dict() for s, a in self.last_alerts.items()},
            "alerts": [a.to_dict() for a in self.alerts],
            "nightly": self.nightly.to_dict() if self.nightly else None,
            "harness": [
                {
                    "id": r.id,
                    "started_at": r.started_at.isoformat(),
                    "total": r.total,
                    "passed": r.passed,
                    "pass_rate": r.pass_rate,
                }
                for r in self.harness
            ],
            "integrity": integrity.to_dict() if integrity is not None else None,
            "checkpoint": self.checkpoint,
        }
