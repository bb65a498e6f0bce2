"""Facade methods: The retrieval harness and nightly-run records (spec 2.5)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from memwarden.audit.oplog import current_transport, via
from memwarden.core import projects
from memwarden.core.facade_base import FacadeBase
from memwarden.errors import InvalidInputError
from memwarden.observability.harness import fixtures as harness_fixtures
from memwarden.observability.harness import records as harness_records
from memwarden.observability.harness import runner as harness_runner
from memwarden.observability.harness.fixtures import Fixtures, HarnessCase
from memwarden.observability.harness.records import HarnessRun
from memwarden.observability.harness.runner import RecalledHit
from memwarden.observability.pipeline import lock as run_lock
from memwarden.observability.pipeline import records as nightly_records
from memwarden.observability.pipeline.lock import RunLease
from memwarden.observability.pipeline.records import NightlyRun, StepRecord

if TYPE_CHECKING:
    from memwarden.core.recall import Hit

# The fixtures of the bundled sample corpus (``memwarden demo`` loads it into atlas-rocket).
SAMPLE_FIXTURES = "atlas-rocket.harness.yaml"


class HarnessNotConfiguredError(InvalidInputError):
    """No fixtures apply to this database: none configured, and no sample project here."""


class HarnessFacade(FacadeBase):
    if TYPE_CHECKING:  # the logged recall of ``Memwarden`` (service.py), which this calls

        def recall(
            self,
            query: str,
            project: str | None = None,
            types: list[str] | None = None,
            k: int = 10,
            *,
            include_chunks: bool = True,
        ) -> list[Hit]: ...

    # -- the retrieval harness -------------------------------------------------------------
    def harness_fixtures(self, fixtures: Path | None = None) -> Fixtures:
        """The cases a harness run would check: from ``fixtures``, else
        ``MEMWARDEN_HARNESS_FIXTURES``, else the bundled sample's (for the projects of it this
        database has). ``FixturesError`` for a file that is missing or malformed."""
        path = fixtures or self.settings.harness_fixtures
        if path is not None:
            return harness_fixtures.load(Path(path))
        bundled = resources.files("memwarden") / "sample" / SAMPLE_FIXTURES
        sample = harness_fixtures.parse(
            bundled.read_text(encoding="utf-8"), f"bundled:{SAMPLE_FIXTURES}", suffix=".yaml"
        )
        present = {p.name for p in projects.list_projects(self.runtime)}
        cases = sample.only(present)
        if not cases.cases:
            raise HarnessNotConfiguredError(
                "no harness fixtures for this database: the bundled ones are for project "
                f"{', '.join(sample.projects)} (load it with `memwarden demo`); pass --fixtures "
                "FILE or set MEMWARDEN_HARNESS_FIXTURES"
            )
        return cases

    def run_harness(
        self,
        fixtures: Path | None = None,
        progress: harness_runner.Progress | None = None,
    ) -> HarnessRun:
        """Run every case through recall, record the run, and return it. Recall calls are
        logged (when the operation log takes them) with transport ``harness``."""
        cases = self.harness_fixtures(fixtures)
        transport = current_transport()
        with via("harness"):
            result = harness_runner.run(cases, self._harness_recall, progress)
        with self.store.write() as unit:
            return harness_records.record(unit.conn, result, transport)

    def _harness_recall(self, case: HarnessCase) -> Sequence[RecalledHit]:
        types = list(case.types) if case.types is not None else None
        return self.recall(case.query, case.project, types, case.k, include_chunks=case.chunks)

    def harness_runs(self, limit: int = 20) -> list[HarnessRun]:
        """The latest harness runs, newest first."""
        with self.store.read() as conn:
            return harness_records.recent(conn, limit)

    # -- nightly runs ----------------------------------------------------------------------
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
