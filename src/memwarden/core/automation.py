"""The automatic moves of candidates: promote the well-confirmed, expire the stale.

- ``promote_reinforced``: a candidate reinforced at least N times by sources other than its
  writer (the same key repeating itself does not count), never one flagged by screening or
  proposing to replace a more trusted memory,
  (``MEMWARDEN_AUTO_PROMOTE_MIN_REINFORCEMENTS``, default 3) with confidence at least C
  (``MEMWARDEN_AUTO_PROMOTE_MIN_CONFIDENCE``, default 0.6) becomes active: action
  ``auto_promoted``, actor ``auto-promote``.
- ``expire_stale``: a candidate created more than D days ago
  (``MEMWARDEN_CANDIDATE_EXPIRY_DAYS``, default 14) and never reinforced becomes expired:
  action ``expired``, actor ``candidate-expiry``.

Both are idempotent (a second run finds nothing left to move), re-check each memory under its
row lock (a memory triaged meanwhile is left alone), and report what they moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from memwarden.audit.actor import AUTO_PROMOTE, CANDIDATE_EXPIRY, acting_as
from memwarden.core import lifecycle, memories, transitions, validate
from memwarden.core.models import Memory
from memwarden.core.provenance import FLAGGED, as_operator
from memwarden.core.runtime import Runtime
from memwarden.db import schema
from memwarden.errors import InvalidInputError

M = schema.memories
BATCH = 200


@dataclass(frozen=True)
class Moved:
    id: int
    project: str
    type: str
    content: str
    reinforcement_count: int
    confidence: float

    @classmethod
    def of(cls, memory: Memory) -> Moved:
        return cls(
            memory.id,
            memory.project,
            memory.type,
            memory.content,
            memory.reinforcement_count,
            memory.confidence,
        )

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class MoveReport:
    action: str
    actor: str
    criteria: dict[str, Any]
    moved: list[Moved] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "actor": self.actor,
            "criteria": self.criteria,
            "moved": [m.to_dict() for m in self.moved],
            "count": len(self.moved),
        }


def promote_reinforced(
    rt: Runtime,
    *,
    min_reinforcements: int | None = None,
    min_confidence: float | None = None,
    project: str | None = None,
) -> MoveReport:
    n = (
        rt.settings.auto_promote_min_reinforcements
        if min_reinforcements is None
        else min_reinforcements
    )
    c = rt.settings.auto_promote_min_confidence if min_confidence is None else min_confidence
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(
            f"the minimum number of reinforcements must be 1 or more, not {n!r}"
        )
    c = validate.confidence(c)
    report = MoveReport(
        "auto_promoted",
        AUTO_PROMOTE,
        {"min_reinforcements": n, "min_confidence": c, "project": project},
    )

    def due(memory: Memory) -> bool:
        return (
            memory.independent_reinforcements >= n
            and memory.confidence >= c
            and memory.tier != FLAGGED
            and memory.proposes is None
        )

    # Only reinforcement from another source than the writer counts; a flagged memory, or a
    # proposed correction of a more trusted one, waits for a person whatever its count.
    condition = and_(
        M.c.independent_reinforcements >= n,
        M.c.confidence >= c,
        or_(M.c.tier.is_(None), M.c.tier != FLAGGED),
        M.c.proposes.is_(None),
    )
    note = f"reinforced at least {n} times with confidence at least {c:g}"
    _move(rt, condition, due, "auto_promote", AUTO_PROMOTE, note, project, report)
    return report


def expire_stale(
    rt: Runtime,
    *,
    days: int | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> MoveReport:
    d = rt.settings.candidate_expiry_days if days is None else days
    if isinstance(d, bool) or not isinstance(d, int) or d < 0:
        raise InvalidInputError(f"the age in days must be 0 or more, not {d!r}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=d)
    report = MoveReport(
        "expired",
        CANDIDATE_EXPIRY,
        {"days": d, "created_before": cutoff.isoformat(), "project": project},
    )

    def due(memory: Memory) -> bool:
        return memory.created_at < cutoff and memory.reinforcement_count == 0

    condition = and_(M.c.created_at < cutoff, M.c.reinforcement_count == 0)
    note = f"a candidate for more than {d} days, never reinforced"
    _move(rt, condition, due, "expire", CANDIDATE_EXPIRY, note, project, report)
    return report


def _move(
    rt: Runtime,
    condition: ColumnElement[bool],
    due: Callable[[Memory], bool],
    operation: str,
    actor: str,
    note: str,
    project: str | None,
    report: MoveReport,
) -> None:
    query = select(M.c.id).where(M.c.status == lifecycle.CANDIDATE, condition).order_by(M.c.id)
    if project is not None:
        query = query.where(M.c.project == project)
    with rt.read() as conn:
        if project is not None:
            validate.project_exists(conn, project)
        ids = [int(i) for i in conn.execute(query).scalars()]
    for start in range(0, len(ids), BATCH):
        _move_batch(rt, ids[start : start + BATCH], due, operation, actor, note, report)


def _move_batch(
    rt: Runtime,
    ids: Sequence[int],
    due: Callable[[Memory], bool],
    operation: str,
    actor: str,
    note: str,
    report: MoveReport,
) -> None:
    moved: list[Moved] = []
    with acting_as(actor), as_operator(), rt.mutation() as m:
        for memory_id in ids:
            memory = memories.load(m.conn, memory_id, for_update=True)
            if memory.status != lifecycle.CANDIDATE or not due(memory):
                continue  # triaged or changed since the query: leave it be
            after = transitions.transition_in(m, memory, operation, note)
            moved.append(Moved.of(after))
    report.moved.extend(moved)
