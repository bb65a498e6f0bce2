"""``Memwarden``: the library API. Faces (CLI, HTTP, MCP) call this and nothing below it.

The one entry point, assembled from the groups of methods in ``core/facade/`` (one module per
concept); this module opens and closes the database's parts the groups use."""

from __future__ import annotations

import contextlib
import threading
from typing import Protocol

from memwarden.audit.entries import LedgerEntry
from memwarden.audit.oplog import OpLog
from memwarden.audit.reads import ReadLog
from memwarden.config import Settings
from memwarden.core import access, alert_state, opening, record_loss, storage_faults
from memwarden.core.checkpoints import Checkpoints
from memwarden.core.erasure.scrub import Scrubber
from memwarden.core.facade.alerts import AlertsFacade
from memwarden.core.facade.capture import CaptureFacade
from memwarden.core.facade.checkpoints import CheckpointsFacade
from memwarden.core.facade.erasure import ErasureFacade
from memwarden.core.facade.harness import HarnessFacade
from memwarden.core.facade.index import IndexFacade
from memwarden.core.facade.integrity import IntegrityFacade
from memwarden.core.facade.keys import KeysFacade
from memwarden.core.facade.ledger import LedgerFacade
from memwarden.core.facade.memories import MemoriesFacade
from memwarden.core.facade.nightly import NightlyFacade
from memwarden.core.facade.projects import ProjectsFacade
from memwarden.core.facade.recall import RecallFacade
from memwarden.core.facade.triage import TriageFacade
from memwarden.core.facade.views import ViewsFacade
from memwarden.core.runtime import Runtime
from memwarden.db import migrate
from memwarden.db.store import Store
from memwarden.observability.alerts import Alerts
from memwarden.observability.alerts import install as install_alerts
from memwarden.observability.alerts import uninstall as uninstall_alerts

storage_faults.install()


class _Closable(Protocol):
    def close(self) -> object: ...


def _close(part: _Closable) -> None:
    # ``close`` looked up when it runs, not when the part was opened.
    part.close()


class Memwarden(
    ViewsFacade,  # the overview: subclasses alerts, harness, nightly and integrity
    AlertsFacade,
    HarnessFacade,  # subclasses recall: each case goes through the logged recall
    RecallFacade,
    NightlyFacade,
    IntegrityFacade,
    ProjectsFacade,
    MemoriesFacade,
    IndexFacade,
    CaptureFacade,
    TriageFacade,
    KeysFacade,
    LedgerFacade,
    ErasureFacade,
    CheckpointsFacade,
):
    """One memwarden database, opened: its store, its ledger and the domain operations.

    Each operation is a thin method in the group of its concept (``core/facade/``); this
    class only opens the parts those methods use and closes them. The groups are listed in
    the order Python resolves them: a group that subclasses others comes before them, in
    the order of its own bases (any other order fails when this module is imported).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        quick_check: bool = True,
        require_witness: bool = True,
    ) -> None:
        """``require_witness=False`` opens a database whose witness file is missing, for
        recovery only: ``verify`` then needs an anchor, and ``reset_witness`` writes a new one."""
        self.settings = settings or Settings()
        # What ``init`` did to the schema (None when opened without it): see migrate.Change.
        self.schema_change: migrate.Change | None = None
        self._closed = False
        self._closing = threading.Lock()  # two threads closing at once: one closes, in order
        # What ``close`` undoes, last first, each part entered as it is opened: an open that
        # fails part way closes what it opened (its caller has no object to close).
        self._parts = contextlib.ExitStack()
        self.store = Store(self.settings)
        self._parts.callback(_close, self.store)
        try:
            self._open(quick_check=quick_check, require_witness=require_witness)
        except BaseException as failed:
            try:
                self.close()
            except Exception as closing:  # noqa: BLE001 - the open's own error is the one to raise
                failed.add_note(f"closing what the open had opened failed too: {closing!r}")
            raise

    def _open(self, *, quick_check: bool, require_witness: bool) -> None:
        migrate.check_schema(self.store)
        ledger, self.database_id = opening.open_ledger(
            self.settings, self.store, require_witness=require_witness
        )
        self.ledger = ledger
        if ledger.witness is not None:
            self._parts.callback(_close, ledger.witness)
        self.alerts = Alerts(self.settings, self.store)  # a malformed webhook URL fails here
        self._parts.callback(_close, self.alerts)
        self.runtime = Runtime(self.settings, self.store, ledger)
        # Vectors follow every committed memory (after the commit, off the caller's thread).
        self.runtime.events.subscribe(self._on_mutation)
        self.write_limiter = access.WriteLimiter(self.settings.write_rate_per_minute)
        if self.settings.alert_state_project:
            project = self.settings.alert_state_project
            runtime = self.runtime
            self.alerts.mirror = lambda alerts: alert_state.mirror(runtime, project, alerts)
        # emit_alert (ledger failures, checks, the scrubber's thread) now reaches this db.
        install_alerts(self.alerts)
        self._parts.callback(uninstall_alerts, self.alerts)
        # Every method marked @logged goes through the operation log (when its action is allowed).
        self.oplog = OpLog(self.settings, self.store)
        self._parts.callback(_close, self.oplog)
        # Who was served which memory (recall, context, get), written off the caller's path.
        self.reads = ReadLog(self.store, self.settings.reads_retention_days)
        self._parts.callback(_close, self.reads)
        # Either log's lost records are a fault episode, not a log line alone.
        record_loss.watch(
            self.oplog.failures,
            record_loss.OPLOG_FAULT,
            "Operation log records are being lost",
            "Operation log records",
        )
        record_loss.watch(
            self.reads.failures,
            record_loss.READS_FAULT,
            "Read records are being lost",
            "Records of who was served which memory",
        )
        # The background writers stop first, while the logs and the alerts still take what
        # they report.
        self._parts.callback(_close, self.runtime.embed_worker)
        self.scrubber = Scrubber(self.runtime)
        self._parts.callback(_close, self.scrubber)
        self.checkpoints = Checkpoints(self.settings, self.store, self.database_id)
        if self.scrubber.anything_pending():
            self.scrubber.kick()  # erasures a process left pending: finish them in the background
        witnessed = ledger.witness is not None and ledger.witness.path.exists()
        self.open_check = (
            opening.quick_check(self.store, ledger, self.database_id)
            if quick_check and witnessed
            else None
        )

    @classmethod
    def init(cls, settings: Settings | None = None) -> Memwarden:
        settings = settings or Settings()
        change = opening.initialise(settings)
        opened = cls(settings)
        opened.schema_change = change
        return opened

    def _on_mutation(self, entry: LedgerEntry) -> None:
        if entry.entity_type == "memory" and entry.action != "erased":
            self.runtime.embed_worker.enqueue("memory", int(entry.entity_id))
        elif entry.entity_type == "document":
            self.runtime.embed_worker.enqueue("document", int(entry.entity_id))

    def close(self) -> None:
        """Stop the background writers (each writes what it has queued, within its bound),
        then close the store: every later call that reads or writes raises ``ClosedError``.
        Closing twice is harmless."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
        # Last opened first, each whatever the ones before it raised (a Ctrl-C in a join, an
        # OSError from a file's close): above all the store closes, or a later call would
        # write through a memwarden that can no longer be closed.
        self._parts.close()

    def __enter__(self) -> Memwarden:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
