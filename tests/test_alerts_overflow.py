"""More alerts than the writer's queue holds: nothing hangs, nothing is lost without a word.

The full-size alerts bench (20k alerts, a 10k queue) failed with "the writer did not commit the
alerts": the overflow of one ``Alerts`` stayed in the alerts file, the next ``Alerts`` replayed
it at start and logged that it had, and that log call raised (structlog's stdlib processors
over a print logger read ``logger.disabled``). The exception ended the writer's thread: every
later alert stayed queued or was dropped, and every ``flush`` failed. Here the queue is shrunk
to a handful and the writer held behind a lock, with that same log configuration; and a
delivery worker, whose retry log line came before the attempt was recorded, under it too.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from alert_support import Receiver, Step, fast_policy, with_alerts
from conftest import raw_engine
from memwarden import Memwarden
from memwarden.observability.alerts import Alerts
from memwarden.observability.alerts import writer as writer_module
from test_alerts_sinks import file_lines

QUEUE = 5
STORM = 40
NOTICE = "Alerts dropped: the alert queue was full"


@contextmanager
def _log_calls_raise() -> Iterator[None]:
    """The configuration the bench had: the library default's processors (stdlib's
    ``filter_by_level`` first) over a print logger, so every log call that passes the level
    raises AttributeError."""
    previous = structlog.get_config()
    devnull = open(os.devnull, "w")
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, structlog.processors.KeyValueRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        logger_factory=structlog.PrintLoggerFactory(devnull),
        cache_logger_on_first_use=False,
    )
    try:
        with pytest.raises(AttributeError, match="disabled"):
            structlog.get_logger("memwarden.alerts").info("probe")  # the premise holds
        yield
    finally:
        structlog.configure(**previous)
        devnull.close()


@contextmanager
def _writer_held(alerts: Alerts, engine: sa.Engine) -> Iterator[None]:
    """The writer stuck inside a write behind another transaction's lock until the block ends,
    so whatever is emitted meanwhile fills the queue and overflows it."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
        alerts.emit("info", "held", "taken by the writer, which then waits on the lock")
        threading.Event().wait(0.5)  # past the writer's linger: it is inside its write
        yield
        conn.exec_driver_sql("ROLLBACK")


def _storm(alerts: Alerts, engine: sa.Engine, prefix: str) -> None:
    with _writer_held(alerts, engine):
        for i in range(STORM):
            alerts.emit("info", f"{prefix} {i}", "queued or dropped")


def test_an_overflow_then_a_replay_under_a_raising_log_never_hangs_or_loses_silently(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(writer_module, "QUEUE_SIZE", QUEUE)
    settings = mw.settings.model_copy(update={"alert_log": tmp_path / "alerts.log"})
    blocker = raw_engine(mw.settings)
    first = Alerts(settings, mw.store)
    try:
        _storm(first, blocker, "first")
        assert first.flush(30)
        assert first.dropped() == STORM - QUEUE  # one taken, five queued, the rest dropped
    finally:
        first.close()
        first_dropped = first.dropped()
    try:
        with _log_calls_raise():
            # Its writer replays the first one's overflow from the file, logs that, and (before
            # the fix) died of the log call.
            second = Alerts(settings, mw.store)
            try:
                # The replay done (its writes would queue behind the storm's lock too).
                assert second.flush(30), "flush failed: the writer died in its replay"
                assert second.replayed is not None and second.replayed.replayed == STORM - QUEUE
                _storm(second, blocker, "second")
                started = time.monotonic()
                assert second.flush(30), "flush failed: the writer is dead or stuck"
                assert time.monotonic() - started < 30
                dropped = second.dropped()
                second.emit("info", "after", "the writer still commits")
                assert second.flush(30)
            finally:
                second.close()
    finally:
        blocker.dispose()
    rows = second.history(limit=1000)
    titles = [r.title for r in rows]
    # The first overflow reached the database after all (the replay), every alert of it.
    assert sorted(t for t in titles if t.startswith("first ")) == sorted(
        f"first {i}" for i in range(STORM)
    )
    # The second: each alert stored or counted as dropped, and the count announced.
    assert dropped == STORM - QUEUE
    assert len([t for t in titles if t.startswith("second ")]) == STORM - dropped
    assert "after" in titles
    # Two episodes, one notice each: the second folds into the first's row (one problem,
    # throttled like any repeated alert), so the database counts them ...
    (notice,) = [r for r in rows if r.title == NOTICE]
    assert notice.context["dropped"] == first_dropped and notice.count == 2
    # ... and the file (and the log) has each with its own count: the notice is an alert like
    # any other, not only a database row and a webhook message.
    lines = [ln for ln in file_lines(settings.resolved_alert_log) if ln["title"] == NOTICE]
    assert sorted(ln["context"]["dropped"] for ln in lines) == sorted(  # type: ignore[index]
        [first_dropped, dropped]
    )


def test_drops_from_many_threads_are_all_counted(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers on several threads overflow the queue at once: no drop goes uncounted."""
    monkeypatch.setattr(writer_module, "QUEUE_SIZE", QUEUE)
    blocker = raw_engine(mw.settings)
    alerts = Alerts(mw.settings, mw.store)
    threads, each = 4, 500
    try:
        with _writer_held(alerts, blocker):

            def burst(n: int) -> None:
                for i in range(each):
                    alerts.emit("info", f"t{n} {i}", "queued or dropped")

            workers = [threading.Thread(target=burst, args=(n,)) for n in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        assert alerts.flush(30)
        rows = alerts.history(limit=100)
    finally:
        alerts.close()
        blocker.dispose()
    assert alerts.dropped() == threads * each - QUEUE
    (notice,) = [r for r in rows if r.title == NOTICE]
    assert notice.context["dropped"] == threads * each - QUEUE


def test_a_raising_log_neither_stops_deliveries_nor_loses_their_attempts(mw: Memwarden) -> None:
    """A retry is logged before its attempt is recorded: the raise used to skip the record and
    end the worker's thread, so the delivery stayed pending for good."""
    receiver = Receiver()
    receiver.plan("/hook", Step(500, body=b"boom"))
    settings = with_alerts(mw.settings, alert_webhook=receiver.url("/hook"))
    try:
        with _log_calls_raise():
            alerts = Alerts(settings, mw.store, policy=fast_policy(settings))
            try:
                alerts.emit("warning", "Queue long", "a 500 first, then delivered")
                assert alerts.drain(15), "the delivery never settled: the worker died"
                records = alerts.history()
                deliveries = alerts.deliveries([r.id for r in records])
                attempts = alerts.attempts([d.id for d in deliveries])
            finally:
                alerts.close(timeout=2)
    finally:
        receiver.close()
    assert [d.state for d in deliveries] == ["delivered"]
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
