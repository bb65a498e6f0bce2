"""Facade methods: The integrity scan and its repairs (spec 2.4)."""

from __future__ import annotations

from memwarden.audit.oplog import logged
from memwarden.core import embedding_index, repair
from memwarden.core.facade.base import FacadeBase
from memwarden.errors import InvalidInputError
from memwarden.observability.integrity import (
    ChainAccess,
    IntegrityReport,
    IntegrityRun,
    Progress,
    RepairRecord,
    runs,
    scan,
)
from memwarden.observability.integrity.scan import checks_for


class IntegrityFacade(FacadeBase):
    @logged
    def integrity_check(
        self,
        full: bool = False,
        fix: bool = False,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> IntegrityReport:
        """Scan for drift and persist the run (``full``: the whole ledger and every memory,
        and SQLite's integrity_check). ``fix``: repair what is safe, then scan again, and
        report that rescan; with ``dry_run`` only the plan is returned and nothing is written
        beyond the first scan's record."""
        if dry_run and not fix:
            raise InvalidInputError("--dry-run only goes with --fix")
        first = self._scan(full, progress)
        if not fix:
            return IntegrityReport(first)
        planned = repair.plan(self.runtime) if first.findings else []
        vectors_drift = any(
            f.check.startswith(embedding_index.VECTORS_CHECK) for f in first.findings
        )
        if dry_run:
            records = [p.record(applied=False) for p in planned]
            if vectors_drift:
                records.append(
                    RepairRecord("vectors", "index", "re-embed", "would re-embed", False)
                )
            return IntegrityReport(first, repairs=records, dry_run=True)
        if not planned and not vectors_drift:
            return IntegrityReport(first)
        done = repair.apply(self.runtime, planned)
        if vectors_drift:
            done.append(embedding_index.repair_vectors(self.runtime))
        return IntegrityReport(self._scan(full, progress, done), before_repair=first, repairs=done)

    def latest_integrity(self) -> IntegrityRun | None:
        """The newest finished scan, or None before the first."""
        with self.store.read() as conn:
            return runs.latest(conn)

    def integrity_runs(self, limit: int = 20) -> list[IntegrityRun]:
        """Finished scans, newest first (at most 500)."""
        with self.store.read() as conn:
            return runs.history(conn, limit)

    def _scan(
        self,
        full: bool,
        progress: Progress | None,
        repairs: list[RepairRecord] | None = None,
    ) -> IntegrityRun:
        if self.ledger.refusal is not None:
            raise self.ledger.refusal  # a wrong key would report every row as forged
        # Alerts just raised (a tampered row read) or resolved (a row restored): let the alert
        # writer commit them before the scan's read snapshot, since a commit inside it makes
        # SQLite's full-text index check fail as busy.
        self.alerts.flush()
        witness = self.ledger.witness.peek() if self.ledger.witness is not None else None
        chain = ChainAccess(
            self.ledger.key,
            witness,
            self.database_id,
            self.settings.resolved_verify_workers,
            reread=self.ledger.witness.peek if self.ledger.witness is not None else None,
        )
        return scan(
            self.store,
            chain,
            full=full,
            amcheck_create=self.settings.integrity_amcheck_create,
            progress=progress,
            repairs=repairs,
            checks=(*checks_for(self.store.dialect), embedding_index.vector_check(self.runtime)),
        )
