"""Facade methods: a memory's lifecycle (core/memories.py, superseding.py, rewind.py)."""

from __future__ import annotations

from typing import Any

from memwarden.audit.oplog import logged
from memwarden.core import access, memories, memory_reads, rewind, superseding, transitions
from memwarden.core.facade.base import FacadeBase
from memwarden.core.models import CreateResult, Memory


class MemoriesFacade(FacadeBase):
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
        memory = memory_reads.get(self.runtime, memory_id, include_tampered=include_tampered)
        access.check_read(memory.project)
        self._served([memory.id], "get")
        return memory

    @logged
    def list_memories(self, **filters: Any) -> list[Memory]:
        if filters.get("project") is not None:
            access.check_read(filters["project"])
        elif access.read_limited() is not None:
            filters["projects"] = access.read_limited()
        return memory_reads.list_memories(self.runtime, **filters)

    @logged
    def update(self, memory_id: int, **changes: Any) -> Memory:
        access.charge_write(self.write_limiter)
        return memories.update_memory(self.runtime, memory_id, **changes)

    @logged
    def promote(self, memory_id: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return transitions.transition(self.runtime, memory_id, "promote", note)

    @logged
    def auto_promote(self, memory_id: int, note: str | None = None) -> Memory:
        return transitions.transition(self.runtime, memory_id, "auto_promote", note)

    @logged
    def reject(self, memory_id: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return transitions.transition(self.runtime, memory_id, "reject", note)

    @logged
    def invalidate(self, memory_id: int, note: str | None = None) -> Memory:
        access.charge_write(self.write_limiter)
        return transitions.transition(self.runtime, memory_id, "invalidate", note)

    @logged
    def expire(self, memory_id: int, note: str | None = None) -> Memory:
        return transitions.transition(self.runtime, memory_id, "expire", note)

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
        access.check_operation("revert", memory_reads.get(self.runtime, memory_id))
        return rewind.revert(self.runtime, memory_id, to_seq, note)
