"""Facade methods: the nightly runs' records and their lock (observability/pipeline/)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from memwarden.core.facade.base import FacadeBase
from memwarden.observability.pipeline import lock as run_lock
from memwarden.observability.pipeline import records as nightly_records
from memwarden.observability.pipeline.lock import RunLease
from memwarden.observability.pipeline.records import NightlyRun, StepRecord


class NightlyFacade(FacadeBase):
    def nightly_runs(self, limit: int = 20) -> list[NightlyRun]:
        """The latest nightly runs with their steps, newest first."""
        with self.store.read() as conn:
            return nightly_records.recent(conn, limit)

    def nightly_run(self, run_id: int) -> NightlyRun:
        with self.store.read() as conn:
            return nightly_records.get(conn, run_id)

    @contextmanager
    def nightly_lock(self) -> Iterator[RunLease]:
        """Hold the nightly run lock; ``RunInProgressError`` when another run holds it."""
        stale = timedelta(minutes=self.settings.nightly_lock_stale_minutes)
        with run_lock.hold(self.store, self.database_id, stale_after=stale) as lease:
            yield lease

    def begin_nightly_run(self, trigger: str, owner: str | None = None) -> int:
        """Record a run as started (hold ``nightly_lock()`` first); returns its id."""
        with self.store.write() as unit:
            return nightly_records.begin(
                unit.conn, trigger, owner or run_lock.process_label(), datetime.now(UTC)
            )

    def record_nightly_step(self, run_id: int, step: StepRecord) -> None:
        with self.store.write() as unit:
            nightly_records.add_step(unit.conn, run_id, step)

    def finish_nightly_run(self, run_id: int, duration_ms: float) -> NightlyRun:
        with self.store.write() as unit:
            nightly_records.finish(unit.conn, run_id, datetime.now(UTC), duration_ms)
        return self.nightly_run(run_id)
