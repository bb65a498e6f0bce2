"""Committing a batch of alerts and resolutions: throttling by fingerprint, and outbox rows.

A batch costs a handful of statements whatever its size: one lock statement (PostgreSQL: a
transaction-scoped advisory lock per fingerprint, so processes never race on one problem's
throttle window), one query for the emit ids stored already and one for the firing heads,
one multi-row insert each for new alerts, their deliveries and the emit ids, and one update
per head that counted repeats. A resolution needs the ids of the alerts before it, so it
writes out what is pending first.

Every alert stored (as a new row or folded into a head) has its emit id recorded in
``alert_emits``; an alert whose id is there already is skipped. It can be offered twice: by
the live process that raised it and by another one replaying the alerts file at start-up
(see ``replay``). The ids are read after the fingerprints' locks are taken (PostgreSQL) or
inside the write lock (SQLite), so whichever transaction comes second sees the first one's
ids and stores nothing: one row, one delivery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, insert, select, text, update

from memwarden.db import schema
from memwarden.observability.alerts.notice import NoticeKind
from memwarden.observability.alerts.outbox import Emit, Item, Resolve, new_uid
from memwarden.observability.alerts.targets import WebhookTarget

A, D, E = schema.alerts, schema.alert_deliveries, schema.alert_emits
ROWS_PER_STATEMENT = 4
ALERT_LOCK_CLASS = 0x616C7274  # "alrt": the key space of per-fingerprint advisory locks
LOCK_SQL = text(
    "SELECT count(pg_advisory_xact_lock(:lock_class, k)) FROM unnest(CAST(:keys AS integer[])) AS k"
)


_Plan = tuple[int, NoticeKind, int, frozenset[str]]  # alert id, kind, folded, excluded targets


# How far in the future a throttle window's head may be dated and still fold repeats: the
# skew between the clocks of the processes (and hosts) writing alerts.
_FUTURE_SKEW = timedelta(seconds=-60)


@dataclass
class _Head:
    """The newest firing alert of one fingerprint: in the database, or about to be."""

    id: int | None
    count: int
    created_at: datetime
    delta: int = 0  # repeats to add to the stored row
    last_seen: datetime | None = None
    row: dict[str, Any] | None = None  # the pending row of a head not inserted yet
    exclude: frozenset[str] = frozenset()  # its resolved notice skips these targets too


@dataclass
class _New:
    row: dict[str, Any]
    kind: NoticeKind
    folded: int
    head: _Head | None
    id: int | None = None  # once inserted
    exclude: frozenset[str] = frozenset()  # target keys this alert is not sent to


@dataclass
class Batch:
    conn: Connection
    targets: list[WebhookTarget]
    window: float
    heads: dict[str, _Head] = field(default_factory=dict)
    pending: list[_New] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    delivery_ids: list[int] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # emit ids stored already, or in this batch
    emitted: list[tuple[Emit, _Head | _New]] = field(default_factory=list)  # ids to record
    stored: int = 0
    duplicates: int = 0

    def load(self, fingerprints: set[str], emit_ids: set[str]) -> None:
        if fingerprints and self.conn.dialect.name == "postgresql":
            keys = sorted({_lock_key(fp) for fp in fingerprints})
            self.conn.execute(LOCK_SQL, {"lock_class": ALERT_LOCK_CLASS, "keys": keys})
        # After the locks: a concurrent transaction storing one of these alerts has committed
        # by now, and this statement (a fresh snapshot under READ COMMITTED) sees its ids.
        if emit_ids:
            self.seen.update(
                self.conn.execute(select(E.c.emit_id).where(E.c.emit_id.in_(sorted(emit_ids))))
                .scalars()
                .all()
            )
        if not fingerprints:
            return
        rows = self.conn.execute(
            select(A.c.id, A.c.fingerprint, A.c.count.label("occurrences"), A.c.created_at)
            .where(A.c.fingerprint.in_(sorted(fingerprints)), A.c.status == "firing")
            .order_by(A.c.id)
        )
        for row in rows:
            self.heads[row.fingerprint] = _Head(row.id, row.occurrences, row.created_at)

    def emit(self, item: Emit) -> None:
        alert = item.alert
        if alert.emit_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(alert.emit_id)
        self.stored += 1
        folded = 0
        if item.kind == "alert":
            head = self.heads.get(alert.fingerprint)
            if head is not None:
                age = alert.at - head.created_at
                # A head dated in the future (beyond the clocks' skew) is no reason to hold
                # this back: a row written there would fold every repeat into itself, for good.
                if self.window > 0 and _FUTURE_SKEW <= age < timedelta(seconds=self.window):
                    head.count += 1
                    # Never back in time: a replayed repeat may be older than the head.
                    if head.row is not None:
                        head.row["count"] += 1
                        head.row["last_seen_at"] = max(head.row["last_seen_at"], alert.at)
                    else:
                        head.delta += 1
                        head.last_seen = max(head.last_seen or alert.at, alert.at)
                    self.emitted.append((item, head))
                    return
                folded = head.count - 1
        row = {
            "fingerprint": alert.fingerprint,
            "severity": alert.severity,
            "title": alert.title,
            "message": alert.message,
            "context": alert.context_json(),
            "status": "firing" if item.kind == "alert" else "test",
            "count": 1,
            "created_at": alert.at,
            "last_seen_at": alert.at,
        }
        new_head = (
            _Head(None, 1, alert.at, row=row, exclude=item.exclude)
            if item.kind == "alert"
            else None
        )
        if new_head is not None:
            self.heads[alert.fingerprint] = new_head
        new = _New(row, item.kind, folded, new_head, exclude=item.exclude)
        self.pending.append(new)
        self.emitted.append((item, new))

    def resolve(self, item: Resolve) -> None:
        self.flush()
        if item.alert_id is not None:
            self._resolve_read_back(item, item.alert_id)
            return
        head = self.heads.pop(item.fingerprint, None)
        if head is None or head.id is None:
            return
        self.conn.execute(
            update(A)
            .where(A.c.fingerprint == item.fingerprint, A.c.status == "firing")
            .values(status="resolved", resolved_at=item.at)
        )
        self._deliveries([(head.id, "resolved", head.count - 1, head.exclude)], item.at)

    def _resolve_read_back(self, item: Resolve, alert_id: int) -> None:
        """A resolution read back from the alerts file: the one row it names, if that row is
        still firing and was raised and last seen at or before it (checked again here, under
        the fingerprint's lock: a live process may have folded a repeat into it since)."""
        head = self.heads.get(item.fingerprint)
        if head is not None and head.id == alert_id and head.delta:
            return  # a repeat folded into it in this very batch
        count = self.conn.execute(
            update(A)
            .where(
                A.c.id == alert_id,
                A.c.status == "firing",
                A.c.created_at <= item.at,
                A.c.last_seen_at <= item.at,
            )
            .values(status="resolved", resolved_at=item.at)
            .returning(A.c.count)
        ).scalar_one_or_none()
        if count is None:
            return
        if head is not None and head.id == alert_id:
            del self.heads[item.fingerprint]
        self._deliveries([(alert_id, "resolved", int(count) - 1, frozenset())], item.at)

    def flush(self) -> None:
        if self.pending:
            result = self.conn.execute(
                insert(A).returning(A.c.id, sort_by_parameter_order=True),
                [new.row for new in self.pending],
            )
            ids = [int(row.id) for row in result]
            plans: list[_Plan] = []
            for new, alert_id in zip(self.pending, ids, strict=True):
                new.id = alert_id
                if new.head is not None:
                    new.head.id, new.head.row = alert_id, None
                plans.append((alert_id, new.kind, new.folded, new.exclude))
            self._deliveries(plans, self.pending[-1].row["created_at"])
            self.pending = []
        grown = [h for h in self.heads.values() if h.delta and h.id is not None]
        if grown:
            self.conn.execute(
                update(A)
                .where(A.c.id == bindparam("head_id"))
                .values(
                    count=A.c.count + bindparam("delta"),
                    last_seen_at=case(
                        (A.c.last_seen_at < bindparam("seen"), bindparam("seen")),
                        else_=A.c.last_seen_at,
                    ),
                ),
                [{"head_id": h.id, "delta": h.delta, "seen": h.last_seen} for h in grown],
            )
            for head in grown:
                head.delta = 0
        if self.emitted:
            self.conn.execute(insert(E), [_emit_row(item, ref) for item, ref in self.emitted])
            self.emitted = []

    def _deliveries(self, plans: list[_Plan], now: datetime) -> None:
        if not self.targets or not plans:
            return
        rows = [
            {
                "alert_id": alert_id,
                "kind": kind,
                "target_key": t.key,
                "target": t.redacted,
                "target_kind": t.kind,
                "folded": folded,
                "state": "pending",
                "attempts": 0,
                "failures": 0,
                "uid": new_uid(),
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for alert_id, kind, folded, exclude in plans
            for t in self.targets
            if t.key not in exclude
        ]
        if not rows:
            return
        result = self.conn.execute(insert(D).returning(D.c.id, sort_by_parameter_order=True), rows)
        self.delivery_ids += [int(row.id) for row in result]
        self.touched |= {str(row["target_key"]) for row in rows}


def _emit_row(item: Emit, ref: _Head | _New) -> dict[str, Any]:
    # Every head and new row of the batch has its id once the batch's rows are inserted.
    assert ref.id is not None
    return {"emit_id": item.alert.emit_id, "alert_id": ref.id, "emitted_at": item.alert.at}


def _lock_key(fingerprint: str) -> int:
    digest = hashlib.sha256(fingerprint.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


@dataclass(frozen=True)
class Recorded:
    touched: set[str]  # keys of the targets with new deliveries
    delivery_ids: list[int]
    stored: int = 0  # alerts stored, as new rows or folded into one
    duplicates: int = 0  # alerts skipped: their emit id was stored already


def record(
    conn: Connection, items: list[Item], targets: list[WebhookTarget], window: float
) -> Recorded:
    """Store a batch of alerts and resolutions, in the caller's transaction."""
    # psycopg parses a statement's text in Python unless it has at most 50 parameters (then it
    # is cached): one VALUES list of 500 alerts held the interpreter ~12 ms at a time, which
    # every thread raising an alert meanwhile waited out. A few rows per statement keep each
    # one cached, and the waits between them let callers run. On SQLite the same: SQLAlchemy
    # renders a long VALUES list in Python, while a short statement is cached by the driver
    # and each of its steps lets go of the interpreter.
    conn = conn.execution_options(insertmanyvalues_page_size=ROWS_PER_STATEMENT)
    batch = Batch(conn, targets, window)
    batch.load(
        {i.alert.fingerprint for i in items if isinstance(i, Emit) and i.kind == "alert"}
        | {i.fingerprint for i in items if isinstance(i, Resolve)},
        {i.alert.emit_id for i in items if isinstance(i, Emit)},
    )
    for item in items:
        if isinstance(item, Resolve):
            batch.resolve(item)
        else:
            batch.emit(item)
    batch.flush()
    return Recorded(batch.touched, batch.delivery_ids, batch.stored, batch.duplicates)
