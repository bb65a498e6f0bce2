"""Facade methods: the read-only views the dashboard and /admin/dashboard show (spec 2.6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from memwarden.audit import records
from memwarden.core import changes, story, views
from memwarden.core.dashboard import Dashboard, OperationsView
from memwarden.core.facade.alerts import AlertsFacade
from memwarden.core.facade.harness import HarnessFacade
from memwarden.core.facade.integrity import IntegrityFacade
from memwarden.core.facade.nightly import NightlyFacade
from memwarden.core.memories import load


# The overview gathers what the other groups read: it subclasses them.
class ViewsFacade(AlertsFacade, HarnessFacade, NightlyFacade, IntegrityFacade):
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
            history = records.history(conn, "memory", str(memory_id), self.ledger.key)
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
            history = records.history(conn, "memory", str(memory_id), self.ledger.key)
        records.require_authentic(history)  # a version to revert to is rebuilt from it
        return story.preview_revert(memory, history, to_seq)
