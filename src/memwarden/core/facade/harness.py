"""Facade methods: the retrieval harness (spec 2.5, observability/harness/)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from memwarden.audit.oplog import current_transport, via
from memwarden.core import projects
from memwarden.core.facade.recall import RecallFacade
from memwarden.errors import InvalidInputError
from memwarden.observability.harness import fixtures as harness_fixtures
from memwarden.observability.harness import records as harness_records
from memwarden.observability.harness import runner as harness_runner
from memwarden.observability.harness.fixtures import Fixtures, HarnessCase
from memwarden.observability.harness.records import HarnessRun
from memwarden.observability.harness.runner import RecalledHit

# The fixtures of the bundled sample corpus (``memwarden demo`` loads it into atlas-rocket).
SAMPLE_FIXTURES = "atlas-rocket.harness.yaml"


class HarnessNotConfiguredError(InvalidInputError):
    """No fixtures apply to this database: none configured, and no sample project here."""


class HarnessFacade(RecallFacade):  # each case goes through the logged recall
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
