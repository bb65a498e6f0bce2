"""Reading the operation log: recent rows with filters, and per-action statistics."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from memwarden.db import schema
from memwarden.errors import InvalidInputError

T = schema.operation_log
MAX_LIMIT = 1000


@dataclass(frozen=True)
class LoggedOperation:
    id: int
    action: str
    transport: str
    project: str | None
    actor: str | None
    started_at: datetime
    ended_at: datetime
    duration_ms: float
    error: str | None
    request: Any
    response: Any
    metadata: Any

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat()
        return data


@dataclass(frozen=True)
class ActionStats:
    action: str
    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"$invalid_json": len(text)}


def list_operations(
    conn: Connection,
    *,
    action: str | None = None,
    transport: str | None = None,
    project: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[LoggedOperation]:
    """The newest rows first, filtered."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"the limit must be between 1 and {MAX_LIMIT}")
    query = select(T)
    if action is not None:
        query = query.where(T.c.action == action)
    if transport is not None:
        query = query.where(T.c.transport == transport)
    if project is not None:
        query = query.where(T.c.project == project)
    if since is not None:
        query = query.where(T.c.started_at >= since)
    query = query.order_by(T.c.started_at.desc(), T.c.id.desc()).limit(limit)
    return [
        LoggedOperation(
            id=int(row.id),
            action=row.action,
            transport=row.transport,
            project=row.project,
            actor=row.actor,
            started_at=row.started_at,
            ended_at=row.ended_at,
            duration_ms=float(row.duration_ms),
            error=row.error,
            request=_json(row.request),
            response=_json(row.response),
            metadata=_json(row.metadata),
        )
        for row in conn.execute(query)
    ]


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def stats(conn: Connection, *, since: datetime | None = None) -> list[ActionStats]:
    """Count, errors and p50/p95/max duration per action, busiest action first."""
    query = select(T.c.action, T.c.duration_ms, T.c.error.is_not(None).label("failed"))
    if since is not None:
        query = query.where(T.c.started_at >= since)
    durations: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for row in conn.execute(query.execution_options(yield_per=10_000)):
        durations.setdefault(row.action, []).append(float(row.duration_ms))
        errors[row.action] = errors.get(row.action, 0) + bool(row.failed)
    out = []
    for action, values in durations.items():
        values.sort()
        out.append(
            ActionStats(
                action=action,
                count=len(values),
                errors=errors[action],
                p50_ms=round(percentile(values, 50), 3),
                p95_ms=round(percentile(values, 95), 3),
                max_ms=round(values[-1], 3),
            )
        )
    return sorted(out, key=lambda item: (-item.count, item.action))
