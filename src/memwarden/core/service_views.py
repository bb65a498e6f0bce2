"""Facade methods: Read-only views the dashboard and /admin/dashboard show (spec 2.6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from memwarden.audit import records, verify
from memwarden.core import changes, keys, story, views
from memwarden.core.dashboard import AlertView, Dashboard, OperationsView
from memwarden.core.facade_base import FacadeBase
from memwarden.core.memories import load
from memwarden.observability.alerts import SEVERITIES, AlertRecord, DeliveryRecord

if TYPE_CHECKING:
    from memwarden.observability.harness.records import HarnessRun
    from memwarden.observability.integrity import IntegrityRun
    from memwarden.observability.pipeline.records import NightlyRun

LEDGER_CHECK_ROWS = 256


class ViewsFacade(FacadeBase):
    if TYPE_CHECKING:  # the run records of the harness and integrity mixins, shown here

        def harness_runs(self, limit: int = 20) -> list[HarnessRun]: ...

        def nightly_runs(self, limit: int = 20) -> list[NightlyRun]: ...

        def latest_integrity(self) -> IntegrityRun | None: ...

    def dashboard(self, *, alerts: int = 10, days: int = 30, runs: int = 30) -> Dashboard:
        """Everything the overview shows (and ``GET /admin/dashboard`` returns)."""
        now = datetime.now(UTC)
        nightly = self.nightly_runs(1)
        return Dashboard(
            generated_at=now,
            counts=self.memory_counts(),
            mutations_per_day=self.mutations_per_day(days, now.date()),
            recent_mutations=self.recent_mutations(10),
            last_alerts=self.last_alerts(),
            alerts=self.alert_feed(alerts),
            nightly=nightly[0] if nightly else None,
            harness=list(reversed(self.harness_runs(runs))),
            integrity=self.latest_integrity(),
            checkpoint=self.checkpoints.status(),
        )

    def memory_counts(self) -> views.MemoryCounts:
        """Memories by status, by type and by project (every project, empty ones too)."""
        with self.store.read() as conn:
            return views.memory_counts(conn, self.settings.memory_types)

    def mutations_per_day(self, days: int = 30, today: date | None = None) -> list[views.DayCount]:
        """Ledger rows per UTC day for the last ``days`` days up to ``today``, oldest first."""
        with self.store.read() as conn:
            return views.mutations_per_day(conn, days, today or datetime.now(UTC).date())

    def recent_mutations(self, limit: int = 10) -> list[views.MutationBrief]:
        """The latest ledger rows, newest first, each with a one-line preview."""
        with self.store.read() as conn:
            return views.recent_mutations(conn, limit)

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

    def ledger_check(self, rows: int = LEDGER_CHECK_ROWS) -> verify.VerifyReport:
        """Verify the newest ``rows`` ledger rows and the head witness: a cheap status that
        catches a rewritten tail or a rolled-back database (``verify`` walks the whole chain)."""
        assert self.ledger.witness is not None
        if self.ledger.refusal is not None:
            raise self.ledger.refusal  # a wrong key would call every row forged
        with self.store.read() as conn:
            head = records.head(conn)
            start = max(1, (head[0] if head else 0) - rows + 1)
            return verify.verify(
                conn,
                self.ledger.key,
                witness=self.ledger.witness.read(),
                database_id=self.database_id,
                from_seq=start,
                reread=self.ledger.witness.peek,
            )

    def operations(self, since: datetime | None = None, recent: int = 50) -> OperationsView:
        """The operation log's per-action statistics since ``since``, and its latest rows."""
        log = self.oplog
        actions = ["*"] if log.all_actions else sorted(log.actions)
        return OperationsView(
            enabled=log.enabled,
            actions=actions,
            counters=log.counters(),
            since=since,
            stats=log.stats(since),
            recent=log.recent(limit=recent),
        )

    def memory_story(self, memory_id: int) -> story.MemoryStory:
        """The memory now, each of its versions with what it changed, and blame per field."""
        with self.store.read() as conn:
            memory = load(conn, memory_id)
            history = records.history(conn, "memory", str(memory_id))
            replaced = changes.supersedes(conn, memory_id, self.runtime.guard)
        if not self.runtime.guard.memory_ok(memory):  # shown, marked: the page is the admin's
            memory = replace(memory, tampered=True)
        return story.tell(memory, history, replaced)

    def revert_preview(
        self, memory_id: int, to_seq: int
    ) -> tuple[records.LedgerRecord, list[story.FieldChange]]:
        """The version at ``to_seq`` and what ``revert(memory_id, to_seq)`` would change."""
        with self.store.read() as conn:
            memory = load(conn, memory_id)
            history = records.history(conn, "memory", str(memory_id))
        return story.preview_revert(memory, history, to_seq)

    def api_key(self, key_id: int) -> keys.ApiKey | None:
        """The API key with this id, revoked or not."""
        return keys.get(self.runtime, key_id)
