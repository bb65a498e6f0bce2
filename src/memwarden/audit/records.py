"""Reading ledger rows back: one entity's history, and the recent rows across entities."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select

from memwarden.audit.chain import format_ts
from memwarden.db import schema

L = schema.ledger
P = schema.ledger_payloads
MAX_RECENT = 1000


@dataclass(frozen=True)
class LedgerRecord:
    seq: int
    entity_type: str
    entity_id: str
    project: str | None
    action: str
    actor: str
    ts: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None
    extra: dict[str, Any] | None
    erased: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def preview(self, width: int = 80) -> str:
        snapshot = self.after or self.before or {}
        text = str(snapshot.get("content") or snapshot.get("value") or snapshot.get("uri") or "")
        return text if len(text) <= width else text[: width - 1] + "…"


def _base() -> Select[Any]:
    return select(
        L.c.seq,
        L.c.entity_type,
        L.c.entity_id,
        L.c.project,
        L.c.action,
        L.c.actor,
        L.c.ts,
        P.c.body,
        P.c.erased_at,
    ).select_from(L.outerjoin(P, P.c.seq == L.c.seq))


def _record(row: Any) -> LedgerRecord:
    payload = json.loads(row.body) if row.body else {}
    return LedgerRecord(
        seq=int(row.seq),
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        project=row.project,
        action=row.action,
        actor=row.actor,
        ts=row.ts,
        before=payload.get("before"),
        after=payload.get("after"),
        note=payload.get("note"),
        extra=payload.get("extra"),
        erased=row.erased_at is not None,
    )


def history(conn: Connection, entity_type: str, entity_id: str) -> list[LedgerRecord]:
    query = (
        _base().where(L.c.entity_type == entity_type, L.c.entity_id == entity_id).order_by(L.c.seq)
    )
    return [_record(row) for row in conn.execute(query)]


def at_seq(conn: Connection, seq: int) -> LedgerRecord | None:
    row = conn.execute(_base().where(L.c.seq == seq)).first()
    return _record(row) if row is not None else None


def recent(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    project: str | None = None,
    entity_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[LedgerRecord]:
    """Newest first, across every entity, with the filters an operator reaches for."""
    query = _base().order_by(L.c.seq.desc()).limit(min(max(limit, 1), MAX_RECENT))
    if actor is not None:
        query = query.where(L.c.actor == actor)
    if action is not None:
        query = query.where(L.c.action == action)
    if project is not None:
        query = query.where(L.c.project == project)
    if entity_type is not None:
        query = query.where(L.c.entity_type == entity_type)
    if since is not None:
        query = query.where(L.c.ts >= format_ts(since))
    if until is not None:
        query = query.where(L.c.ts <= format_ts(until))
    if before_seq is not None:
        query = query.where(L.c.seq < before_seq)
    return [_record(row) for row in conn.execute(query)]


def head(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(select(L.c.seq, L.c.tag).order_by(L.c.seq.desc()).limit(1)).first()
    return (int(row.seq), row.tag) if row is not None else None
