"""Reading ledger rows back: one entity's history, and the recent rows across entities.

Given the ledger key, each record says whether it is ``authentic``: its tag is the key's tag of
its own fields, and its payload is the one whose keyed digest the tag covers (an erased
payload's body is gone: it passes only as a blank body marked erased). A record that fails was edited outside
memwarden, in its entry or in its payload; what rebuilds state from records (a repair, a
revert, time travel, an evidence bundle) must not use it (``require_authentic``). This checks
each row alone; that the rows form one unbroken chain is ``audit verify``'s."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select

from memwarden.audit.chain import ChainKey, format_ts, header_bytes
from memwarden.db import schema
from memwarden.errors import TamperedLedgerError

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
    authentic: bool | None = None  # None: read without the key, not checked

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
        L.c.payload_digest,
        L.c.prev_tag,
        L.c.tag,
        P.c.body,
        P.c.erased_at,
    ).select_from(L.outerjoin(P, P.c.seq == L.c.seq))


def authentic(row: Any, key: ChainKey) -> bool:
    """Whether a ledger row (joined with its payload) is as memwarden's writer tagged it."""
    header = header_bytes(
        int(row.seq),
        row.entity_type,
        row.entity_id,
        row.project,
        row.action,
        row.actor,
        row.ts,
        row.payload_digest,
        row.prev_tag,
    )
    if not hmac.compare_digest(key.tag(header), str(row.tag)):
        return False
    if row.body is None:
        # An erase blanks the body and marks it; a blank body not marked erased is a cut.
        return row.erased_at is not None
    # A body there is always checked, marked erased or not (as ``audit verify`` does): a
    # forged body under an erased mark was otherwise taken as authentic.
    return hmac.compare_digest(key.payload_digest(row.body), str(row.payload_digest))


def require_authentic(found: LedgerRecord | list[LedgerRecord]) -> None:
    """Refuse to rebuild anything from a record that failed its check (``TamperedLedgerError``,
    naming the first such row). Records read without the key pass: the caller chose not to
    check."""
    for record in found if isinstance(found, list) else [found]:
        if record.authentic is False:
            raise TamperedLedgerError(record.seq)


def _record(row: Any, key: ChainKey | None = None) -> LedgerRecord:
    try:
        payload = json.loads(row.body) if row.body else {}
    except ValueError:
        payload = {}  # an edited payload that is not JSON any more: it fails its digest too
    if not isinstance(payload, dict):
        payload = {}
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
        authentic=None if key is None else authentic(row, key),
    )


def history(
    conn: Connection, entity_type: str, entity_id: str, key: ChainKey | None = None
) -> list[LedgerRecord]:
    query = (
        _base().where(L.c.entity_type == entity_type, L.c.entity_id == entity_id).order_by(L.c.seq)
    )
    return [_record(row, key) for row in conn.execute(query)]


def latest(
    conn: Connection, entity_type: str, entity_id: str, key: ChainKey | None = None
) -> LedgerRecord | None:
    """The entity's newest ledger record, or None when the ledger holds none."""
    query = (
        _base()
        .where(L.c.entity_type == entity_type, L.c.entity_id == entity_id)
        .order_by(L.c.seq.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return _record(row, key) if row is not None else None


def at_seq(conn: Connection, seq: int, key: ChainKey | None = None) -> LedgerRecord | None:
    row = conn.execute(_base().where(L.c.seq == seq)).first()
    return _record(row, key) if row is not None else None


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
    key: ChainKey | None = None,
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
    return [_record(row, key) for row in conn.execute(query)]


def head(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(select(L.c.seq, L.c.tag).order_by(L.c.seq.desc()).limit(1)).first()
    return (int(row.seq), row.tag) if row is not None else None
