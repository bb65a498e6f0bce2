"""The dashboard's reads (spec 2.6): how much memory there is, how fast it changes, and the
latest changes in brief. Every query here stays cheap at 100k memories and 1M ledger rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from memwarden.audit import records
from memwarden.audit.chain import format_ts
from memwarden.core import lifecycle
from memwarden.db import schema

M = schema.memories
L = schema.ledger
MAX_DAYS = 366


@dataclass(frozen=True)
class ProjectCount:
    name: str
    total: int
    by_status: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "total": self.total, "by_status": self.by_status}


@dataclass(frozen=True)
class MemoryCounts:
    total: int
    by_status: dict[str, int]  # every lifecycle status, zero included, in lifecycle order
    by_type: dict[str, int]  # the configured types first, then any other found
    projects: list[ProjectCount]  # every project, busiest first

    @property
    def candidates(self) -> int:
        return self.by_status.get(lifecycle.CANDIDATE, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_status": self.by_status,
            "by_type": self.by_type,
            "by_project": [p.to_dict() for p in self.projects],
        }


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "count": self.count}


@dataclass(frozen=True)
class MutationBrief:
    """One ledger row as the overview lists it: who did what to which entity, in a line."""

    seq: int
    ts: str
    entity_type: str
    entity_id: str
    project: str | None
    action: str
    actor: str
    note: str | None
    preview: str
    erased: bool

    @property
    def memory_id(self) -> int | None:
        return int(self.entity_id) if self.entity_type == "memory" else None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def memory_counts(conn: Connection, memory_types: tuple[str, ...]) -> MemoryCounts:
    """One grouped scan of the (project, status, type) index, folded three ways."""
    by_status = dict.fromkeys(lifecycle.STATUSES, 0)
    by_type = dict.fromkeys(memory_types, 0)
    per_project: dict[str, dict[str, int]] = {
        name: {} for name in conn.execute(select(schema.projects.c.name)).scalars()
    }
    total = 0
    rows = conn.execute(
        select(M.c.project, M.c.status, M.c.type, func.count().label("n")).group_by(
            M.c.project, M.c.status, M.c.type
        )
    )
    for row in rows:
        n = int(row.n)
        total += n
        by_status[row.status] = by_status.get(row.status, 0) + n
        by_type[row.type] = by_type.get(row.type, 0) + n
        statuses = per_project.setdefault(row.project, {})
        statuses[row.status] = statuses.get(row.status, 0) + n
    projects = [
        ProjectCount(name, sum(statuses.values()), statuses)
        for name, statuses in per_project.items()
    ]
    projects.sort(key=lambda p: (-p.total, p.name))
    return MemoryCounts(total, by_status, by_type, projects)


def mutations_per_day(conn: Connection, days: int, today: date) -> list[DayCount]:
    """Ledger rows per UTC day, the ``days`` days up to ``today``, oldest first.

    Counting a million rows costs a scan; instead each day's first row is found through the
    timestamp index (one seek per day) and the rows between two days' first rows are counted
    by their sequence numbers, which are dense and follow the timestamps (both are assigned
    under the chain lock). A wall clock stepped backwards may misplace a few rows between
    neighbouring days; a count never goes below zero."""
    days = max(1, min(days, MAX_DAYS))
    starts = [today - timedelta(days=days - 1 - i) for i in range(days + 1)]
    firsts = [
        select(L.c.seq)
        .where(L.c.ts >= format_ts(datetime(d.year, d.month, d.day, tzinfo=UTC)))
        .order_by(L.c.ts, L.c.seq)
        .limit(1)
        .scalar_subquery()
        .label(f"d{i}")
        for i, d in enumerate(starts)
    ]
    found = conn.execute(select(*firsts)).one()
    head = records.head(conn)
    after_head = (head[0] if head else 0) + 1
    bounds = [int(seq) if seq is not None else after_head for seq in found]
    return [DayCount(starts[i], max(0, bounds[i + 1] - bounds[i])) for i in range(days)]


def recent_mutations(conn: Connection, limit: int) -> list[MutationBrief]:
    return [
        MutationBrief(
            seq=r.seq,
            ts=r.ts,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            project=r.project,
            action=r.action,
            actor=r.actor,
            note=r.note,
            preview=r.preview(120),
            erased=r.erased,
        )
        for r in records.recent(conn, limit=limit)
    ]
