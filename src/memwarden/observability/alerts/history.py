"""Reading alerts back: the history, the last alert of each severity, deliveries and attempts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from memwarden.db import schema
from memwarden.observability.alerts.model import SEVERITIES

A, D, T = schema.alerts, schema.alert_deliveries, schema.alert_attempts


def _dict(record: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(record).items()}


@dataclass(frozen=True)
class AlertRecord:
    id: int
    fingerprint: str
    severity: str
    title: str
    message: str
    context: dict[str, Any]
    status: str  # firing | resolved | test
    count: int  # occurrences folded into this row (repeats within its throttle window)
    created_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return _dict(self)


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    alert_id: int
    kind: str  # alert | resolved | test
    target: str  # redacted
    target_kind: str
    folded: int
    state: str  # pending | delivered | failed (permanent answer) | dead (time budget spent)
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None = None
    failures: int = 0  # counted failures (a 429 or 503 does not count)
    uid: str | None = None  # the stable delivery id receivers see
    title: str | None = None  # the alert's title (dead-letter listings)

    def to_dict(self) -> dict[str, Any]:
        return _dict(self)


@dataclass(frozen=True)
class AttemptRecord:
    delivery_id: int
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    outcome: str
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return _dict(self)


def _alert(row: Any) -> AlertRecord:
    row = row._mapping
    return AlertRecord(
        id=row["id"],
        fingerprint=row["fingerprint"],
        severity=row["severity"],
        title=row["title"],
        message=row["message"],
        context=json.loads(row["context"]),
        status=row["status"],
        count=row["count"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        resolved_at=row["resolved_at"],
    )


def list_alerts(
    conn: Connection,
    severity: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    fingerprint: str | None = None,
) -> list[AlertRecord]:
    """Newest first."""
    query = select(A).order_by(A.c.id.desc()).limit(limit)
    if severity is not None:
        query = query.where(A.c.severity == severity)
    if since is not None:
        query = query.where(A.c.last_seen_at >= since)
    if fingerprint is not None:
        query = query.where(A.c.fingerprint == fingerprint)
    return [_alert(row) for row in conn.execute(query)]


def firing_faults(conn: Connection, prefix: str) -> list[AlertRecord]:
    """The newest firing alert of each fingerprint that starts with ``prefix`` (the fault
    register's episodes: a row stays firing until its episode's end resolves it)."""
    query = (
        select(A)
        .where(A.c.status == "firing", A.c.fingerprint.startswith(prefix, autoescape=True))
        .order_by(A.c.id.desc())
    )
    newest: dict[str, AlertRecord] = {}
    for row in conn.execute(query):
        record = _alert(row)
        newest.setdefault(record.fingerprint, record)
    return sorted(newest.values(), key=lambda record: record.id)


def last_per_severity(conn: Connection) -> dict[str, AlertRecord]:
    """For the dashboard: the newest alert of each severity that has one."""
    result: dict[str, AlertRecord] = {}
    for severity in SEVERITIES:
        row = conn.execute(
            select(A).where(A.c.severity == severity).order_by(A.c.id.desc()).limit(1)
        ).first()
        if row is not None:
            result[severity] = _alert(row)
    return result


def deliveries(conn: Connection, alert_ids: list[int]) -> list[DeliveryRecord]:
    if not alert_ids:
        return []
    rows = conn.execute(select(D).where(D.c.alert_id.in_(alert_ids)).order_by(D.c.id))
    return [_delivery(r) for r in rows]


def dead_letters(conn: Connection, limit: int = 100) -> list[DeliveryRecord]:
    """Deliveries given up (failed: a permanent answer; dead: the budget ran out), oldest first."""
    rows = conn.execute(
        select(D, A.c.title)
        .join(A, A.c.id == D.c.alert_id)
        .where(D.c.state.in_(("failed", "dead")))
        .order_by(D.c.id)
        .limit(limit)
    )
    return [_delivery(r, r.title) for r in rows]


def _delivery(r: Any, title: str | None = None) -> DeliveryRecord:
    return DeliveryRecord(
        id=r.id,
        alert_id=r.alert_id,
        kind=r.kind,
        target=r.target,
        target_kind=r.target_kind,
        folded=r.folded,
        state=r.state,
        attempts=r.attempts,
        last_status=r.last_status,
        last_error=r.last_error,
        created_at=r.created_at,
        updated_at=r.updated_at,
        delivered_at=r.delivered_at,
        next_attempt_at=r.next_attempt_at,
        failures=r.failures,
        uid=r.uid,
        title=title,
    )


def attempts(conn: Connection, delivery_ids: list[int]) -> list[AttemptRecord]:
    if not delivery_ids:
        return []
    rows = conn.execute(
        select(T).where(T.c.delivery_id.in_(delivery_ids)).order_by(T.c.delivery_id, T.c.attempt)
    )
    return [
        AttemptRecord(
            delivery_id=r.delivery_id,
            attempt=r.attempt,
            at=r.at,
            status_code=r.status_code,
            latency_ms=r.latency_ms,
            outcome=r.outcome,
            error=r.error,
        )
        for r in rows
    ]
