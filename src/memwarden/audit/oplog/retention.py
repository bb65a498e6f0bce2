"""The retention sweep: rows older than N days deleted in bounded batches, each its own
short transaction (on PostgreSQL, rows another sweeper holds are skipped, not waited for)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from memwarden.db import schema
from memwarden.db.store import Store

T = schema.operation_log
BATCH_SIZE = 5000


@dataclass(frozen=True)
class SweepResult:
    cutoff: datetime
    deleted: int
    batches: list[int]  # rows deleted by each transaction

    def to_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "deleted": self.deleted,
            "batches": len(self.batches),
        }


def sweep(
    store: Store, days: int, *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> SweepResult:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    doomed = (
        select(T.c.id)
        .where(T.c.started_at < cutoff)
        .limit(batch_size)
        .with_for_update(skip_locked=True)  # SQLite renders nothing: its writer is alone
    )
    batches: list[int] = []
    while True:
        with store.write() as unit:
            deleted = unit.conn.execute(
                delete(T).where(T.c.id.in_(doomed.scalar_subquery()))
            ).rowcount
        if deleted:
            batches.append(deleted)
        if deleted < batch_size:
            return SweepResult(cutoff, sum(batches), batches)
