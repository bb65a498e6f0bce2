"""Facade methods: moving candidates on, automatically (core/automation.py) or by a
person's review (core/triage.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from memwarden.audit.oplog import logged
from memwarden.core import access, automation, triage
from memwarden.core.facade.base import FacadeBase
from memwarden.core.models import Memory


class TriageFacade(FacadeBase):
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
