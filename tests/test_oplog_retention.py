"""The retention sweep over 50,000 old rows: only the old go, 5,000 per short transaction;
on PostgreSQL rows another transaction holds are skipped, not waited for. Both engines."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.audit.oplog import OpLog, retention
from memwarden.db import schema
from oplog_support import configured, open_logged

T = schema.operation_log
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def row(started: datetime, action: str) -> dict[str, Any]:
    return {
        "action": action,
        "transport": "bench",
        "project": "atlas",
        "actor": "bench",
        "started_at": started,
        "ended_at": started + timedelta(milliseconds=3),
        "duration_ms": 3.0,
        "error": None,
        "request": '{"k":10}',
        "response": None,
        "metadata": None,
    }


def fill(mw: Memwarden, old: int, fresh: int, copies: int = 1) -> None:
    """``old`` rows 8 to 30 days old (then ``copies`` times as many, copied inside the
    database: fast), ``fresh`` rows under 7 days old, and one row either side of 7 days."""
    rng = random.Random(7)
    rows = [
        row(NOW - timedelta(days=8, seconds=rng.randrange(22 * 86400)), "old") for _ in range(old)
    ]
    rows += [
        row(NOW - timedelta(days=6, seconds=rng.randrange(86400)), "fresh") for _ in range(fresh)
    ]
    rows.append(row(NOW - timedelta(days=7) + timedelta(seconds=1), "fresh"))  # just inside
    rows.append(row(NOW - timedelta(days=7) - timedelta(seconds=1), "edge"))  # just outside
    rng.shuffle(rows)
    columns = [c for c in T.columns if c.name != "id"]
    with mw.store.engine.begin() as conn:
        conn.execute(sa.insert(T), rows)
        last = conn.execute(sa.select(sa.func.max(T.c.id))).scalar_one()
        originals = sa.select(*columns).where(T.c.action == "old", T.c.id <= last)
        for _ in range(copies - 1):
            conn.execute(sa.insert(T).from_select(columns, originals))


def counts(mw: Memwarden) -> dict[str, int]:
    with mw.store.engine.connect() as conn:
        return dict(conn.execute(sa.select(T.c.action, sa.func.count()).group_by(T.c.action)).all())


def test_the_sweep_deletes_50k_old_rows_in_batches_and_nothing_else(settings: Settings) -> None:
    mw = open_logged(settings)
    try:
        fill(mw, 5_000, 700, copies=10)
        assert counts(mw) == {"old": 50_000, "edge": 1, "fresh": 701}
        result = retention.sweep(mw.store, 7, now=NOW)
        assert result.cutoff == NOW - timedelta(days=7)
        assert result.deleted == 50_001
        assert result.batches == [5000] * 10 + [1]
        assert counts(mw) == {"fresh": 701}
        again = retention.sweep(mw.store, 7, now=NOW)
        assert (again.deleted, again.batches) == (0, [])
        assert counts(mw) == {"fresh": 701}
    finally:
        mw.close()


def test_the_sweep_follows_the_retention_setting(settings: Settings) -> None:
    mw = open_logged(settings)  # retention -1: off
    try:
        now = datetime.now(UTC)
        with mw.store.engine.begin() as conn:
            conn.execute(
                sa.insert(T), [row(now - timedelta(days=d), f"age-{d}") for d in (1, 29, 31, 400)]
            )
        assert mw.oplog.sweep() is None
        assert len(counts(mw)) == 4
        assert mw.oplog.sweep(days=500).deleted == 0  # an explicit age overrides the setting
        thirty = OpLog(configured(settings, retention_days=30), mw.store)
        result = thirty.sweep(batch_size=1)
        assert result is not None and (result.deleted, result.batches) == (2, [1, 1])
        assert set(counts(mw)) == {"age-1", "age-29"}
        thirty.close()
    finally:
        mw.close()


def test_on_postgresql_rows_held_elsewhere_are_skipped_not_waited_for(
    pg_schema_url: str, tmp_path: Path
) -> None:
    # PostgreSQL only: on SQLite a writer holds the whole database, there is nothing to skip.
    mw = open_logged(Settings(home=tmp_path / "home", database_url=pg_schema_url))
    try:
        fill(mw, 3_000, 10, copies=2)
        holder = mw.store.engine.connect()
        transaction = holder.begin()
        held = (
            holder.execute(
                sa.select(T.c.id)
                .where(T.c.action == "old")
                .order_by(T.c.id)
                .limit(50)
                .with_for_update()
            )
            .scalars()
            .all()
        )
        done = threading.Event()
        outcome: list[retention.SweepResult] = []

        def run() -> None:
            outcome.append(retention.sweep(mw.store, 7, now=NOW))
            done.set()

        started = time.monotonic()
        threading.Thread(target=run, daemon=True).start()
        assert done.wait(20), "the sweep waited for a lock held elsewhere"
        assert time.monotonic() - started < 20
        transaction.rollback()
        holder.close()
        assert outcome[0].deleted == 6_001 - 50
        assert counts(mw) == {"old": 50, "fresh": 11}
        with mw.store.engine.connect() as conn:
            left = set(conn.execute(sa.select(T.c.id).where(T.c.action == "old")).scalars())
        assert left == set(held)
        assert retention.sweep(mw.store, 7, now=NOW).deleted == 50
    finally:
        mw.close()
