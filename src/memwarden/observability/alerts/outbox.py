"""The durable outbox: the deliveries to claim, and every attempt, in the database.

``recording`` writes new alerts and their deliveries (the writer thread's batches); this
module serves the delivery workers: claiming a due delivery, recording each attempt. A claim
pushes ``next_attempt_at`` past the attempt's lease with a conditional update, so two
workers (or two processes) never send the same delivery at once, and a process that dies
mid-send leaves the delivery to be picked up again once its lease runs out.

Each webhook's deliveries go in order: only the oldest pending one of a target is ever
claimed, so a receiver that is down costs one attempt per backoff step, not one per queued
alert, and the backoff (``failures``, ``next_attempt_at``, ``budget_from``: all in the row)
carries over to whichever process claims the delivery next.

States: ``pending``; ``delivered``; ``failed`` (a permanent answer such as 404: the target is
misconfigured); ``dead`` (the time budget ran out). Failed and dead deliveries are the dead
letters: ``redeliver`` queues them again with a fresh budget.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, func, insert, select, update

from memwarden.db import schema
from memwarden.db.store import Store
from memwarden.observability.alerts.model import Alert
from memwarden.observability.alerts.notice import Notice

A, D, T = schema.alerts, schema.alert_deliveries, schema.alert_attempts
State = Literal["pending", "delivered", "failed", "dead"]
DEAD_STATES = ("failed", "dead")


@dataclass(frozen=True)
class Emit:
    alert: Alert
    kind: Literal["alert", "test"] = "alert"
    # Webhooks this alert must not be sent to: the one whose failure it reports.
    exclude: frozenset[str] = frozenset()
    mirror: bool = True  # mirrored into project state (not when the mirror itself raised it)


@dataclass(frozen=True)
class Resolve:
    fingerprint: str
    at: datetime
    # Read back from the alerts file at start-up: resolves this one row only, and only while
    # it is firing, was raised at or before ``at`` and not seen firing since.
    alert_id: int | None = None


Item = Emit | Resolve


@dataclass(frozen=True)
class Job:
    """A claimed delivery and what it must say."""

    notice: Notice
    target_key: str
    attempts: int
    failures: int  # counted failures so far (the backoff's exponent)
    budget_from: datetime  # the time budget runs from here
    leased_until: datetime  # the claim's lease: no other worker takes the delivery before


def new_uid() -> str:
    return uuid.uuid4().hex


def claim(store: Store, target_key: str, now: datetime, lease: float) -> Job | float | None:
    """The oldest pending delivery of one target, leased to the caller; when it is not due
    yet, the seconds until it is; None when nothing is pending."""
    head = (
        select(D.c.id, D.c.next_attempt_at)
        .where(D.c.state == "pending", D.c.target_key == target_key)
        .order_by(D.c.id)
        .limit(1)
    )
    with store.write() as unit:
        found = unit.conn.execute(head).first()
        if found is None:
            return None
        delivery_id, due = int(found.id), found.next_attempt_at
        assert isinstance(due, datetime)
        if due > now:
            return float(max((due - now).total_seconds(), 0.0))
        leased_until = now + timedelta(seconds=lease)
        claimed = unit.conn.execute(
            update(D)
            .where(D.c.id == delivery_id, D.c.state == "pending", D.c.next_attempt_at <= now)
            .values(next_attempt_at=leased_until, updated_at=now)
        ).rowcount
        if claimed != 1:
            return 0.0
        row = unit.conn.execute(
            select(
                D,
                A.c.severity,
                A.c.title,
                A.c.message,
                A.c.context,
                A.c.fingerprint,
                A.c.count.label("occurrences"),
                A.c.created_at.label("alert_at"),
            )
            .join(A, A.c.id == D.c.alert_id)
            .where(D.c.id == delivery_id)
        ).one()
    notice = Notice(
        kind=row.kind,
        alert_id=row.alert_id,
        delivery_id=row.id,
        severity=row.severity,
        title=row.title,
        message=row.message,
        context=json.loads(row.context),
        fingerprint=row.fingerprint,
        at=row.alert_at if row.kind != "resolved" else row.created_at,
        count=row.occurrences,
        folded=row.folded,
        uid=row.uid or f"{row.id}",
    )
    return Job(
        notice=notice,
        target_key=row.target_key,
        attempts=row.attempts,
        failures=row.failures,
        budget_from=row.budget_from or row.created_at,
        leased_until=leased_until,
    )


def record_attempt(
    store: Store,
    delivery_id: int,
    attempt: int,
    at: datetime,
    status_code: int | None,
    latency_ms: float,
    outcome: str,
    error: str | None,
    state: State,
    next_attempt_at: datetime,
    failures: int,
) -> None:
    """One attempt, and the delivery's new state, in one transaction."""
    with store.write() as unit:
        unit.conn.execute(
            insert(T).values(
                delivery_id=delivery_id,
                attempt=attempt,
                at=at,
                status_code=status_code,
                latency_ms=round(latency_ms, 3),
                outcome=outcome,
                error=error,
            )
        )
        unit.conn.execute(
            update(D)
            .where(D.c.id == delivery_id)
            .values(
                attempts=attempt,
                failures=failures,
                state=state,
                last_status=status_code,
                last_error=error,
                updated_at=at,
                next_attempt_at=next_attempt_at,
                delivered_at=at if state == "delivered" else None,
            )
        )


