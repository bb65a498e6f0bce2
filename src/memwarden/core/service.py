"""``Memwarden``: the library API. Faces (CLI, HTTP, MCP) call this and nothing below it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from memwarden.audit import records, timetravel, verify
from memwarden.audit.actor import current_actor
from memwarden.audit.chain import GENESIS_TAG
from memwarden.audit.ledger import LedgerEntry
from memwarden.audit.oplog import OpLog, logged, logged_as
from memwarden.audit.reads import ReadLog, Served
from memwarden.audit.records import LedgerRecord
from memwarden.audit.witness import Head
from memwarden.config import Settings
from memwarden.core import (
    access,
    alert_state,
    automation,
    embedding_index,
    ingest,
    keys,
    memories,
    opening,
    projects,
    provenance,
    recall,
    rewind,
    signouts,
    storage_faults,
    superseding,
    triage,
)
from memwarden.core import capture as interactions
from memwarden.core.capture import ImportReport, Interaction
from memwarden.core.checkpoints import Checkpoints
from memwarden.core.erasure import EraseReceipt
from memwarden.core.erasure.scrub import Scrubber
from memwarden.core.extraction import runner as extraction
from memwarden.core.extraction.base import Extractor
from memwarden.core.extraction.runner import ExtractReport, make_extractor
from memwarden.core.facade_base import FacadeBase
from memwarden.core.ingest import FileOutcome
from memwarden.core.models import CreateResult, Memory, Project, StateEntry
from memwarden.core.provenance import Scopes
from memwarden.core.recall import ContextPack, Hit, Recalled
from memwarden.core.runtime import Runtime
from memwarden.core.service_checkpoints import CheckpointsFacade
from memwarden.core.service_erasure import ErasureFacade
from memwarden.core.service_harness import HarnessFacade
from memwarden.core.service_integrity import IntegrityFacade
from memwarden.core.service_views import ViewsFacade
from memwarden.db import migrate
from memwarden.db.store import Store
from memwarden.observability.alerts import Alerts
from memwarden.observability.alerts import install as install_alerts
from memwarden.observability.alerts import uninstall as uninstall_alerts

storage_faults.install()


class Memwarden(
    IntegrityFacade, HarnessFacade, ViewsFacade, ErasureFacade, CheckpointsFacade, FacadeBase
):
    """One memwarden database, opened: its store, its ledger and the domain operations."""

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
        self.store = Store(self.settings)
        try:
            migrate.check_schema(self.store)
            ledger, self.database_id = opening.open_ledger(
                self.settings, self.store, require_witness=require_witness
            )
            self.alerts = Alerts(self.settings, self.store)  # a malformed webhook URL fails here
        except BaseException:
            self.store.dispose()
            raise
        self.runtime = Runtime(self.settings, self.store, ledger)
        # Vectors follow every committed memory (after the commit, off the caller's thread).
        self.runtime.events.subscribe(self._on_mutation)
        self.write_limiter = access.WriteLimiter(self.settings.write_rate_per_minute)
        self.ledger = ledger
        self.scrubber = Scrubber(self.runtime)
        if self.settings.alert_state_project:
            project = self.settings.alert_state_project
            runtime = self.runtime
            self.alerts.mirror = lambda alerts: alert_state.mirror(runtime, project, alerts)
        self.checkpoints = Checkpoints(self.settings, self.store, self.database_id)
        if self.scrubber.anything_pending():
            self.scrubber.kick()  # erasures a process left pending: finish them in the background
        install_alerts(self.alerts)  # emit_alert (ledger failures, checks) now reaches this db
        # Every method marked @logged goes through the operation log (when its action is allowed).
        self.oplog = OpLog(self.settings, self.store)
        # Who was served which memory (recall, context, get), written off the caller's path.
        self.reads = ReadLog(self.store, self.settings.reads_retention_days)
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
        self.scrubber.close()
        self.runtime.embed_worker.close()
        self.reads.close()
        self.oplog.close()
        uninstall_alerts(self.alerts)
        self.alerts.close()
        if self.ledger.witness is not None:
            self.ledger.witness.close()
        self.store.dispose()

    def __enter__(self) -> Memwarden:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- projects and state ----------------------------------------------------------------
    @logged_as("add_project", project_arg="name")
    def add_project(self, name: str, description: str = "") -> Project:
        return projects.add(self.runtime, name, description)

    @logged
    def list_projects(self) -> list[Project]:
        return projects.list_projects(self.runtime)

    @logged_as("remove_project", project_arg="name")
    def remove_project(self, name: str) -> None:
        projects.remove(self.runtime, name)

    @logged
    def set_state(
        self, project: str, category: str, key: str, value: str, source: str = ""
    ) -> StateEntry:
        access.charge_write(self.write_limiter)
        return projects.state_set(self.runtime, project, category, key, value, source)

    @logged
    def get_state(
        self, project: str, category: str, key: str, *, include_tampered: bool = False
    ) -> StateEntry:
        """``include_tampered``: an admin's view (a tampered entry flagged, not refused)."""
        return projects.state_get(
            self.runtime, project, category, key, include_tampered=include_tampered
        )

    @logged
    def list_state(
        self, project: str, category: str | None = None, *, include_tampered: bool = False
    ) -> list[StateEntry]:
        return projects.state_list(
            self.runtime, project, category, include_tampered=include_tampered
        )

    @logged
    def delete_state(self, project: str, category: str, key: str) -> StateEntry:
        access.charge_write(self.write_limiter)
        return projects.state_delete(self.runtime, project, category, key)

    # -- memories --------------------------------------------------------------------------
    @logged
    def remember(
        self,
        project: str,
        content: str,
        type: str = "knowledge",
        confidence: float = memories.DEFAULT_CONFIDENCE,
        *,
        status: str = "candidate",
        source_chunk_id: int | None = None,
        note: str | None = None,
        metadata: Any = None,
    ) -> CreateResult:
        access.charge_write(self.write_limiter)
        return memories.create(
            self.runtime,
            project,
            content,
            type,
            confidence,
            status=status,
            source_chunk_id=source_chunk_id,
            note=note,
            metadata=metadata,
        )

    @logged
    def get(self, memory_id: int, *, include_tampered: bool = False) -> Memory:
        """A memory; one edited outside memwarden raises ``TamperedRowError``, or with
        ``include_tampered`` (an admin's view) comes back flagged ``tampered``."""
        memory = memories.get(self.runtime, memory_id, include_tampered=include_tampered)
        access.check_read(memory.project)
        self._served([memory.id], "get")
        return memory

    @logged
    def list_memories(self, **filters: Any) -> list[Memory]:
        if filters.get("project") is not None:
            access.check_read(filters["project"])
        elif access.read_limited() is not None:
            filters["projects"] = access.read_limited()
        return memories.list_memories(self.runtime, **filters)

    @logged
    def update(self, memory_id: int, **changes: Any) -> Memory:
        access.charge_write(self.write_limiter)
        return memories.update_memory(self.runtime, memory_id, **changes)

    @logged
    def promote(self, memory_id: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return memories.transition(self.runtime, memory_id, "promote", note)

    @logged
    def auto_promote(self, memory_id: int, note: str | None = None) -> Memory:
        return memories.transition(self.runtime, memory_id, "auto_promote", note)

    @logged
    def reject(self, memory_id: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return memories.transition(self.runtime, memory_id, "reject", note)

    @logged
    def invalidate(self, memory_id: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return memories.transition(self.runtime, memory_id, "invalidate", note)

    @logged
    def expire(self, memory_id: int, note: str | None = None) -> Memory:
        return memories.transition(self.runtime, memory_id, "expire", note)

    @logged
    def reinforce(self, memory_id: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return memories.reinforce(self.runtime, memory_id, note)

    @logged
    def supersede(
        self,
        memory_id: int,
        *,
        by: int | None = None,
        content: str | None = None,
        note: str | None = None,
    ) -> tuple[Memory, Memory]:
        access.charge_write(self.write_limiter)
        return superseding.supersede(self.runtime, memory_id, by=by, content=content, note=note)

    @logged
    def revert(self, memory_id: int, to_seq: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        access.check_operation("revert", memories.get(self.runtime, memory_id))
        return rewind.revert(self.runtime, memory_id, to_seq, note)

    @logged
    def erase(
        self,
        memory_id: int,
        reason: str,
        *,
        sources: str = "all",
        wait: float | None = None,
    ) -> EraseReceipt:
        """Erase a memory and every copy of its text (``ErasureFacade._erase_one``): a receipt."""
        return self._erase_one(memory_id, reason, sources=sources, wait=wait)

    # -- documents, recall and context -----------------------------------------------------
    @logged
    def ingest(
        self,
        paths: list[Path],
        project: str,
        progress: ingest.Progress | None = None,
        *,
        strict: bool = False,
    ) -> ingest.IngestReport:
        """``strict`` refuses (ingesting nothing) when any file would be skipped."""
        access.check_write(project)
        access.charge_write(self.write_limiter)
        return ingest.ingest_paths(self.runtime, paths, project, progress, strict=strict)

    @logged
    def ingest_text(self, project: str, uri: str, text: str, title: str = "") -> FileOutcome:
        access.check_write(project)
        access.charge_write(self.write_limiter)
        return ingest.ingest_text(self.runtime, project, uri, text, title)

    @logged
    def recall(
        self,
        query: str,
        project: str | None = None,
        types: list[str] | None = None,
        k: int = 10,
        *,
        include_chunks: bool = True,
        mode: str | None = None,
        include_superseded: bool = False,
        min_tier: str | None = None,
        where: Any = None,
        rank_by: str | None = None,
    ) -> list[Hit]:
        found: Recalled = self.recall_detailed(
            query,
            project,
            types,
            k,
            include_chunks=include_chunks,
            mode=mode,
            include_superseded=include_superseded,
            min_tier=min_tier,
            where=where,
            rank_by=rank_by,
        )
        return found.hits

    @logged_as("recall")  # recall() calls it: the operation log keeps one entry
    def recall_detailed(
        self,
        query: str,
        project: str | None = None,
        types: list[str] | None = None,
        k: int = 10,
        *,
        include_chunks: bool = True,
        mode: str | None = None,
        include_superseded: bool = False,
        min_tier: str | None = None,
        where: Any = None,
        rank_by: str | None = None,
    ) -> Recalled:
        """Recall, with the mode asked, the mode used and why they differ (no embedder);
        ``include_superseded``: recently superseded memories too, marked as such;
        ``min_tier``: only hits at least this trusted. Records who was served what."""
        if project is not None:
            access.check_read(project)
        found = recall.recall(
            self.runtime,
            query,
            project=project,
            types=types,
            k=k,
            include_chunks=include_chunks,
            mode=mode,
            include_superseded=include_superseded,
            min_tier=min_tier,
            projects=access.read_limited() if project is None else None,
            where=where,
            rank_by=rank_by,
        )
        self._served([hit.id for hit in found.hits if hit.kind == "memory"], "recall")
        return found

    def _served(self, memory_ids: list[int], operation: str) -> None:
        self.reads.served(memory_ids, current_actor(), provenance.current().key, operation)

    @logged
    def readers(self, memory_id: int, limit: int = 200) -> list[Served]:
        """Who was served this memory, newest first, and which version (ledger seq)."""
        # A clear 404 for an unknown memory; a tampered one still has readers to show.
        memories.get(self.runtime, memory_id, include_tampered=True)
        self.reads.flush()
        return self.reads.readers(memory_id, limit)

    @logged
    def context(
        self,
        query: str,
        project: str,
        budget: int = 4000,
        mode: str | None = None,
        *,
        min_tier: str | None = None,
    ) -> ContextPack:
        access.check_read(project)
        pack = recall.context(self.runtime, query, project, budget, mode, min_tier=min_tier)
        served = [item.provenance["memory_id"] for item in pack.items if item.kind == "memory"]
        self._served(served, "context")
        return pack

    # -- the vector index ----------------------------------------------------------------------
    def wait_for_embeddings(self, timeout: float = 30.0) -> bool:
        """Block until the vectors of everything committed so far in this process are written."""
        return self.runtime.embed_worker.wait(timeout)

    def embedding_status(self, *, load: bool = False) -> embedding_index.IndexStatus:
        return embedding_index.status(self.runtime, load=load)

    def start_index_sweep(self) -> None:
        """In the background: load the embedder and write every missing or stale vector
        (a long-running server's start; a model change re-embeds this way)."""
        self.runtime.embed_worker.request_sweep()

    def recall_health(self) -> dict[str, Any]:
        """How recall ranks right now, for ``/health``: cheap (no count, no model load)."""
        embedders = self.runtime.embedders
        available = embedders.configured and embedders.error is None
        return {
            "embedder": self.settings.embedder,
            "model": embedders.model_id,
            "default_mode": self.settings.recall_mode if available else "text",
            "error": embedders.error,
        }

    @logged
    def rebuild_index(
        self, progress: Callable[[int, int], None] | None = None, *, full: bool = False
    ) -> int:
        """Write every missing or stale vector (``full``: every vector again); how many."""
        return embedding_index.rebuild(self.runtime, progress, full=full)

    # -- capture, extraction, automatic moves and triage --------------------------------------
    @logged
    def capture(
        self,
        project: str,
        prompt: str,
        response: str,
        client: str = "",
        created_at: datetime | str | None = None,
    ) -> Interaction:
        access.check_write(project)
        access.charge_write(self.write_limiter)
        return interactions.capture(self.runtime, project, prompt, response, client, created_at)

    @logged_as("capture_import", project_arg="default_project")
    def capture_lines(
        self, lines: Iterable[str | bytes], default_project: str | None = None
    ) -> ImportReport:
        """Capture JSON lines; bad lines are reported by number and the good ones kept."""
        return interactions.import_lines(self.runtime, lines, default_project=default_project)

    @logged
    def get_interaction(self, interaction_id: int) -> Interaction:
        return interactions.get(self.runtime, interaction_id)

    @logged
    def list_interactions(self, **filters: Any) -> list[Interaction]:
        return interactions.list_interactions(self.runtime, **filters)

    @logged
    def extract(
        self,
        project: str | None = None,
        *,
        extractor: str | Extractor | None = None,
        batch_size: int | None = None,
        limit: int | None = None,
    ) -> ExtractReport:
        """Candidates from the interactions not yet processed (by ``rules`` unless told)."""
        chosen = (
            make_extractor(self.settings, extractor) if isinstance(extractor, str) else extractor
        )
        try:
            return extraction.run(
                self.runtime, project=project, extractor=chosen, batch_size=batch_size, limit=limit
            )
        finally:
            if isinstance(extractor, str) and chosen is not None:
                chosen.close()

    @logged
    def promote_reinforced(
        self,
        *,
        min_reinforcements: int | None = None,
        min_confidence: float | None = None,
        project: str | None = None,
    ) -> automation.MoveReport:
        return automation.promote_reinforced(
            self.runtime,
            min_reinforcements=min_reinforcements,
            min_confidence=min_confidence,
            project=project,
        )

    @logged
    def expire_stale(
        self, *, days: int | None = None, project: str | None = None, now: datetime | None = None
    ) -> automation.MoveReport:
        return automation.expire_stale(self.runtime, days=days, project=project, now=now)

    @logged
    def triage_queue(self, **filters: Any) -> list[triage.TriageItem]:
        return triage.queue(self.runtime, **filters)

    @logged
    def triage_size(self, project: str | None = None, type: str | None = None) -> int:
        return triage.size(self.runtime, project, type)

    @logged
    def triage_detail(self, memory_id: int) -> triage.TriageDetail:
        return triage.detail(self.runtime, memory_id)

    @logged
    def triage_promote(self, memory_ids: Sequence[int], note: str | None = None) -> list[Memory]:
        access.charge_write(self.write_limiter)
        return triage.decide(self.runtime, memory_ids, "promote", note)

    @logged
    def triage_reject(self, memory_ids: Sequence[int], note: str | None = None) -> list[Memory]:
        access.charge_write(self.write_limiter)
        return triage.decide(self.runtime, memory_ids, "reject", note)

    @logged
    def triage_edit_promote(self, memory_id: int, content: str, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return triage.edit_and_promote(self.runtime, memory_id, content, note)

    # -- API keys --------------------------------------------------------------------------
    def create_key(
        self, name: str, role: str, scopes: Scopes | None = None
    ) -> tuple[keys.ApiKey, str]:
        """A new key and its plaintext token (shown once; only its hash is stored)."""
        return keys.create(self.runtime, name, role, scopes)

    def set_key_scopes(self, name: str, scopes: Scopes) -> keys.ApiKey:
        return keys.set_scopes(self.runtime, name, scopes)

    def list_keys(self, *, include_revoked: bool = True) -> list[keys.ApiKey]:
        return keys.list_keys(self.runtime, include_revoked=include_revoked)

    def revoke_key(self, name: str) -> keys.ApiKey:
        return keys.revoke(self.runtime, name)

    def end_session(self, nonce: str, expires_at: datetime) -> None:
        """Sign a dashboard session out on the server (its cookie stops working at once)."""
        signouts.end(self.runtime, nonce, expires_at)

    def session_ended(self, nonce: str) -> bool:
        return signouts.ended(self.runtime, nonce)

    def authenticate(self, token: str) -> keys.AuthResult:
        return keys.authenticate(self.runtime, token)

    def keys_configured(self) -> bool:
        return keys.any_live(self.runtime)

    # -- audit -----------------------------------------------------------------------------
    @logged
    def history(self, memory_id: int) -> list[LedgerRecord]:
        records_ = rewind.history_of(self.runtime, memory_id)
        if records_ and records_[0].project is not None:
            access.check_read(records_[0].project)
        return records_

    @logged
    def as_of(self, memory_id: int, at: datetime) -> dict[str, Any] | None:
        return timetravel.as_of(self.history(memory_id), f"memory {memory_id}", at)

    @logged
    def diff(self, memory_id: int, from_seq: int, to_seq: int) -> list[timetravel.FieldChange]:
        history = self.history(memory_id)
        name = f"memory {memory_id}"
        old = timetravel.version(history, from_seq, name)
        new = timetravel.version(history, to_seq, name)
        return timetravel.diff(old.after, new.after)

    @logged
    def blame(self, memory_id: int) -> list[timetravel.BlameLine]:
        return timetravel.blame(self.history(memory_id))

    @logged
    def recent(self, **filters: Any) -> list[LedgerRecord]:
        with self.store.read() as conn:
            return records.recent(conn, **filters)

    @logged
    def verify(
        self,
        from_seq: int = 1,
        anchor: Head | None = None,
        progress: verify.Progress | None = None,
        *,
        use_witness: bool = True,
    ) -> verify.VerifyReport:
        """``use_witness=False`` checks the chain (and the anchor, if given) without the
        witness: before resetting a witness that is missing or rightly disagrees."""
        assert self.ledger.witness is not None
        if self.ledger.refusal is not None:
            raise self.ledger.refusal
        witness = self.ledger.witness.read() if use_witness else None
        with self.store.read() as conn:
            return verify.verify(
                conn,
                self.ledger.key,
                witness=witness,
                database_id=self.database_id,
                from_seq=from_seq,
                anchor=anchor,
                progress=progress,
                workers=self.settings.resolved_verify_workers,
                reread=self.ledger.witness.peek if use_witness else None,
            )

    @logged
    def anchor(self) -> Head:
        with self.store.read() as conn:
            head = records.head(conn)
        return Head(*head) if head else Head(0, GENESIS_TAG)

    @logged
    def reset_witness(self) -> Head:
        """Re-write the witness at the current head: only after verifying against an anchor."""
        assert self.ledger.witness is not None
        if self.ledger.refusal is not None:
            raise self.ledger.refusal
        head = self.anchor()
        self.ledger.witness.reset(head)
        return head
