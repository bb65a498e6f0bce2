"""The erasure receipt: what an erase removed, and whether every copy has left the disk.

``status`` is ``scrubbed`` when no copy of the erased text is left in the database's files
(SQLite: the write-ahead log was emptied; PostgreSQL: the dead row versions were vacuumed), or
``pending`` while an old copy still waits there for readers to finish; ``pending`` names which;
``refused`` for a receipt memwarden did not write (``scrub.vouched``).
A receipt is a plain record (``to_dict``) so it can be shown, stored and, later, signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from memwarden.core.models import Memory
from memwarden.db import schema
from memwarden.errors import NotFoundError

E = schema.erasures
Status = Literal["scrubbed", "pending", "refused"]
SCRUBBED: Status = "scrubbed"
PENDING: Status = "pending"
# A receipt memwarden did not write: no authentic ledger record of its erase by its actor
# (a row put in the table by hand). Never scrubbed, never recorded as scrubbed.
REFUSED: Status = "refused"
# What may still hold an old copy: SQLite's write-ahead log, PostgreSQL's dead row versions.
SQLITE_WAL = "sqlite_wal"
PG_DEAD_ROWS = "pg_dead_rows"


@dataclass
class Erased:
    """The ids of what went, per kind (``alerts`` and ``oplog_rows`` had the text cut out)."""

    memories: list[int] = field(default_factory=list)
    interactions: list[int] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    oplog_rows: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[int]]:
        return {
            "memories": self.memories,
            "interactions": self.interactions,
            "chunks": self.chunks,
            "oplog_rows": self.oplog_rows,
            "alerts": self.alerts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Erased:
        return cls(**{name: [int(i) for i in data.get(name, [])] for name in cls().to_dict()})


@dataclass
class EraseReceipt:
    id: int
    requested_at: datetime
    actor: str
    reason: str
    scope: dict[str, Any]
    erased: Erased
    status: Status
    pending: list[str]
    attempts: int = 0
    scrubbed_at: datetime | None = None
    memory: Memory | None = None  # the erased memory, for an erase of one
    horizon: str | None = None  # PostgreSQL: the erasing transaction's id

    @property
    def done(self) -> bool:
        return self.status in (SCRUBBED, REFUSED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requested_at": self.requested_at.isoformat(),
            "actor": self.actor,
            "reason": self.reason,
            "scope": self.scope,
            "erased": self.erased.to_dict(),
            "status": self.status,
            "pending": self.pending,
            "attempts": self.attempts,
            "scrubbed_at": self.scrubbed_at.isoformat() if self.scrubbed_at else None,
        }


def insert_receipt(conn: Connection, receipt: EraseReceipt) -> int:
    new_id = conn.execute(
        insert(E)
        .values(
            requested_at=receipt.requested_at,
            actor=receipt.actor,
            reason=receipt.reason,
            scope=json.dumps(receipt.scope, sort_keys=True),
            erased=json.dumps(receipt.erased.to_dict(), sort_keys=True),
            status=receipt.status,
            pending=json.dumps(receipt.pending),
            attempts=receipt.attempts,
            scrubbed_at=receipt.scrubbed_at,
            horizon=receipt.horizon,
        )
        .returning(E.c.id)
    ).scalar_one()
    return int(new_id)


def mark(
    conn: Connection,
    receipt_id: int,
    status: Status,
    pending: list[str],
    attempts: int,
    scrubbed_at: datetime | None,
) -> None:
    conn.execute(
        update(E)
        .where(E.c.id == receipt_id)
        .values(
            status=status, pending=json.dumps(pending), attempts=attempts, scrubbed_at=scrubbed_at
        )
    )


def _from_row(row: Any) -> EraseReceipt:
    return EraseReceipt(
        id=int(row.id),
        requested_at=row.requested_at,
        actor=row.actor,
        reason=row.reason,
        scope=json.loads(row.scope),
        erased=Erased.from_dict(json.loads(row.erased)),
        status=row.status,
        pending=list(json.loads(row.pending)),
        attempts=int(row.attempts),
        scrubbed_at=row.scrubbed_at,
        horizon=row.horizon,
    )


def load(conn: Connection, receipt_id: int) -> EraseReceipt:
    row = conn.execute(select(E).where(E.c.id == receipt_id)).first()
    if row is None:
        raise NotFoundError(f"erasure {receipt_id} not found")
    return _from_row(row)


def latest_for_memory(conn: Connection, memory_id: int) -> EraseReceipt:
    """The newest receipt that erased ``memory_id``."""
    rows = conn.execute(select(E).order_by(E.c.id.desc())).all()
    for row in rows:
        if memory_id in json.loads(row.erased).get("memories", []):
            return _from_row(row)
    raise NotFoundError(f"memory {memory_id} has no erasure receipt")


def pending(conn: Connection) -> list[EraseReceipt]:
    rows = conn.execute(select(E).where(E.c.status == PENDING).order_by(E.c.id))
    return [_from_row(row) for row in rows]


def any_pending(conn: Connection) -> bool:
    return conn.execute(select(E.c.id).where(E.c.status == PENDING).limit(1)).first() is not None
