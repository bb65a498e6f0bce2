"""The operation log under faults: its table dropped while running, its queue overflowing.
The operations it describes never notice. Both engines."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog

from memwarden import Memwarden, Settings
from memwarden.audit.oplog import OperationEntry
from memwarden.db import schema
from memwarden.db.engine import make_engine
from oplog_support import QUERY, open_logged, rows


def entry(n: int = 0) -> OperationEntry:
    now = datetime.now(UTC)
    return OperationEntry("probe", "bench", "atlas", now, now, {"n": n})


@contextmanager
def writer_blocked(mw: Memwarden) -> Iterator[None]:
    """Another connection holds the lock the log's writer needs (readers still read)."""
    engine = make_engine(mw.settings)
    conn = engine.connect().execution_options(memwarden_write=True)
    transaction = conn.begin()  # SQLite: BEGIN IMMEDIATE, the database's write lock
    if engine.dialect.name == "postgresql":
        conn.execute(sa.text("LOCK TABLE operation_log IN EXCLUSIVE MODE"))
    try:
        yield
    finally:
        transaction.rollback()
        conn.close()
        engine.dispose()


def test_a_dropped_table_fails_no_operation_and_is_logged_once(settings: Settings) -> None:
    mw = open_logged(settings, actions="*")
    mw.add_project("atlas")
    assert len(rows(mw)) == 1
    with mw.store.engine.begin() as conn:
        schema.operation_log.drop(conn)
    with structlog.testing.capture_logs() as logs:
        try:
            for n in range(5):
                created = mw.remember("atlas", f"fact number {n} about the uplink", status="active")
                assert created.memory.id > 0
                assert mw.recall("uplink", "atlas")
                # Each round's two rows fail; the writer may take them as one batch or two,
                # as the threads happen to meet.
                assert mw.oplog.flush(10)
            assert mw.oplog.failed_rows == 10
            assert mw.oplog.written == 1
        finally:
            mw.close()
    failed = [event for event in logs if event["event"] == "oplog_write_failed"]
    assert len(failed) == 1, failed
    assert failed[0]["log_level"] == "error"
    assert failed[0]["count"] == 1 and failed[0]["rows_lost"] in (1, 2)
    assert "operation_log" in failed[0]["error"]
    over = [event for event in logs if event["event"] == "oplog_write_burst_over"]
    assert len(over) == 1
    assert (over[0]["rows_lost"], over[0]["how"]) == (10, "closed")
    assert 5 <= over[0]["failures"] <= 10  # one failed batch per round, or two


def test_the_log_recovers_when_its_table_comes_back(settings: Settings) -> None:
    mw = open_logged(settings, actions="*")
    try:
        mw.add_project("atlas")
        rows(mw)
        with mw.store.engine.begin() as conn:
            schema.operation_log.drop(conn)
        mw.list_projects()
        assert mw.oplog.flush(10)
        with mw.store.engine.begin() as conn:
            schema.operation_log.create(conn)
        with structlog.testing.capture_logs() as logs:
            mw.list_projects()
            assert [row.action for row in rows(mw)] == ["list_projects"]
        assert [e["how"] for e in logs if e["event"] == "oplog_write_burst_over"] == ["recovered"]
    finally:
        mw.close()


def test_an_overflow_drops_and_counts_and_never_slows_the_caller(settings: Settings) -> None:
    mw = open_logged(settings, actions="*")
    try:
        mw.add_project("atlas")
        rows(mw)
        queue_size = mw.oplog.queue_size
        assert queue_size == 10_000
        with writer_blocked(mw):
            mw.oplog.log(entry())
            time.sleep(0.5)  # the writer takes it, waits out its batch interval, and blocks
            assert mw.oplog.counters()["queued"] == 0 and mw.oplog.written == 1
            costs = []
            for n in range(queue_size + 5000):
                before = time.perf_counter_ns()
                mw.oplog.log(entry(n))
                costs.append(time.perf_counter_ns() - before)
            # The log() calls' own time: building each entry is the test's work, not the
            # caller's cost (on a loaded machine it made the whole loop's wall time pass 2 s).
            elapsed = sum(costs) / 1e9
            assert mw.oplog.dropped == 5000
            assert mw.oplog.counters()["queued"] == queue_size
            # The operations go on, as fast as ever (their own entries are dropped now).
            tick = time.perf_counter()
            assert mw.recall(QUERY, "atlas") == []
            assert time.perf_counter() - tick < 2.0
            assert mw.oplog.dropped == 5001
        costs.sort()
        p99_us = costs[int(len(costs) * 0.99)] / 1000
        assert elapsed < 2.0, f"15,000 log() calls took {elapsed:.2f} s"
        assert p99_us < 100, f"log() p99 {p99_us:.1f} µs with a full queue"
        assert statistics.median(costs) / 1000 < 20
        assert mw.oplog.flush(30)
        assert mw.oplog.written == 1 + 1 + queue_size
        assert len(rows(mw)) == 1 + 1 + queue_size
    finally:
        mw.close()
