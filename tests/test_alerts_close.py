"""Closing is final: once ``Memwarden.close`` returns, no thread of it writes to the database.

Found as a flaky teardown in CI: a delivery worker still waiting on a hanging webhook after
the close timed out recorded its attempt when the receiver went away, in the PostgreSQL
schema the fixture was dropping (the DROP deadlocked with it). Real loopback receivers and
real threads, on both engines: what the database holds right after the close must be what it
holds once every thread the close left behind is gone; and the delivery cut short is still
pending (the close recorded its attempt), sent by the next open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from alert_support import Receiver, Step, with_alerts
from conftest import raw_engine
from memwarden import Memwarden, Settings
from memwarden.db import schema
from memwarden.observability.alerts import Alerts

HANGS = "/hook/hangs-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def alert_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("memwarden-alert")]


def outbox_rows(settings: Settings) -> tuple[list[Any], list[Any]]:
    engine = raw_engine(settings)
    try:
        with engine.connect() as conn:
            deliveries = conn.execute(
                sa.select(schema.alert_deliveries).order_by(schema.alert_deliveries.c.id)
            ).all()
            attempts = conn.execute(sa.select(schema.alert_attempts)).all()
    finally:
        engine.dispose()
    return [tuple(d) for d in deliveries], [tuple(a) for a in attempts]


def settle(threads: list[threading.Thread], timeout: float = 15.0) -> None:
    """Wait until the threads are gone: after that nothing of theirs can write any more."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    assert not [t.name for t in threads if t.is_alive()], "alert threads outlived the wait"


def test_a_close_during_a_hanging_delivery_writes_nothing_after_it(
    mw: Memwarden, receiver: Receiver
) -> None:
    # The attempt would wait 20 s for an answer: far beyond the close's bound.
    settings = with_alerts(
        mw.settings, alert_webhook=receiver.url(HANGS), alert_webhook_timeout=20.0
    )
    mw.close()
    receiver.plan(HANGS, Step(hang=60.0))
    before = set(alert_threads())
    hung = Memwarden(settings)
    hung.alerts.emit("warning", "Hung webhook", "the receiver never answers")
    receiver.wait_for(HANGS, 1)  # the attempt is in flight
    left = [t for t in alert_threads() if t not in before]
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        hung.close()
        took = time.monotonic() - started
    at_close = outbox_rows(settings)

    # What ended the CI run: the receiver goes away, the hung request fails at once; the old
    # worker then recorded a retry in a database its memwarden had closed.
    receiver.release.set()
    settle(left)
    assert outbox_rows(settings) == at_close

    assert took < 6.0  # bounded: a second for the attempt, a second to unwind, the rest slack
    closed = [e for e in logs if e["event"] == "alert_worker_close_timeout"]
    assert len(closed) == 1 and closed[0]["delivery_id"] is not None
    assert closed[0]["thread_ended"] is True  # cut short, the attempt unwound within the close
    assert HANGS not in str(closed[0])  # the webhook's secret path is not logged

    deliveries, attempts = at_close
    (delivery,) = deliveries
    row = dict(zip(schema.alert_deliveries.c.keys(), delivery, strict=True))
    assert row["id"] == closed[0]["delivery_id"]
    # Recorded by the close as what it was: no answer in the time it had, retried after its
    # backoff like a timeout (not left leased for the attempt's 20 s and a margin).
    assert (row["state"], row["attempts"], row["failures"]) == ("pending", 1, 1)
    (attempt,) = [dict(zip(schema.alert_attempts.c.keys(), a, strict=True)) for a in attempts]
    assert attempt["outcome"] == "timeout" and "cut short" in attempt["error"]
    assert attempt["status_code"] is None and attempt["latency_ms"] >= 900

    # The next open sends it (the hang is used up: the receiver now answers).
    with Memwarden(settings) as reopened:
        assert reopened.alerts.drain(10, everything=True)
        (record,) = reopened.alerts.deliveries([row["alert_id"]])
        assert (record.state, record.attempts) == ("delivered", 2)
    first, second = receiver.wait_for(HANGS, 2)
    assert first.json()["title"] == second.json()["title"] == "Hung webhook"
    uid = first.headers["x-memwarden-delivery-id"]  # the same delivery, sent again
    assert uid and second.headers["x-memwarden-delivery-id"] == uid


def test_a_writer_batch_in_progress_is_committed_and_nothing_after_it(mw: Memwarden) -> None:
    """The alert writer too: a close that times out while a batch is being committed waits for
    that batch, and the alerts queued behind it are left to the next start's replay of the
    alerts file, never written by the thread the close left behind."""
    gate = threading.Event()
    mirrored: list[str] = []

    def slow_mirror(alerts: list[Any]) -> None:  # runs on the writer thread, inside its batch
        mirrored.extend(a.title for a in alerts)
        gate.wait(10.0)

    before = set(alert_threads())
    alerts = Alerts(mw.settings, mw.store)
    alerts.mirror = slow_mirror
    alerts.emit("warning", "First", "committed before the close returns")
    deadline = time.monotonic() + 10
    while not mirrored and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mirrored == ["First"]  # the writer is inside its first batch
    alerts.emit("warning", "Second", "queued behind it")
    (writer,) = [t for t in alert_threads() if t not in before]

    def release_once_the_close_gave_up_waiting() -> None:
        writer_of = alerts._writer
        assert writer_of is not None
        deadline = time.monotonic() + 10
        while not writer_of._shut and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the close now waits on the batch in progress
        gate.set()

    threading.Thread(target=release_once_the_close_gave_up_waiting, daemon=True).start()
    with structlog.testing.capture_logs() as logs:
        alerts.close(timeout=0.2)
    assert any(e["event"] == "alert_writer_close_timeout" for e in logs)
    titles = [a.title for a in mw.alerts.history(limit=10)]
    assert titles == ["First"]  # the batch in progress finished before the close returned
    gate.set()
    settle([writer])
    assert [a.title for a in mw.alerts.history(limit=10)] == ["First"]

    # The next start replays the alerts file: the second alert is not lost.
    again = Alerts(mw.settings, mw.store)
    try:
        assert again.flush(10)
        assert sorted(a.title for a in mw.alerts.history(limit=10)) == ["First", "Second"]
    finally:
        again.close()