def release(store: Store, job: Job, at: datetime) -> bool:
    """Give a claimed delivery back unattempted (its worker is closing): pending and due at
    ``at``, its attempts, failures and budget untouched. Only while the claim is still the
    caller's (the lease it set is in the row): once the lease ran out, another worker may hold
    the delivery. Returns whether it was given back."""
    with store.write() as unit:
        given = unit.conn.execute(
            update(D)
            .where(
                D.c.id == job.notice.delivery_id,
                D.c.state == "pending",
                D.c.next_attempt_at == job.leased_until,
            )
            .values(next_attempt_at=at, updated_at=at)
        ).rowcount
    return bool(given == 1)


def pending_count(conn: Connection, target_keys: list[str] | None = None) -> int:
    query = select(func.count()).select_from(D).where(D.c.state == "pending")
    if target_keys is not None:
        query = query.where(D.c.target_key.in_(target_keys))
    return int(conn.execute(query).scalar_one())


def pending_among(conn: Connection, delivery_ids: list[int]) -> set[int]:
    """Which of these deliveries are still pending."""
    found: set[int] = set()
    for start in range(0, len(delivery_ids), 500):
        chunk = delivery_ids[start : start + 500]
        query = select(D.c.id).where(D.c.id.in_(chunk), D.c.state == "pending")
        found.update(int(i) for i in conn.execute(query).scalars())
    return found


def oldest_pending(conn: Connection) -> datetime | None:
    """When the oldest delivery still pending was queued."""
    return conn.execute(select(func.min(D.c.created_at)).where(D.c.state == "pending")).scalar()


def dead_count(conn: Connection) -> int:
    query = select(func.count()).select_from(D).where(D.c.state.in_(DEAD_STATES))
    return int(conn.execute(query).scalar_one())


def redeliver(store: Store, now: datetime, ids: list[int] | None = None) -> list[int]:
    """Queue dead letters again (the given ones, or all of them) with a fresh time budget and
    backoff; returns the ids queued. Ids that are not dead letters are left alone."""
    query = select(D.c.id).where(D.c.state.in_(DEAD_STATES)).order_by(D.c.id)
    if ids is not None:
        query = query.where(D.c.id.in_(ids))
    with store.write() as unit:
        found = [int(i) for i in unit.conn.execute(query).scalars()]
        if found:
            unit.conn.execute(
                update(D)
                .where(D.c.id.in_(found), D.c.state.in_(DEAD_STATES))
                .values(
                    state="pending",
                    failures=0,
                    budget_from=now,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
    return found


def dead_letter_fault(conn: Connection) -> dict[str, object] | None:
    """Dead letters, as an entry of ``/health``'s faults (shaped like ``Fault.as_dict``): the
    outbox keeps them, so every process reports them until they are redelivered."""
    row = conn.execute(
        select(func.count(), func.min(D.c.updated_at), func.max(D.c.updated_at)).where(
            D.c.state.in_(DEAD_STATES)
        )
    ).one()
    count, since, last = int(row[0]), row[1], row[2]
    if not count:
        return None
    return {
        "key": "alerts.dead_letters",
        "title": "Alert deliveries given up",
        "message": f"{count} webhook deliveries are dead letters: `memwarden alert dead` lists "
        "them, `memwarden alert redeliver --all` sends them again",
        "severity": "critical",
        "since": since.isoformat(),
        "last_seen": last.isoformat(),
        "occurrences": count,
    }
