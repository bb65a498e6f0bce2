"""Facade methods: documents in, recall and the context pack out (core/ingest.py,
core/recall.py, core/recall_context.py); every memory served is recorded (audit/reads.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memwarden.audit.oplog import logged, logged_as
from memwarden.core import access, ingest, recall, recall_context
from memwarden.core.facade.base import FacadeBase
from memwarden.core.ingest import FileOutcome
from memwarden.core.recall import Hit, Recalled
from memwarden.core.recall_context import ContextPack


class RecallFacade(FacadeBase):
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
        half_life_days: float | None = None,
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
            half_life_days=half_life_days,
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
        half_life_days: float | None = None,
    ) -> Recalled:
        """Recall, with the mode asked, the mode used and why they differ (no embedder);
        ``include_superseded``: recently superseded memories too, marked as such;
        ``min_tier``: only hits at least this trusted; ``half_life_days``: recency's
        half-life when ``rank_by`` is recency. Records who was served what."""
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
            half_life_days=half_life_days,
        )
        self._served([hit.id for hit in found.hits if hit.kind == "memory"], "recall")
        return found

    @logged
    def context(
        self,
        query: str,
        project: str,
        budget: int = 4000,
        mode: str | None = None,
        *,
        min_tier: str | None = None,
        where: Any = None,
        rank_by: str | None = None,
        half_life_days: float | None = None,
    ) -> ContextPack:
        """``where``, ``rank_by`` and ``half_life_days`` as in recall."""
        access.check_read(project)
        pack = recall_context.context(
            self.runtime,
            query,
            project,
            budget,
            mode,
            min_tier=min_tier,
            where=where,
            rank_by=rank_by,
            half_life_days=half_life_days,
        )
        served = [item.provenance["memory_id"] for item in pack.items if item.kind == "memory"]
        self._served(served, "context")
        return pack

    def recall_health(self) -> dict[str, Any]:
        """How recall ranks right now, for ``/health``: cheap (no count, no model load)."""
        embedders = self.runtime.embedders
        available = embedders.configured and embedders.error is None
        runtime, fallback = embedders.runtime
        return {
            "embedder": self.settings.embedder,
            "model": embedders.model_id,
            "runtime": runtime,  # None until the model has loaded
            "runtime_fallback": fallback,
            "default_mode": self.settings.recall_mode if available else "text",
            "error": embedders.error,
        }
